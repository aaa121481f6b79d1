package gateway

import (
	"net/netip"
	"testing"
)

func TestRateLimitKeysGroupAnIPv6HostsSlash64(t *testing.T) {
	a := subjectKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"), "")
	b := subjectKey(netip.MustParseAddr("2001:db8:1:2:bbbb::9"), "")
	c := subjectKey(netip.MustParseAddr("2001:db8:1:3::1"), "")
	if a != b || a == c {
		t.Errorf("keys %q %q %q: want one per /64", a, b, c)
	}
	if subjectKey(netip.MustParseAddr("::ffff:192.0.2.1"), "") != subjectKey(netip.MustParseAddr("192.0.2.1"), "") {
		t.Error("an IPv4-mapped address is keyed apart from its IPv4 form")
	}
	if subjectKey(netip.MustParseAddr("192.0.2.1"), "alice") != "u:alice" {
		t.Error("a user is keyed by IP")
	}
}

func TestUnderPrefixMatchesOnPathSegments(t *testing.T) {
	for _, c := range []struct {
		path, prefix string
		want         bool
	}{
		{"/products", "/products", true},
		{"/products/", "/products", true},
		{"/products/1", "/products", true},
		{"/productsXYZ", "/products", false},
		{"/products-old", "/products", false},
		{"/product", "/products", false},
		{"/products", "/products/", false},
		{"/products/1", "/products/", true},
		{"/products/", "/products/", true},
		{"/anything", "/", true},
		{"/", "/", true},
	} {
		if got := underPrefix(c.path, c.prefix); got != c.want {
			t.Errorf("underPrefix(%q, %q) = %v, want %v", c.path, c.prefix, got, c.want)
		}
	}
}
