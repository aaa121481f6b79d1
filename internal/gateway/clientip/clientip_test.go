package clientip_test

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/gateway/clientip"
)

// The trusted proxies of most tests: a private network, one single address,
// and an IPv6 prefix.
var trusted = []string{"10.0.0.0/8", "192.0.2.10", "2001:db8:ffff::/48"}

func newResolver(t testing.TB, proxies ...string) *clientip.Resolver {
	t.Helper()
	r, err := clientip.New(proxies)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type header struct{ name, value string }

func fwd(v string) header { return header{"Forwarded", v} }
func xff(v string) header { return header{"X-Forwarded-For", v} }

func request(remote string, headers ...header) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
	req.RemoteAddr = remote
	for _, h := range headers {
		req.Header.Add(h.name, h.value)
	}
	return req
}

func TestClientIP(t *testing.T) {
	r := newResolver(t, trusted...)
	hops := func(elem string, n int) string {
		return strings.Repeat(elem, n)
	}
	for _, tc := range []struct {
		name    string
		remote  string
		headers []header
		want    string
	}{
		// The peer alone.
		{"a direct client is its peer", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"an untrusted peer's X-Forwarded-For is ignored", "203.0.113.7:5000",
			[]header{xff("198.51.100.1")}, "203.0.113.7"},
		{"an untrusted peer's Forwarded is ignored", "203.0.113.7:5000",
			[]header{fwd("for=198.51.100.1")}, "203.0.113.7"},
		{"an untrusted peer claiming a trusted hop is ignored", "203.0.113.7:5000",
			[]header{xff("198.51.100.1, 10.0.0.2")}, "203.0.113.7"},
		{"a trusted peer without headers is the client", "10.0.0.1:5000", nil, "10.0.0.1"},
		{"a bare address is a peer", "203.0.113.7", nil, "203.0.113.7"},
		{"an IPv6 peer", "[2001:db8::7]:443", nil, "2001:db8::7"},
		{"a peer's zone is dropped", "[fe80::1%eth0]:443", nil, "fe80::1"},
		{"an IPv4-mapped peer is unmapped", "[::ffff:203.0.113.7]:443", nil, "203.0.113.7"},

		// X-Forwarded-For.
		{"one trusted proxy", "10.0.0.1:5000",
			[]header{xff("203.0.113.7")}, "203.0.113.7"},
		{"a single trusted address", "192.0.2.10:5000",
			[]header{xff("203.0.113.7")}, "203.0.113.7"},
		{"a chain through two trusted proxies", "10.0.0.1:5000",
			[]header{xff("203.0.113.7, 10.0.0.2")}, "203.0.113.7"},
		{"values the client prepended are ignored", "10.0.0.1:5000",
			[]header{xff("198.51.100.1, 1.1.1.1, 203.0.113.7, 10.0.0.2")}, "203.0.113.7"},
		{"a prepended trusted address is ignored", "10.0.0.1:5000",
			[]header{xff("10.9.9.9, 203.0.113.7")}, "203.0.113.7"},
		{"the client's own line is ignored", "10.0.0.1:5000",
			[]header{xff("198.51.100.1"), xff("203.0.113.7")}, "203.0.113.7"},
		{"lines are read last first", "10.0.0.1:5000",
			[]header{xff("198.51.100.1, 203.0.113.7"), xff("10.0.0.3, 10.0.0.2")}, "203.0.113.7"},
		{"every hop trusted gives the leftmost", "10.0.0.1:5000",
			[]header{xff("10.0.0.3, 10.0.0.2")}, "10.0.0.3"},
		{"no whitespace, tabs", "10.0.0.1:5000",
			[]header{xff("198.51.100.1,203.0.113.7\t,\t10.0.0.2")}, "203.0.113.7"},
		{"an IPv4 hop with a port", "10.0.0.1:5000",
			[]header{xff("203.0.113.7:4711")}, "203.0.113.7"},
		{"an IPv6 hop", "10.0.0.1:5000",
			[]header{xff("2001:db8::7")}, "2001:db8::7"},
		{"a bracketed IPv6 hop with a port", "10.0.0.1:5000",
			[]header{xff("[2001:db8::7]:4711")}, "2001:db8::7"},
		{"an IPv4-mapped hop is unmapped", "10.0.0.1:5000",
			[]header{xff("::ffff:203.0.113.7")}, "203.0.113.7"},
		{"an IPv4-mapped hop is unmapped before the trust check", "10.0.0.1:5000",
			[]header{xff("203.0.113.7, ::ffff:10.0.0.2")}, "203.0.113.7"},
		{"a trusted IPv6 peer and IPv6 hops", "[2001:db8:ffff::1]:443",
			[]header{xff("2001:db8::7, 2001:db8:ffff::2")}, "2001:db8::7"},

		// X-Forwarded-For, malformed: stop at the last trusted hop.
		{"garbage from the trusted peer gives the peer", "10.0.0.1:5000",
			[]header{xff("not-an-address")}, "10.0.0.1"},
		{"garbage left of a trusted hop gives that hop", "10.0.0.1:5000",
			[]header{xff("203.0.113.7, garbage, 10.0.0.2")}, "10.0.0.2"},
		{"garbage left of the client is never read", "10.0.0.1:5000",
			[]header{xff("\x00\xff;,,\"[, 203.0.113.7")}, "203.0.113.7"},
		{"an empty element stops the walk", "10.0.0.1:5000",
			[]header{xff("203.0.113.7, , 10.0.0.2")}, "10.0.0.2"},
		{"a trailing comma stops the walk", "10.0.0.1:5000",
			[]header{xff("203.0.113.7,")}, "10.0.0.1"},
		{"an empty line stops the walk", "10.0.0.1:5000",
			[]header{xff("203.0.113.7"), xff("")}, "10.0.0.1"},
		{"unknown stops the walk", "10.0.0.1:5000",
			[]header{xff("203.0.113.7, unknown")}, "10.0.0.1"},
		{"a zone is refused", "10.0.0.1:5000",
			[]header{xff("fe80::1%eth0")}, "10.0.0.1"},
		{"an IPv6 hop with a port needs brackets", "10.0.0.1:5000",
			[]header{xff("203.0.113.7, 2001:db8::7:99999")}, "10.0.0.1"},
		{"leading zeros are refused", "10.0.0.1:5000",
			[]header{xff("010.0.0.1")}, "10.0.0.1"},
		{"a bad port is refused", "10.0.0.1:5000",
			[]header{xff("203.0.113.7:http")}, "10.0.0.1"},

		// Forwarded.
		{"Forwarded from one trusted proxy", "10.0.0.1:5000",
			[]header{fwd("for=203.0.113.7")}, "203.0.113.7"},
		{"Forwarded with other parameters", "10.0.0.1:5000",
			[]header{fwd(`for=198.51.100.1;proto=http, proto=https;for=203.0.113.7;by="[2001:db8::1]";host=example.test, for=10.0.0.2;proto=https`)},
			"203.0.113.7"},
		{"Forwarded with whitespace around separators", "10.0.0.1:5000",
			[]header{fwd("for=203.0.113.7 ; proto=https ,for=10.0.0.2")}, "203.0.113.7"},
		{"Forwarded parameter names are case-insensitive", "10.0.0.1:5000",
			[]header{fwd("For=203.0.113.7, FOR=10.0.0.2")}, "203.0.113.7"},
		{"Forwarded quoted IPv4 with port", "10.0.0.1:5000",
			[]header{fwd(`for="203.0.113.7:4711"`)}, "203.0.113.7"},
		{"Forwarded quoted IPv6 with port", "10.0.0.1:5000",
			[]header{fwd(`for="[2001:db8::1]:4711"`)}, "2001:db8::1"},
		{"Forwarded quoted IPv6", "10.0.0.1:5000",
			[]header{fwd(`for="[2001:db8::1]"`)}, "2001:db8::1"},
		{"Forwarded unquoted IPv6, as some proxies write it", "10.0.0.1:5000",
			[]header{fwd(`for=[2001:db8::1]`)}, "2001:db8::1"},
		{"Forwarded obfuscated port", "10.0.0.1:5000",
			[]header{fwd(`for="[2001:db8::1]:_p0rt"`)}, "2001:db8::1"},
		{"Forwarded quoted string with escapes", "10.0.0.1:5000",
			[]header{fwd(`for="\2\0\3.0.113.7";ext="a\"b,c\\", for=10.0.0.2`)}, "203.0.113.7"},
		{"Forwarded lines", "10.0.0.1:5000",
			[]header{fwd("for=198.51.100.1"), fwd("for=203.0.113.7"), fwd("for=10.0.0.2")}, "203.0.113.7"},
		{"Forwarded every hop trusted gives the leftmost", "10.0.0.1:5000",
			[]header{fwd("for=10.0.0.3, for=10.0.0.2")}, "10.0.0.3"},
		{"Forwarded obfuscated identifier gives the hop that wrote it", "10.0.0.1:5000",
			[]header{fwd("for=198.51.100.1, for=_hidden, for=10.0.0.2")}, "10.0.0.2"},
		{"Forwarded unknown gives the peer that wrote it", "10.0.0.1:5000",
			[]header{fwd("for=198.51.100.1, for=unknown")}, "10.0.0.1"},
		{"Forwarded unknown from the client is never read", "10.0.0.1:5000",
			[]header{fwd("for=unknown, for=203.0.113.7")}, "203.0.113.7"},
		{"Forwarded element without for", "10.0.0.1:5000",
			[]header{fwd("for=198.51.100.1, proto=https;by=10.0.0.1")}, "10.0.0.1"},
		{"Forwarded duplicate for", "10.0.0.1:5000",
			[]header{fwd("for=198.51.100.1;for=203.0.113.7")}, "10.0.0.1"},
		{"Forwarded IPv6 must be bracketed to take a port", "10.0.0.1:5000",
			[]header{fwd(`for="2001:db8::1:4711:1:1:1:1"`)}, "10.0.0.1"},
		{"Forwarded unterminated quote from the client", "10.0.0.1:5000",
			[]header{fwd(`for="198.51.100.1, for=203.0.113.7`)}, "203.0.113.7"},
		{"Forwarded stray quote from the client", "10.0.0.1:5000",
			[]header{fwd(`for=198.51.100.1", for="203.0.113.7"`)}, "203.0.113.7"},
		{"Forwarded client's quoted string swallowing a comma", "10.0.0.1:5000",
			[]header{fwd(`ext="x, for=198.51.100.1", for=203.0.113.7`)}, "203.0.113.7"},
		{"Forwarded unterminated quote left of a trusted hop", "10.0.0.1:5000",
			[]header{fwd(`for="203.0.113.7, for=10.0.0.2`)}, "10.0.0.2"},
		{"Forwarded garbage", "10.0.0.1:5000",
			[]header{fwd(`;;==;"`)}, "10.0.0.1"},
		{"Forwarded control byte in a quoted string", "10.0.0.1:5000",
			[]header{fwd("for=\"203.0.113.7\x01\"")}, "10.0.0.1"},
		{"Forwarded junk after a value", "10.0.0.1:5000",
			[]header{fwd(`for="203.0.113.7"x`)}, "10.0.0.1"},

		// Both headers: trusted where they agree.
		{"both headers agreeing", "10.0.0.1:5000",
			[]header{fwd("for=203.0.113.7, for=10.0.0.2"), xff("203.0.113.7, 10.0.0.2")}, "203.0.113.7"},
		{"both headers agreeing up to the client", "10.0.0.1:5000",
			[]header{fwd("for=203.0.113.7"), xff("192.168.1.5, 203.0.113.7")}, "203.0.113.7"},
		{"Forwarded sent by the client through an X-Forwarded-For proxy", "10.0.0.1:5000",
			[]header{fwd("for=198.51.100.1"), xff("203.0.113.7")}, "10.0.0.1"},
		{"X-Forwarded-For sent by the client through a Forwarded proxy", "10.0.0.1:5000",
			[]header{fwd("for=203.0.113.7"), xff("198.51.100.1")}, "10.0.0.1"},
		{"both headers parting after a trusted hop", "10.0.0.1:5000",
			[]header{fwd("for=198.51.100.1, for=10.0.0.2"), xff("203.0.113.7, 10.0.0.2")}, "10.0.0.2"},
		{"both headers, one running out", "10.0.0.1:5000",
			[]header{fwd("for=10.0.0.2"), xff("203.0.113.7, 10.0.0.2")}, "10.0.0.2"},

		// Bounds.
		{"64 trusted hops are walked", "10.0.0.1:5000",
			[]header{xff("203.0.113.7" + hops(", 10.0.0.2", 63))}, "203.0.113.7"},
		{"the 65th hop is not", "10.0.0.1:5000",
			[]header{xff("203.0.113.7" + hops(", 10.0.0.2", 64))}, "10.0.0.2"},
		{"hops are counted across lines", "10.0.0.1:5000",
			[]header{xff("203.0.113.7"), xff(hops("10.0.0.3, ", 63) + "10.0.0.2")}, "10.0.0.3"},
		{"a megabyte of client garbage is not read", "10.0.0.1:5000",
			[]header{xff(strings.Repeat(",\"[", 1<<20) + ", 203.0.113.7")}, "203.0.113.7"},
		{"a megabyte of client garbage in Forwarded is not read", "10.0.0.1:5000",
			[]header{fwd(strings.Repeat(`"\`, 1<<20) + ", for=203.0.113.7")}, "203.0.113.7"},
		{"a hop cut by the byte bound is not read", "10.0.0.1:5000",
			// The rightmost 8 KiB start at "1.2.3.4", a fragment of "211.2.3.4".
			[]header{xff("211.2.3.4," + strings.Repeat(" ", 8192-len("1.2.3.4,")-len("10.0.0.2")) + "10.0.0.2")}, "10.0.0.2"},
		{"a hop just inside the byte bound is read", "10.0.0.1:5000",
			[]header{xff("211.2.3.4," + strings.Repeat(" ", 8192-len("211.2.3.4,")-len("10.0.0.2")) + "10.0.0.2")}, "211.2.3.4"},
		{"the byte bound spans lines", "10.0.0.1:5000",
			[]header{xff("211.2.3.4"), xff("10.0.0.3," + strings.Repeat(" ", 8192-len("10.0.0.3,")-len("10.0.0.2")) + "10.0.0.2")}, "10.0.0.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.ClientIP(request(tc.remote, tc.headers...))
			if err != nil {
				t.Fatal(err)
			}
			if want := netip.MustParseAddr(tc.want); got != want {
				t.Errorf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

func TestClientIPUnknownPeer(t *testing.T) {
	r := newResolver(t, trusted...)
	for _, remote := range []string{"", "@", "/run/rampart.sock", "example.test:80", "10.0.0.1:"} {
		_, err := r.ClientIP(request(remote, xff("203.0.113.7")))
		if !errors.Is(err, clientip.ErrUnknownPeer) {
			t.Errorf("RemoteAddr %q: err = %v, want ErrUnknownPeer", remote, err)
		}
	}
}

func TestZeroResolverTrustsNoProxy(t *testing.T) {
	var r clientip.Resolver
	got, err := r.ClientIP(request("10.0.0.1:5000", xff("203.0.113.7"), fwd("for=203.0.113.7")))
	if err != nil || got != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("ClientIP = %v, %v; want the peer", got, err)
	}
}

func TestNew(t *testing.T) {
	t.Run("entries are prefixes or addresses", func(t *testing.T) {
		r := newResolver(t, " 10.0.0.0/8", "192.0.2.1/24", "2001:db8::1", "::ffff:198.51.100.0/120")
		for _, tc := range []struct {
			peer    string
			trusted bool
		}{
			{"10.1.2.3", true},
			{"192.0.2.200", true}, // the prefix is masked
			{"192.0.3.1", false},
			{"2001:db8::1", true},
			{"2001:db8::2", false},
			{"198.51.100.9", true}, // the mapped prefix is taken as IPv4
			{"::ffff:10.1.2.3", true},
		} {
			got, _ := r.ClientIP(request(netip.AddrPortFrom(netip.MustParseAddr(tc.peer), 1).String(), xff("203.0.113.7")))
			if trusted := got == netip.MustParseAddr("203.0.113.7"); trusted != tc.trusted {
				t.Errorf("peer %s: trusted = %v, want %v", tc.peer, trusted, tc.trusted)
			}
		}
	})
	t.Run("no entries trust nothing", func(t *testing.T) {
		r := newResolver(t)
		got, _ := r.ClientIP(request("10.0.0.1:1", xff("203.0.113.7")))
		if got != netip.MustParseAddr("10.0.0.1") {
			t.Errorf("ClientIP = %v, want the peer", got)
		}
	})
	t.Run("a bad entry is named", func(t *testing.T) {
		for _, entry := range []string{"", "example.test", "10.0.0.0/33", "10.0.0.1/", "fe80::1%eth0",
			"0.0.0.0/0", "::/0", "::ffff:0:0/96", "10.0.0.0-10.0.0.9"} {
			_, err := clientip.New([]string{"10.0.0.0/8", entry})
			if err == nil {
				t.Errorf("New accepted %q", entry)
				continue
			}
			if !strings.Contains(err.Error(), `"`+entry+`"`) {
				t.Errorf("error %q does not name %q", err, entry)
			}
		}
	})
}

func TestForwardingHeaders(t *testing.T) {
	names := clientip.ForwardingHeaders()
	for _, want := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("ForwardingHeaders() lacks %s", want)
		}
	}
	for _, n := range names {
		if n != http.CanonicalHeaderKey(n) {
			t.Errorf("%q is not in canonical form", n)
		}
	}
	names[0] = "changed"
	if clientip.ForwardingHeaders()[0] == "changed" {
		t.Error("ForwardingHeaders returns a shared slice")
	}
}
