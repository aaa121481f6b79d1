// Package ratelimit limits the rate of requests per key (a route and an
// actor's address, a user) with token buckets, in bounded memory.
//
// Each key has a bucket of Burst tokens that refills at Rate tokens per
// second; a request takes one token or is refused. A bucket is kept as one
// number, its theoretical arrival time (the generic cell rate algorithm): the
// instant at which the bucket will be full again. A bucket that is full is
// the same as no bucket at all, so only keys that spent tokens recently take
// memory, and at most Config.MaxKeys of them.
//
// # Eviction
//
// When a new key arrives and its shard is full, a bucket is dropped to make
// room. Dropping a bucket can only make the limit more lenient for its key,
// never stricter: the key starts again from a full bucket. The choice is
// made among a few buckets sampled at random (Go's map iteration order): all
// those already full again are dropped (this loses nothing), and if none is,
// the one that will be full soonest, the one whose loss forgives the fewest
// tokens.
//
// Eviction is thus no way for a client to escape its own limit cheaply. A
// client that rotates keys (IPv6 addresses within its /64, user names) to
// push its throttled bucket out must fill the shard with buckets deeper in
// debt than its own, that is, spend about as many tokens on each of them as
// it owes, and all of that within the time its own bucket takes to refill:
// to reset a bucket that owes d tokens, on the order of d·MaxKeys requests
// within d/Rate seconds. A client can evict someone else's bucket the same
// way, but that only hands the other key a fresh burst. Shards are picked by
// a keyed hash with a random seed per Limiter, so a client cannot aim its
// keys at one shard. The trade-off: a flood of fresh keys costs every busy
// key some memory of its debt when all sampled buckets are deeper in debt,
// in exchange for never refusing a new key for lack of room.
//
// Keys are kept as 64-bit keyed hashes, not as the strings themselves: memory
// does not grow with key length and Allow does not allocate. Two keys share a
// bucket only if their hashes collide: the chance that any two of 100 000
// live keys do is about 3·10⁻¹⁰, and a client cannot search for a key that
// collides with a victim's without the seed.
//
// A per-key limit holds only if clients cannot mint keys cheaply: the caller
// builds keys from what a client cannot multiply at will (an IPv6 client's
// /64 rather than its address, an authenticated user rather than a claimed
// name).
package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"
)

// DefaultMaxKeys is the bound on buckets when Config.MaxKeys is 0.
const DefaultMaxKeys = 100_000

const (
	// maxShards bounds the number of locks; 64 keeps contention low on
	// dozens of cores.
	maxShards = 64
	// minShardKeys keeps shards large enough that an eviction chooses among
	// buckets: with fewer keys than 64·minShardKeys there are fewer shards.
	minShardKeys = 64
	// evictionSample is how many buckets an eviction looks at.
	evictionSample = 8
	// maxTolerance bounds Burst/Rate so that arrival times never overflow.
	maxTolerance = time.Duration(1 << 60) // about 36 years
)

// Config configures a Limiter.
type Config struct {
	// Rate is the number of tokens a bucket gains per second: the sustained
	// rate of allowed requests per key. It must be positive, and at most 10⁹
	// (one token per nanosecond). The interval between tokens is rounded to
	// the nanosecond.
	Rate float64
	// Burst is the capacity of a bucket: how many requests a key that has
	// been quiet may make at once. It must be at least 1.
	Burst int
	// MaxKeys bounds the number of buckets kept (DefaultMaxKeys if 0).
	MaxKeys int
	// Now returns the current time (time.Now if nil). Tests set it.
	Now func() time.Time
}

// Limiter holds the buckets. It is safe for concurrent use.
type Limiter struct {
	interval  int64 // nanoseconds between tokens, 1/Rate
	tolerance int64 // Burst·interval: how far ahead of now a bucket may run
	now       func() time.Time
	epoch     time.Time // times are kept as nanoseconds since epoch
	seed      maphash.Seed
	shardBits uint // shards are picked by the top shardBits bits of the hash
	shards    []shard
}

