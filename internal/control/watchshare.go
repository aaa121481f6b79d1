package control

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// changesGroup makes one store query for the watchers that ask for the
// changes since the same revision at the same time. A change wakes every
// watcher at once, and they mostly all wait from the same revision: without
// it, n open watches make n identical queries per change, and the store is
// busy with them while an admin waits.
type changesGroup struct {
	mu       sync.Mutex
	inFlight map[int64]*changesCall
}

type changesCall struct {
	done    chan struct{}
	changes []store.Change // shared: read only
	current int64
	err     error
}

// changes returns st.Changes(since), sharing a query in progress for the
// same since. The caller that starts the query runs it to the end even if
// its own request is canceled, as others may wait for it; a timeout bounds
// it. Each caller gets its own copy of the changes.
func (g *changesGroup) changes(ctx context.Context, st store.Store, since int64) ([]store.Change, int64, error) {
	g.mu.Lock()
	if g.inFlight == nil {
		g.inFlight = map[int64]*changesCall{}
	}
	c, ok := g.inFlight[since]
	if !ok {
		c = &changesCall{done: make(chan struct{})}
		g.inFlight[since] = c
		g.mu.Unlock()
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		c.changes, c.current, c.err = st.Changes(qctx, since)
		cancel()
		g.mu.Lock()
		delete(g.inFlight, since)
		g.mu.Unlock()
		close(c.done)
	} else {
		g.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return slices.Clone(c.changes), c.current, c.err
}
