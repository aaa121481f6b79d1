// Package hub fans revision numbers out to a store's subscribers.
package hub

import (
	"context"
	"sync"
)

// Hub delivers the latest revision to every subscriber without ever
// blocking the publisher: each subscriber has a one-slot channel, and a
// revision not yet read is replaced by a newer one.
type Hub struct {
	mu     sync.Mutex
	subs   map[chan int64]struct{}
	last   int64
	closed bool
}

// Subscribe returns a channel that receives revisions published after this
// call. It is closed when ctx is done or the hub is closed; ok is false if
// the hub is already closed.
func (h *Hub) Subscribe(ctx context.Context) (ch <-chan int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	c := make(chan int64, 1)
	if h.subs == nil {
		h.subs = make(map[chan int64]struct{})
	}
	h.subs[c] = struct{}{}
	context.AfterFunc(ctx, func() { h.remove(c) })
	return c, true
}

func (h *Hub) remove(c chan int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[c]; ok {
		delete(h.subs, c)
		close(c)
	}
}

// Publish delivers rev to every subscriber if it is newer than the last
// revision published; older or repeated ones (a notification echoing a local
// commit) are dropped.
func (h *Hub) Publish(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev <= h.last {
		return
	}
	h.last = rev
	for c := range h.subs {
		select {
		case <-c: // drop the unread older revision
		default:
		}
		c <- rev // cannot block: the slot is free and only we send
	}
}

// Close closes every subscriber's channel; later subscriptions fail.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.subs {
		delete(h.subs, c)
		close(c)
	}
}