type shard struct {
	mu sync.Mutex
	// tat maps a key's hash to its bucket's theoretical arrival time: the
	// instant, in nanoseconds since the epoch, at which the bucket is full.
	tat     map[uint64]int64
	maxKeys int
	_       [64 - 8 - 8 - 8]byte // a cache line per shard (mutex, map, int)
}

// New returns a Limiter for cfg, or an error naming the field that is out
// of range.
func New(cfg Config) (*Limiter, error) {
	if !(cfg.Rate > 0) || cfg.Rate > 1e9 {
		return nil, fmt.Errorf("ratelimit: Config.Rate is %v tokens per second, want more than 0 and at most 1e9", cfg.Rate)
	}
	if cfg.Burst < 1 {
		return nil, fmt.Errorf("ratelimit: Config.Burst is %d, want at least 1", cfg.Burst)
	}
	if cfg.MaxKeys < 0 {
		return nil, fmt.Errorf("ratelimit: Config.MaxKeys is %d, want 0 (the default, %d) or more", cfg.MaxKeys, DefaultMaxKeys)
	}
	interval := int64(math.Round(float64(time.Second) / cfg.Rate))
	if interval < 1 {
		interval = 1
	}
	if int64(cfg.Burst) > int64(maxTolerance)/interval {
		return nil, fmt.Errorf("ratelimit: Config.Burst %d at Config.Rate %v takes longer than %v to refill", cfg.Burst, cfg.Rate, maxTolerance)
	}
	maxKeys := cfg.MaxKeys
	if maxKeys == 0 {
		maxKeys = DefaultMaxKeys
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}

	// A power of two shards, each bound to its share of maxKeys (the
	// remainder spread over the first ones), so that the total is maxKeys.
	n := min(maxShards, max(1, maxKeys/minShardKeys))
	shardBits := uint(bits.Len(uint(n)) - 1)
	n = 1 << shardBits
	l := &Limiter{
		interval:  interval,
		tolerance: int64(cfg.Burst) * interval,
		now:       now,
		epoch:     now(),
		seed:      maphash.MakeSeed(),
		shardBits: shardBits,
		shards:    make([]shard, n),
	}
	for i := range l.shards {
		l.shards[i].tat = make(map[uint64]int64)
		l.shards[i].maxKeys = maxKeys / n
		if i < maxKeys%n {
			l.shards[i].maxKeys++
		}
	}
	return l, nil
}

// Allow takes a token from key's bucket. It reports whether there was one
// and, if not, how long until there is: a caller that waits retryAfter and
// tries again is allowed, unless others spent the token first.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	h := maphash.String(l.seed, key)
	now := int64(l.now().Sub(l.epoch))
	s := &l.shards[h>>(64-l.shardBits)] // a shift by 64 is 0: one shard

	s.mu.Lock()
	tat, found := s.tat[h]
	if !found || tat < now {
		tat = now // a full bucket
	}
	next := tat + l.interval
	if wait := next - now - l.tolerance; wait > 0 {
		s.mu.Unlock()
		return false, time.Duration(wait)
	}
	if !found && len(s.tat) >= s.maxKeys {
		s.evict(now)
	}
	s.tat[h] = next
	s.mu.Unlock()
	return true, 0
}

// evict removes at least one bucket from s: those full again among a random
// sample, or else the sampled one that will be full soonest.
func (s *shard) evict(now int64) {
	var (
		victim     uint64
		victimTAT  int64 = math.MaxInt64
		sampled    int
		removedAny bool
	)
	for h, tat := range s.tat {
		if tat <= now {
			delete(s.tat, h) // deleting during range is allowed
			removedAny = true
		} else if tat < victimTAT {
			victim, victimTAT = h, tat
		}
		if sampled++; sampled == evictionSample {
			break
		}
	}
	if !removedAny && victimTAT != math.MaxInt64 {
		delete(s.tat, victim)
	}
}

// len returns the number of buckets held, for tests.
func (l *Limiter) len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}
