package clientip_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/rampartsec/rampart/internal/gateway/clientip"
)

// The fuzz targets hold the property the package exists for: whatever a
// client sends, it cannot choose its address. The client's bytes are the
// fuzzer's input; a trusted proxy then appends the client's real address
// (203.0.113.7) to the same line or on a line of its own, and the resolver
// must return exactly that address. The client's bytes alone, seen through
// the trusted peer, must yield a valid, unzoned, unmapped address without
// panicking. Seeds are in testdata/fuzz/FuzzForwarded and
// testdata/fuzz/FuzzXFF (unterminated and escaped quotes, obfuscated
// identifiers, stray brackets, many commas, long and truncated values).

var (
	fuzzPeer   = "10.0.0.1:5000"
	fuzzClient = netip.MustParseAddr("203.0.113.7")
)

func FuzzForwarded(f *testing.F) {
	r := newResolver(f, trusted...)
	f.Fuzz(func(t *testing.T, sent string, ownLine bool) {
		checkAddr(t, r, request(fuzzPeer, fwd(sent)))
		for _, appended := range []string{
			"for=203.0.113.7",
			`for="203.0.113.7:4711";proto=https`,
			"for=203.0.113.7, for=10.0.0.2",
			`proto=https;for="[::ffff:203.0.113.7]";by=_gw, for="[2001:db8:ffff::2]:_p"`,
		} {
			headers := []header{fwd(sent + ", " + appended)}
			if ownLine {
				headers = []header{fwd(sent), fwd(appended)}
			}
			got := checkAddr(t, r, request(fuzzPeer, headers...))
			if got != fuzzClient {
				t.Fatalf("Forwarded %q: ClientIP = %v, want %v", headers, got, fuzzClient)
			}
		}
		// A proxy that writes only X-Forwarded-For passes the client's
		// Forwarded through: the client may lose its address to the peer's,
		// but never pick another.
		got := checkAddr(t, r, request(fuzzPeer, fwd(sent), xff("203.0.113.7")))
		if got != fuzzClient && got != netip.MustParseAddr("10.0.0.1") {
			t.Fatalf("Forwarded %q through an X-Forwarded-For proxy: ClientIP = %v", sent, got)
		}
	})
}

func FuzzXFF(f *testing.F) {
	r := newResolver(f, trusted...)
	f.Fuzz(func(t *testing.T, sent string, ownLine bool) {
		checkAddr(t, r, request(fuzzPeer, xff(sent)))
		for _, appended := range []string{
			"203.0.113.7",
			"203.0.113.7, 10.0.0.2",
			"[::ffff:203.0.113.7]:4711,2001:db8:ffff::2",
		} {
			headers := []header{xff(sent + ", " + appended)}
			if ownLine {
				headers = []header{xff(sent), xff(appended)}
			}
			got := checkAddr(t, r, request(fuzzPeer, headers...))
			if got != fuzzClient {
				t.Fatalf("X-Forwarded-For %q: ClientIP = %v, want %v", headers, got, fuzzClient)
			}
		}
		got := checkAddr(t, r, request(fuzzPeer, fwd("for=203.0.113.7"), xff(sent)))
		if got != fuzzClient && got != netip.MustParseAddr("10.0.0.1") {
			t.Fatalf("X-Forwarded-For %q through a Forwarded proxy: ClientIP = %v", sent, got)
		}
	})
}

func checkAddr(t *testing.T, r *clientip.Resolver, req *http.Request) netip.Addr {
	t.Helper()
	got, err := r.ClientIP(req)
	if err != nil {
		t.Fatalf("ClientIP: %v", err)
	}
	if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
		t.Fatalf("ClientIP = %#v: not a valid, unzoned, unmapped address", got)
	}
	return got
}
