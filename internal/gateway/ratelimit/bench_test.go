package ratelimit_test

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/rampartsec/rampart/internal/gateway/ratelimit"
)

// keys returns n distinct keys shaped like the gateway's: a route and an
// address.
func keys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = "GET /api/orders 10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	return ks
}

// The rate is high enough that most requests are allowed and a bucket is
// updated on each, the costlier path; the real clock is used, as in the
// gateway.
var benchConfig = ratelimit.Config{Rate: 1e6, Burst: 100}

// BenchmarkAllow measures one decision: a single hot key, keys spread over
// 65 536 buckets (under MaxKeys), and 65 536 keys rotating through 4 096
// buckets so that every new key evicts one.
func BenchmarkAllow(b *testing.B) {
	for _, bc := range []struct {
		name    string
		keys    int
		maxKeys int
	}{
		{"keys=1", 1, 0},
		{"keys=65536", 1 << 16, 0},
		{"keys=65536/evicting", 1 << 16, 1 << 12},
	} {
		cfg := benchConfig
		cfg.MaxKeys = bc.maxKeys
		ks := keys(bc.keys)
		b.Run(bc.name, func(b *testing.B) {
			l := newLimiter(b, cfg)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Allow(ks[i&(len(ks)-1)])
				i++
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			l := newLimiter(b, cfg)
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1)) * 7919 // a different walk per goroutine
				for pb.Next() {
					l.Allow(ks[i&(len(ks)-1)])
					i++
				}
			})
		})
	}
}
