package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r. With trustedHops
// = 0 it is the TCP peer. Behind N proxies that each append the address they
// saw to X-Forwarded-For (Google's front end does: N = 1 on Cloud Run and
// Cloud Functions), it is the N-th address from the right: entries further
// left were written by the client and cannot be trusted.
func ClientIP(r *http.Request, trustedHops int) string {
	if trustedHops > 0 {
		var hops []string
		for _, line := range r.Header.Values("X-Forwarded-For") {
			for h := range strings.SplitSeq(line, ",") {
				hops = append(hops, strings.TrimSpace(h))
			}
		}
		if len(hops) >= trustedHops {
			if a, err := netip.ParseAddr(hops[len(hops)-trustedHops]); err == nil {
				return a.Unmap().String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return host
}
