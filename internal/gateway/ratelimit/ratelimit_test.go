package ratelimit_test

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fakeclock"
	"github.com/rampartsec/rampart/internal/gateway/ratelimit"
)

// newClock returns a clock that stands still at a fixed instant until the
// test advances it.
func newClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
}

func newLimiter(t testing.TB, cfg ratelimit.Config) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// expect calls Allow and checks both results.
func expect(t *testing.T, l *ratelimit.Limiter, key string, wantOK bool, wantRetry time.Duration) {
	t.Helper()
	ok, retry := l.Allow(key)
	if ok != wantOK || retry != wantRetry {
		t.Fatalf("Allow(%q) = %v, %v; want %v, %v", key, ok, retry, wantOK, wantRetry)
	}
}

func TestAllow(t *testing.T) {
	t.Run("a burst, then refusal until the next token", func(t *testing.T) {
		c := newClock()
		l := newLimiter(t, ratelimit.Config{Rate: 10, Burst: 3, Now: c.Now})
		for range 3 {
			expect(t, l, "k", true, 0)
		}
		expect(t, l, "k", false, 100*time.Millisecond)
		c.Advance(99 * time.Millisecond)
		expect(t, l, "k", false, time.Millisecond)
		c.Advance(time.Millisecond)
		expect(t, l, "k", true, 0)
		expect(t, l, "k", false, 100*time.Millisecond)
	})
	t.Run("refused requests take no token", func(t *testing.T) {
		c := newClock()
		l := newLimiter(t, ratelimit.Config{Rate: 10, Burst: 1, Now: c.Now})
		expect(t, l, "k", true, 0)
		for range 100 {
			expect(t, l, "k", false, 100*time.Millisecond)
		}
		c.Advance(100 * time.Millisecond)
		expect(t, l, "k", true, 0)
	})
	t.Run("a bucket fills up to the burst and no further", func(t *testing.T) {
		c := newClock()
		l := newLimiter(t, ratelimit.Config{Rate: 10, Burst: 3, Now: c.Now})
		expect(t, l, "k", true, 0)
		c.Advance(time.Hour)
		for range 3 {
			expect(t, l, "k", true, 0)
		}
		expect(t, l, "k", false, 100*time.Millisecond)
	})
	t.Run("a partly spent bucket refills token by token", func(t *testing.T) {
		c := newClock()
		l := newLimiter(t, ratelimit.Config{Rate: 4, Burst: 4, Now: c.Now})
		for range 4 {
			expect(t, l, "k", true, 0)
		}
		c.Advance(600 * time.Millisecond) // 2.4 tokens
		expect(t, l, "k", true, 0)
		expect(t, l, "k", true, 0)
		expect(t, l, "k", false, 150*time.Millisecond) // 0.4 left, 0.6 to go
	})
	t.Run("a rate under one per second", func(t *testing.T) {
		c := newClock()
		l := newLimiter(t, ratelimit.Config{Rate: 0.5, Burst: 1, Now: c.Now})
		expect(t, l, "k", true, 0)
		expect(t, l, "k", false, 2*time.Second)
		c.Advance(1500 * time.Millisecond)
		expect(t, l, "k", false, 500*time.Millisecond)
	})
	t.Run("an interval rounded to the nanosecond", func(t *testing.T) {
		c := newClock()
		l := newLimiter(t, ratelimit.Config{Rate: 3, Burst: 1, Now: c.Now})
		expect(t, l, "k", true, 0)
		expect(t, l, "k", false, 333333333*time.Nanosecond)
	})
	t.Run("keys have their own buckets", func(t *testing.T) {
		c := newClock()
		l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 1, Now: c.Now})
		expect(t, l, "GET /login 203.0.113.7", true, 0)
		expect(t, l, "GET /login 203.0.113.7", false, time.Second)
		expect(t, l, "GET /login 203.0.113.8", true, 0)
		expect(t, l, "", true, 0)
	})
	t.Run("a clock going backwards grants nothing", func(t *testing.T) {
		c := newClock()
		l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 2, Now: c.Now})
		expect(t, l, "k", true, 0)
		expect(t, l, "k", true, 0)
		c.Advance(-time.Hour)
		expect(t, l, "k", false, time.Hour+time.Second)
		c.Advance(time.Hour)
		expect(t, l, "k", false, time.Second)
	})
	t.Run("the real clock by default", func(t *testing.T) {
		l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 1})
		if ok, _ := l.Allow("k"); !ok {
			t.Fatal("first request refused")
		}
		ok, retry := l.Allow("k")
		if ok || retry <= 0 || retry > time.Second {
			t.Fatalf("second request: %v, %v; want refused within a second", ok, retry)
		}
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   ratelimit.Config
		field string
	}{
		{ratelimit.Config{Rate: 0, Burst: 1}, "Rate"},
		{ratelimit.Config{Rate: -1, Burst: 1}, "Rate"},
		{ratelimit.Config{Rate: math.NaN(), Burst: 1}, "Rate"},
		{ratelimit.Config{Rate: math.Inf(1), Burst: 1}, "Rate"},
		{ratelimit.Config{Rate: 2e9, Burst: 1}, "Rate"},
		{ratelimit.Config{Rate: 1, Burst: 0}, "Burst"},
		{ratelimit.Config{Rate: 1, Burst: -5}, "Burst"},
		{ratelimit.Config{Rate: 1e-9, Burst: 2}, "Burst"},
		{ratelimit.Config{Rate: 1, Burst: math.MaxInt}, "Burst"},
		{ratelimit.Config{Rate: 1, Burst: 1, MaxKeys: -1}, "MaxKeys"},
	} {
		_, err := ratelimit.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), "Config."+tc.field) {
			t.Errorf("New(%+v): err = %v, want one naming Config.%s", tc.cfg, err, tc.field)
		}
	}
	if _, err := ratelimit.New(ratelimit.Config{Rate: 1e9, Burst: 1}); err != nil {
		t.Errorf("a token per nanosecond: %v", err)
	}
}

