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
