// Package fakeclock is a clock that only a test moves, for the components
// that take their time from a Now func() time.Time in their Config (the
// actor token signer and verifier, the gateway's rate limiter and
// authenticator, the control plane's key rotation): a test of an expiry or
// a refill advances it past the instant instead of sleeping until then.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a time source that stands still until Advance moves it. It is
// safe for concurrent use: the component reads it from its own goroutines
// while the test moves it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock that reads start until it is advanced.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time; give the method value c.Now to a Config.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d forward, or back if d is negative.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
