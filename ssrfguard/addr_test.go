package ssrfguard

import (
	"math/big"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

func TestParseIPReadsWhatACResolverConnectsTo(t *testing.T) {
	tests := []struct {
		host string
		want string // "" when host is not an address
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.0.0.1.", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0X7F000001", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0x7f.0.0.1", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"0177.1", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"00000177.0x0.00.1", "127.0.0.1"},
		{"0", "0.0.0.0"},
		{"0x0", "0.0.0.0"},
		{"00", "0.0.0.0"},
		{"169.254.43518", "169.254.169.254"},
		{"0xa9fea9fe", "169.254.169.254"},
		{"2852039166", "169.254.169.254"},
		{"0251.0376.0251.0376", "169.254.169.254"},
		{"4294967295", "255.255.255.255"},
		{"1.16777215", "1.255.255.255"},
		{"1.2.65535", "1.2.255.255"},
		{"255.255.255.255", "255.255.255.255"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"[0:0:0:0:0:0:0:1]", "::1"},
		{"::ffff:127.0.0.1", "::ffff:127.0.0.1"},
		{"[::ffff:7f00:1]", "::ffff:127.0.0.1"},
		{"fe80::1%eth0", "fe80::1"},
		{"[fe80::1%25eth0]", "fe80::1"},
		{"fd00:ec2::254", "fd00:ec2::254"},

		{"", ""},
		{".", ""},
		{"localhost", ""},
		{"1e100.net", ""},
		{"127.0.0.1..", ""},
		{"127..1", ""},
		{".127.0.0.1", ""},
		{"127.0.0.1.1", ""},
		{"4294967296", ""},
		{"256.1.1.1", ""},
		{"1.256.1.1", ""},
		{"1.2.65536", ""},
		{"1.16777216", ""},
		{"08.0.0.1", ""},
		{"0x", ""},
		{"0x.1", ""},
		{"0xg", ""},
		{"0x1g", ""},
		{"1x", ""},
		{"+1", ""},
		{"-1", ""},
		{" 1", ""},
		{"1 ", ""},
		{"0x100000000", ""},
		{"99999999999999999999999", ""},
		{"[127.0.0.1]", ""},
		{"[::1", ""},
		{"::1]", ""},
		{"[]", ""},
		{"[", ""},
		{":", ""},
		{"1:2", ""},
		{"fe80::1%", ""},
		{"١٢٧.0.0.1", ""},
	}
	for _, tt := range tests {
		got, ok := parseIP(tt.host, true)
		switch {
		case tt.want == "" && ok:
			t.Errorf("parseIP(%q) = %v, want not an address", tt.host, got)
		case tt.want != "" && (!ok || got != netip.MustParseAddr(tt.want)):
			t.Errorf("parseIP(%q) = %v, %v, want %s", tt.host, got, ok, tt.want)
		}
	}
}

// atonPart matches one part of an inet_aton address: hex with at least one
// digit, octal (a lone 0 included), or decimal.
var atonPart = regexp.MustCompile(`^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$`)

// referenceAton is inet_aton written the slow, obvious way, as an oracle for
// the fuzzer: split on dots, match each part, compute with big integers.
func referenceAton(s string) (netip.Addr, bool) {
	s = strings.TrimSuffix(s, ".")
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]*big.Int, len(parts))
	for i, p := range parts {
		if !atonPart.MatchString(p) {
			return netip.Addr{}, false
		}
		v := new(big.Int)
		switch {
		case len(p) > 1 && (p[1] == 'x' || p[1] == 'X'):
			v.SetString(p[2:], 16)
		case p[0] == '0':
			v.SetString(p, 8)
		default:
			v.SetString(p, 10)
		}
		vals[i] = v
	}
	limit := func(bytes int) *big.Int {
		return new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(8*bytes)), big.NewInt(1))
	}
	total := new(big.Int)
	for i, v := range vals[:len(vals)-1] {
		if v.Cmp(limit(1)) > 0 {
			return netip.Addr{}, false
		}
		total.Or(total, new(big.Int).Lsh(v, uint(8*(3-i))))
	}
	last := vals[len(vals)-1]
	if last.Cmp(limit(5-len(vals))) > 0 {
		return netip.Addr{}, false
	}
	total.Or(total, last)
	var b [4]byte
	total.FillBytes(b[:])
	return netip.AddrFrom4(b), true
}

func TestReferenceAtonAgreesOnTheTable(t *testing.T) {
	for _, s := range []string{"127.1", "0x7f.1", "0177.0.0.1", "2130706433", "1.2.65535", "08.1", "0x", "1.2.3.4.5", "256.1"} {
		a, aok := referenceAton(s)
		b, bok := parseIP(s, true)
		if aok != bok || a != b {
			t.Errorf("%q: reference %v %v, parseIP %v %v", s, a, aok, b, bok)
		}
	}
}

func TestClassifyNamesEveryInternalRange(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"169.254.169.254", "link-local"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", ""}, // unreachable unless an interface is in 0.0.0.0/8
		{"0.0.156.248", ""},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"255.255.255.255", "reserved"},
		{"::1", "loopback"},
		{"::", "unspecified"},
		{"fd00:ec2::254", "private"},
		{"fc00::1", "private"},
		{"fe80::1", "link-local"},
		{"ff02::1", "multicast"},
		{"::ffff:127.0.0.1", "loopback (IPv4-mapped)"},
		{"::ffff:169.254.169.254", "link-local (IPv4-mapped)"},
		{"::127.0.0.1", "loopback (IPv4-compatible)"},
		{"64:ff9b::7f00:1", "loopback (NAT64)"},
		{"64:ff9b::a9fe:a9fe", "link-local (NAT64)"},
		{"::ffff:0:10.0.0.1", "private (IPv4-translated)"},

		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"203.0.113.7", ""},
		{"2606:4700:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""},
	}
	for _, tt := range tests {
		if got := classify(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("classify(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

func TestLocalhostNames(t *testing.T) {
	for _, h := range []string{"localhost", "LOCALHOST", "localhost.", "a.localhost", "x.y.LocalHost.", "localhost.localdomain", "ip6-localhost", "localhost6"} {
		if !isLocalhostName(h) {
			t.Errorf("%q is a localhost name", h)
		}
	}
	for _, h := range []string{"localhost.example.com", "mylocalhost", "localhostx", "local", "host", ".localhost.com"} {
		if isLocalhostName(h) {
			t.Errorf("%q is not a localhost name", h)
		}
	}
}
