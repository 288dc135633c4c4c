package lockout

import (
	"net/netip"
)

// DefaultIPv6Prefix is how many leading bits of an IPv6 address name one
// client: a /64 is what one customer line, one office or one cloud VM
// gets, and holds more addresses than any limit could count one by one.
const DefaultIPv6Prefix = 64

// AddressSubject is the subject a client address is counted as: an IPv4
// address by itself, an IPv6 address by its network of v6Prefix bits
// ("2001:db8:1:2::/64"), so that one client cannot spread its attempts
// over the addresses of its own network. What does not parse as an
// address is counted as it is.
func AddressSubject(addr string, v6Prefix int) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(v6Prefix)
	if err != nil {
		return a.String()
	}
	return p.String()
}
