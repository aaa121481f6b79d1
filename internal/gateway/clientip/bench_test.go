package clientip_test

import (
	"net/http"
	"testing"

	"github.com/rampartsec/rampart/internal/gateway/clientip"
)

// BenchmarkClientIP measures the cost per request: a client connected
// directly (the peer is not a trusted proxy, no header is read), and a client
// behind three trusted proxies, as each header reports them.
func BenchmarkClientIP(b *testing.B) {
	rx := newResolver(b, "", trusted...)
	rf := newResolver(b, "Forwarded", trusted...)
	for _, bc := range []struct {
		name string
		r    *clientip.Resolver
		req  *http.Request
	}{
		{"direct", rx, request("203.0.113.7:5000", header{"User-Agent", "bench"})},
		{"hops=3/xff", rx, request("10.0.0.1:5000",
			xff("198.51.100.1, 203.0.113.7, 10.0.0.3, 10.0.0.2"))},
		{"hops=3/forwarded", rf, request("10.0.0.1:5000",
			fwd(`for=198.51.100.1, for=203.0.113.7;proto=https, for=10.0.0.3;proto=https, for="[2001:db8:ffff::2]:4711";proto=https`))},
		{"hops=3/both", rx, request("10.0.0.1:5000",
			xff("198.51.100.1, 203.0.113.7, 10.0.0.3, 10.0.0.2"),
			fwd("for=198.51.100.1, for=203.0.113.7, for=10.0.0.3, for=10.0.0.2"))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.r.ClientIP(bc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