func TestMaxKeys(t *testing.T) {
	t.Run("shard bounds add up to MaxKeys", func(t *testing.T) {
		for _, maxKeys := range []int{0, 1, 2, 63, 64, 127, 128, 1000, 4095, 4096, 100_001} {
			l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 1, MaxKeys: maxKeys})
			n, bounds := ratelimit.Shards(l)
			sum := 0
			for _, b := range bounds {
				sum += b
				if b < 1 {
					t.Errorf("MaxKeys %d: a shard bound of %d", maxKeys, b)
				}
			}
			want := maxKeys
			if want == 0 {
				want = ratelimit.DefaultMaxKeys
			}
			if sum != want || n&(n-1) != 0 || n > 64 {
				t.Errorf("MaxKeys %d: %d shards holding %d, want a power of two ≤ 64 holding %d", maxKeys, n, sum, want)
			}
		}
	})
	t.Run("the number of buckets never exceeds MaxKeys", func(t *testing.T) {
		c := newClock()
		l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 5, MaxKeys: 1000, Now: c.Now})
		for i := range 20_000 {
			if ok, _ := l.Allow(strconv.Itoa(i)); !ok {
				t.Fatalf("key %d: a new key was refused", i)
			}
			if n := ratelimit.Len(l); n > 1000 {
				t.Fatalf("after %d keys: %d buckets", i+1, n)
			}
		}
	})
	t.Run("nor under concurrent use", func(t *testing.T) {
		l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 5, MaxKeys: 500})
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 5000 {
					l.Allow(strconv.Itoa(g) + "/" + strconv.Itoa(i))
				}
			})
		}
		wg.Wait()
		if n := ratelimit.Len(l); n > 500 {
			t.Fatalf("%d buckets", n)
		}
	})
	t.Run("buckets full again are dropped, several at a time", func(t *testing.T) {
		c := newClock()
		l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 5, MaxKeys: 64, Now: c.Now})
		for i := range 63 {
			l.Allow(strconv.Itoa(i))
		}
		c.Advance(time.Second) // the 63 are full again
		drain(t, l, "victim", 5)
		l.Allow("new")
		// The eviction sampled 8 buckets, at least 7 of them full again.
		if n := ratelimit.Len(l); n > 64-7+1 {
			t.Errorf("%d buckets after one eviction, want at most %d", n, 64-7+1)
		}
		for i := range 1000 {
			l.Allow("new" + strconv.Itoa(i))
		}
		expect(t, l, "victim", false, time.Second)
	})
	t.Run("a key rotating attacker cannot flush a throttled bucket", func(t *testing.T) {
		// The attacker's fresh keys each owe one token; the victim's bucket
		// owes five, so it is never the one that will be full soonest.
		c := newClock()
		l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: 5, MaxKeys: 64, Now: c.Now})
		drain(t, l, "victim", 5)
		for i := range 10_000 {
			l.Allow("attacker" + strconv.Itoa(i))
		}
		expect(t, l, "victim", false, time.Second)
		if n := ratelimit.Len(l); n != 64 {
			t.Errorf("%d buckets, want 64", n)
		}
	})
}

// drain spends the n tokens of a full bucket.
func drain(t *testing.T, l *ratelimit.Limiter, key string, n int) {
	t.Helper()
	for i := range n {
		if ok, _ := l.Allow(key); !ok {
			t.Fatalf("%s: request %d of a burst of %d refused", key, i+1, n)
		}
	}
	if ok, _ := l.Allow(key); ok {
		t.Fatalf("%s: request %d of a burst of %d allowed", key, n+1, n)
	}
}

func TestConcurrentAllowGrantsExactlyTheBurst(t *testing.T) {
	const (
		goroutines = 16
		attempts   = 500
		burst      = 1000
		keys       = 4
	)
	c := newClock() // frozen: no token is added during the test
	l := newLimiter(t, ratelimit.Config{Rate: 1, Burst: burst, Now: c.Now})
	var allowed [keys]atomic.Int64
	var start sync.WaitGroup
	start.Add(1)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			start.Wait()
			for i := range attempts {
				k := (g + i) % keys
				if ok, _ := l.Allow("key" + strconv.Itoa(k)); ok {
					allowed[k].Add(1)
				}
			}
		})
	}
	start.Done()
	wg.Wait()
	for k := range keys {
		if n := allowed[k].Load(); n != burst {
			t.Errorf("key%d: %d allowed of %d attempts, want exactly %d", k, n, goroutines*attempts/keys, burst)
		}
	}
}
