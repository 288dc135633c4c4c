package httpapi

import (
	"net/http"
	"slices"
	"strings"
)

// CORS answers browsers from an allow-list of origins. An origin that is not
// listed gets no CORS headers, so the browser keeps the response from it.
// CORS only guards what a page may read: what it may send with the
// session cookie is CheckOrigin's job.
type CORS struct {
	Origins []string // exact origins, such as https://portal.impo.com.uy
	// Allow, when set, admits origins beyond Origins, decided per request
	// (login's registered clients, read from a secret that may change).
	Allow       func(r *http.Request, origin string) bool
	Credentials bool // allow cookies (only with a listed origin, never "*")
	Methods     []string
}

// Wrap serves preflight requests and adds CORS headers to the others.
// A preflight is answered here, so it gets its HSTS header here too.
func (c CORS) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetHSTS(w, r)
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		allowed := slices.Contains(c.Origins, origin) || (c.Allow != nil && origin != "null" && c.Allow(r, origin))
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			if c.Credentials {
				w.Header().Set("Access-Control-Allow-Credentials", "true")
			}
		}
		if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
			next.ServeHTTP(w, r)
			return
		}
		if !allowed {
			WriteProblem(w, r, Errorf(http.StatusForbidden, "origin %q is not allowed", origin))
			return
		}
		w.Header().Set("Access-Control-Allow-Methods", strings.Join(c.Methods, ", "))
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	})
}
