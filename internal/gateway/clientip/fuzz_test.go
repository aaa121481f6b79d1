package clientip_test

import (
	"errors"
	"net/http"
	"net/netip"
	"testing"

	"github.com/rampartsec/rampart/internal/gateway/clientip"
)

// The fuzz targets hold the property the package exists for: whatever a
// client sends, it cannot choose its address. The client's bytes are the
// fuzzer's input; a trusted proxy then appends the client's real address
// (203.0.113.7) to the header it is configured to write, on the same line or
// on a line of its own, and the resolver must return exactly that address.
// The client's bytes in any header the resolver is not configured for must
// change nothing: the answer is still exactly the client's address, never
// the proxy's. The client's bytes alone, seen through the trusted peer, must
// yield a valid, unzoned, unmapped address or ErrUnusableHeader, without
// panicking. Seeds are in testdata/fuzz/FuzzForwarded and
// testdata/fuzz/FuzzXFF (unterminated and escaped quotes, obfuscated
// identifiers, "unknown", stray brackets, many commas, long and truncated
// values).

var (
	fuzzPeer   = "10.0.0.1:5000"
	fuzzClient = netip.MustParseAddr("203.0.113.7")
)

func FuzzForwarded(f *testing.F) {
	rf := newResolver(f, "Forwarded", trusted...)
	rx := newResolver(f, "X-Forwarded-For", trusted...)
	f.Fuzz(func(t *testing.T, sent string, ownLine bool) {
		checkAddr(t, rf, request(fuzzPeer, fwd(sent)), true)
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
			if got := checkAddr(t, rf, request(fuzzPeer, headers...), false); got != fuzzClient {
				t.Fatalf("Forwarded %q: ClientIP = %v, want %v", headers, got, fuzzClient)
			}
		}
		// A proxy that writes only X-Forwarded-For passes the client's
		// Forwarded through: it must change nothing.
		if got := checkAddr(t, rx, request(fuzzPeer, fwd(sent), xff("203.0.113.7")), false); got != fuzzClient {
			t.Fatalf("Forwarded %q through an X-Forwarded-For proxy: ClientIP = %v, want %v", sent, got, fuzzClient)
		}
	})
}

func FuzzXFF(f *testing.F) {
	rx := newResolver(f, "", trusted...)
	rf := newResolver(f, "Forwarded", trusted...)
	rr := newResolver(f, "X-Real-IP", trusted...)
	f.Fuzz(func(t *testing.T, sent string, ownLine bool) {
		checkAddr(t, rx, request(fuzzPeer, xff(sent)), true)
		checkAddr(t, rr, request(fuzzPeer, header{"X-Real-Ip", sent}), true)
		for _, appended := range []string{
			"203.0.113.7",
			"203.0.113.7, 10.0.0.2",
			"[::ffff:203.0.113.7]:4711,2001:db8:ffff::2",
		} {
			headers := []header{xff(sent + ", " + appended)}
			if ownLine {
				headers = []header{xff(sent), xff(appended)}
			}
			if got := checkAddr(t, rx, request(fuzzPeer, headers...), false); got != fuzzClient {
				t.Fatalf("X-Forwarded-For %q: ClientIP = %v, want %v", headers, got, fuzzClient)
			}
		}
		if got := checkAddr(t, rf, request(fuzzPeer, fwd("for=203.0.113.7"), xff(sent)), false); got != fuzzClient {
			t.Fatalf("X-Forwarded-For %q through a Forwarded proxy: ClientIP = %v, want %v", sent, got, fuzzClient)
		}
		// A client's X-Real-IP through a proxy that sets X-Real-IP is
		// overwritten; through one that appends to X-Forwarded-For it is
		// not read.
		if got := checkAddr(t, rx, request(fuzzPeer, header{"X-Real-Ip", sent}, xff("203.0.113.7")), false); got != fuzzClient {
			t.Fatalf("X-Real-IP %q through an X-Forwarded-For proxy: ClientIP = %v, want %v", sent, got, fuzzClient)
		}
	})
}

// checkAddr returns the client address of req, failing unless it is valid,
// unzoned and unmapped; with mayRefuse, ErrUnusableHeader is allowed too
// (and the zero Addr returned).
func checkAddr(t *testing.T, r *clientip.Resolver, req *http.Request, mayRefuse bool) netip.Addr {
	t.Helper()
	got, err := r.ClientIP(req)
	if mayRefuse && errors.Is(err, clientip.ErrUnusableHeader) {
		return netip.Addr{}
	}
	if err != nil {
		t.Fatalf("ClientIP: %v", err)
	}
	if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
		t.Fatalf("ClientIP = %#v: not a valid, unzoned, unmapped address", got)
	}
	return got
}
