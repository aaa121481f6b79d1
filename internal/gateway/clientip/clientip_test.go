package clientip_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/gateway/clientip"
)

// The trusted proxies of most tests: a private network, one single address,
// and an IPv6 prefix.
var trusted = []string{"10.0.0.0/8", "192.0.2.10", "2001:db8:ffff::/48"}

func newResolver(t testing.TB, header string, proxies ...string) *clientip.Resolver {
	t.Helper()
	r, err := clientip.New(clientip.Config{TrustedProxies: proxies, Header: header})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// unusable is the want of a case where ClientIP must fail with
// ErrUnusableHeader.
const unusable = "unusable"

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

// TestClientIP reads X-Forwarded-For cases with a resolver configured for
// it, and Forwarded cases (every header a Forwarded line) with one
// configured for Forwarded.
func TestClientIP(t *testing.T) {
	rx := newResolver(t, "", trusted...)
	rf := newResolver(t, "Forwarded", trusted...)
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

		// X-Forwarded-For, malformed: no answer, never a trusted hop.
		{"garbage from the trusted peer is unusable", "10.0.0.1:5000",
			[]header{xff("not-an-address")}, unusable},
		{"garbage left of a trusted hop is unusable", "10.0.0.1:5000",
			[]header{xff("203.0.113.7, garbage, 10.0.0.2")}, unusable},
		{"garbage left of the client is never read", "10.0.0.1:5000",
			[]header{xff("\x00\xff;,,\"[, 203.0.113.7")}, "203.0.113.7"},
		{"an empty element is unusable", "10.0.0.1:5000",
			[]header{xff("203.0.113.7, , 10.0.0.2")}, unusable},
		{"a trailing comma is unusable", "10.0.0.1:5000",
			[]header{xff("203.0.113.7,")}, unusable},
		{"an empty line is unusable", "10.0.0.1:5000",
			[]header{xff("203.0.113.7"), xff("")}, unusable},
		{"unknown is unusable", "10.0.0.1:5000",
			[]header{xff("203.0.113.7, unknown")}, unusable},
		{"a zone is refused", "10.0.0.1:5000",
			[]header{xff("fe80::1%eth0")}, unusable},
		{"an IPv6 hop with a port needs brackets", "10.0.0.1:5000",
			[]header{xff("203.0.113.7, 2001:db8::7:99999")}, unusable},
		{"leading zeros are refused", "10.0.0.1:5000",
			[]header{xff("010.0.0.1")}, unusable},
		{"a bad port is refused", "10.0.0.1:5000",
			[]header{xff("203.0.113.7:http")}, unusable},

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
		{"Forwarded obfuscated identifier is unusable", "10.0.0.1:5000",
			[]header{fwd("for=198.51.100.1, for=_hidden, for=10.0.0.2")}, unusable},
		{"Forwarded unknown is unusable", "10.0.0.1:5000",
			[]header{fwd("for=198.51.100.1, for=unknown")}, unusable},
		{"Forwarded unknown from the client is never read", "10.0.0.1:5000",
			[]header{fwd("for=unknown, for=203.0.113.7")}, "203.0.113.7"},
		{"Forwarded element without for", "10.0.0.1:5000",
			[]header{fwd("for=198.51.100.1, proto=https;by=10.0.0.1")}, unusable},
		{"Forwarded duplicate for", "10.0.0.1:5000",
			[]header{fwd("for=198.51.100.1;for=203.0.113.7")}, unusable},
		{"Forwarded IPv6 must be bracketed to take a port", "10.0.0.1:5000",
			[]header{fwd(`for="2001:db8::1:4711:1:1:1:1"`)}, unusable},
		{"Forwarded unterminated quote from the client", "10.0.0.1:5000",
			[]header{fwd(`for="198.51.100.1, for=203.0.113.7`)}, "203.0.113.7"},
		{"Forwarded stray quote from the client", "10.0.0.1:5000",
			[]header{fwd(`for=198.51.100.1", for="203.0.113.7"`)}, "203.0.113.7"},
		{"Forwarded client's quoted string swallowing a comma", "10.0.0.1:5000",
			[]header{fwd(`ext="x, for=198.51.100.1", for=203.0.113.7`)}, "203.0.113.7"},
		{"Forwarded unterminated quote left of a trusted hop", "10.0.0.1:5000",
			[]header{fwd(`for="203.0.113.7, for=10.0.0.2`)}, unusable},
		{"Forwarded garbage", "10.0.0.1:5000",
			[]header{fwd(`;;==;"`)}, unusable},
		{"Forwarded control byte in a quoted string", "10.0.0.1:5000",
			[]header{fwd("for=\"203.0.113.7\x01\"")}, unusable},
		{"Forwarded junk after a value", "10.0.0.1:5000",
			[]header{fwd(`for="203.0.113.7"x`)}, unusable},

		// Bounds.
		{"64 trusted hops are walked", "10.0.0.1:5000",
			[]header{xff("203.0.113.7" + hops(", 10.0.0.2", 63))}, "203.0.113.7"},
		{"the 65th hop is beyond the bound", "10.0.0.1:5000",
			[]header{xff("203.0.113.7" + hops(", 10.0.0.2", 64))}, unusable},
		{"hops are counted across lines", "10.0.0.1:5000",
			[]header{xff("203.0.113.7"), xff(hops("10.0.0.3, ", 63) + "10.0.0.2")}, unusable},
		{"a megabyte of client garbage is not read", "10.0.0.1:5000",
			[]header{xff(strings.Repeat(",\"[", 1<<20) + ", 203.0.113.7")}, "203.0.113.7"},
		{"a megabyte of client garbage in Forwarded is not read", "10.0.0.1:5000",
			[]header{fwd(strings.Repeat(`"\`, 1<<20) + ", for=203.0.113.7")}, "203.0.113.7"},
		{"a hop cut by the byte bound is unusable", "10.0.0.1:5000",
			// The rightmost 8 KiB start at "1.2.3.4", a fragment of "211.2.3.4".
			[]header{xff("211.2.3.4," + strings.Repeat(" ", 8192-len("1.2.3.4,")-len("10.0.0.2")) + "10.0.0.2")}, unusable},
		{"a hop just inside the byte bound is read", "10.0.0.1:5000",
			[]header{xff("211.2.3.4," + strings.Repeat(" ", 8192-len("211.2.3.4,")-len("10.0.0.2")) + "10.0.0.2")}, "211.2.3.4"},
		{"the byte bound spans lines", "10.0.0.1:5000",
			[]header{xff("211.2.3.4"), xff("10.0.0.3," + strings.Repeat(" ", 8192-len("10.0.0.3,")-len("10.0.0.2")) + "10.0.0.2")}, unusable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rf
			for _, h := range tc.headers {
				if h.name != "Forwarded" {
					r = rx
				}
			}
			checkClientIP(t, r, request(tc.remote, tc.headers...), tc.want)
		})
	}
}

func checkClientIP(t *testing.T, r *clientip.Resolver, req *http.Request, want string) {
	t.Helper()
	got, err := r.ClientIP(req)
	if want == unusable {
		if !errors.Is(err, clientip.ErrUnusableHeader) {
			t.Errorf("ClientIP = %v, %v; want ErrUnusableHeader", got, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if w := netip.MustParseAddr(want); got != w {
		t.Errorf("ClientIP = %v, want %v", got, w)
	}
}

// TestOnlyTheConfiguredHeaderIsRead is the attack of a client behind a
// trusted proxy that appends to one header and passes the other through:
// whatever the client puts in the other one, it cannot change its address,
// neither to one of its choosing nor to the proxy's.
func TestOnlyTheConfiguredHeaderIsRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		header  string // the resolver's
		headers []header
		want    string
	}{
		{"a client's Forwarded through an X-Forwarded-For proxy", "",
			[]header{fwd("for=198.51.100.1"), xff("203.0.113.7")}, "203.0.113.7"},
		{"a client's Forwarded unknown through an X-Forwarded-For proxy", "",
			[]header{fwd("for=unknown"), xff("203.0.113.7")}, "203.0.113.7"},
		{"a client's malformed Forwarded through an X-Forwarded-For proxy", "X-Forwarded-For",
			[]header{fwd(`for="`), xff("203.0.113.7, 10.0.0.2")}, "203.0.113.7"},
		{"a client's X-Forwarded-For through a Forwarded proxy", "Forwarded",
			[]header{fwd("for=203.0.113.7"), xff("198.51.100.1")}, "203.0.113.7"},
		{"a client's X-Forwarded-For naming a trusted hop through a Forwarded proxy", "forwarded",
			[]header{fwd("for=203.0.113.7"), xff("10.0.0.9")}, "203.0.113.7"},
		{"a client's X-Real-IP through an X-Forwarded-For proxy", "",
			[]header{{"X-Real-Ip", "198.51.100.1"}, xff("203.0.113.7")}, "203.0.113.7"},
		{"an X-Forwarded-For proxy that wrote nothing: the peer", "",
			[]header{fwd("for=198.51.100.1")}, "10.0.0.1"},

		{"X-Real-IP", "X-Real-IP", []header{{"X-Real-Ip", " 203.0.113.7 "}, xff("198.51.100.1")}, "203.0.113.7"},
		{"X-Real-IP with IPv6", "X-Real-IP", []header{{"X-Real-Ip", "[2001:db8::7]:443"}}, "2001:db8::7"},
		{"X-Real-IP naming a trusted host", "X-Real-IP", []header{{"X-Real-Ip", "10.0.0.5"}}, "10.0.0.5"},
		{"X-Real-IP absent: the peer", "X-Real-IP", []header{xff("198.51.100.1")}, "10.0.0.1"},
		{"X-Real-IP on two lines", "X-Real-IP", []header{{"X-Real-Ip", "198.51.100.1"}, {"X-Real-Ip", "203.0.113.7"}}, unusable},
		{"X-Real-IP with a list", "X-Real-IP", []header{{"X-Real-Ip", "198.51.100.1, 203.0.113.7"}}, unusable},
		{"X-Real-IP unknown", "X-Real-IP", []header{{"X-Real-Ip", "unknown"}}, unusable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkClientIP(t, newResolver(t, tc.header, trusted...), request("10.0.0.1:5000", tc.headers...), tc.want)
		})
	}
}

func TestClientIPUnknownPeer(t *testing.T) {
	r := newResolver(t, "", trusted...)
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
		r := newResolver(t, "", " 10.0.0.0/8", "192.0.2.1/24", "2001:db8::1", "::ffff:198.51.100.0/120")
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
		r := newResolver(t, "")
		got, _ := r.ClientIP(request("10.0.0.1:1", xff("203.0.113.7")))
		if got != netip.MustParseAddr("10.0.0.1") {
			t.Errorf("ClientIP = %v, want the peer", got)
		}
	})
	t.Run("a bad entry is named", func(t *testing.T) {
		for _, entry := range []string{"", "example.test", "10.0.0.0/33", "10.0.0.1/", "fe80::1%eth0",
			"0.0.0.0/0", "::/0", "::ffff:0:0/96", "10.0.0.0-10.0.0.9"} {
			_, err := clientip.New(clientip.Config{TrustedProxies: []string{"10.0.0.0/8", entry}})
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

func TestNewRefusesAnUnknownHeader(t *testing.T) {
	for _, h := range []string{"X-Forwarded-Host", "True-Client-IP", "X-Forwarded-For, Forwarded", " Forwarded"} {
		if _, err := clientip.New(clientip.Config{Header: h}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", h)) {
			t.Errorf("header %q: err = %v, want one naming it", h, err)
		}
	}
	for in, want := range map[string]string{"": "X-Forwarded-For", "x-forwarded-for": "X-Forwarded-For",
		"FORWARDED": "Forwarded", "X-Real-IP": "X-Real-Ip"} {
		r, err := clientip.New(clientip.Config{Header: in})
		if err != nil || r.Header() != want {
			t.Errorf("header %q: %v, %v; want %s", in, r, err, want)
		}
	}
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
