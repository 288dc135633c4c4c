package lockout

import "testing"

func TestAddressSubject(t *testing.T) {
	tests := []struct {
		addr   string
		prefix int
		want   string
	}{
		{"203.0.113.7", 64, "203.0.113.7"},
		{"::ffff:203.0.113.7", 64, "203.0.113.7"},
		{"2001:db8:1:2::1", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", 64, "2001:db8:1:3::/64"},
		{"2001:db8:1:2::1", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2::1", 128, "2001:db8:1:2::1/128"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"not an address", 64, "not an address"},
	}
	for _, tt := range tests {
		if got := AddressSubject(tt.addr, tt.prefix); got != tt.want {
			t.Errorf("AddressSubject(%q, %d) = %q, want %q", tt.addr, tt.prefix, got, tt.want)
		}
	}
}
