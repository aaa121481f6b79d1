package authn

import (
	"crypto/sha256"
	"sync"
	"time"
)

// cachedToken is what a verified token left behind: enough to answer its
// next presentation without a signature check.
type cachedToken struct {
	principal  Principal
	validUntil time.Time // exp plus the issuer's clock skew
	issuer     *issuer
	thumbprint string // of the key that verified the token
}

// tokenCache maps the SHA-256 of verified tokens to their result. Only
// tokens whose signature verified get in, so an attacker fills it only
// with valid tokens of their own, each at the cost of a signature check
// on our side; the worst they achieve is evicting other users' entries,
// whose next request then costs a verification. Never a wrong answer.
type tokenCache struct {
	mu       sync.RWMutex
	entries  map[[sha256.Size]byte]cachedToken
	capacity int // 0 disables the cache
}

func newTokenCache(capacity int) *tokenCache {
	return &tokenCache{entries: make(map[[sha256.Size]byte]cachedToken), capacity: capacity}
}

func (c *tokenCache) get(key [sha256.Size]byte) (cachedToken, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	return e, ok
}

func (c *tokenCache) put(key [sha256.Size]byte, e cachedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.capacity <= 0 {
		return
	}
	if _, present := c.entries[key]; !present && len(c.entries) >= c.capacity {
		c.evict(now)
	}
	c.entries[key] = e
}

func (c *tokenCache) remove(key [sha256.Size]byte) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// evict makes room when the cache is full: expired entries first, then
// arbitrary ones (Go randomizes map iteration order) down to 7/8 of the
// capacity. Freeing an eighth at a time keeps the cost of these O(n)
// passes constant per insertion, amortized.
func (c *tokenCache) evict(now time.Time) {
	for k, e := range c.entries {
		if now.After(e.validUntil) {
			delete(c.entries, k)
		}
	}
	target := c.capacity - max(1, c.capacity/8)
	for k := range c.entries {
		if len(c.entries) <= target {
			break
		}
		delete(c.entries, k)
	}
}
