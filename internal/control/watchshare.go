package control

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// changesGroup makes one store query for the watchers that ask for the
// changes since the same revision at the same time. A change wakes every
// watcher at once, and they mostly all wait from the same revision: without
// it, n open watches make n identical queries per change, and the store is
// busy with them while an admin waits.
//
// A watcher joins only a query that started after it asked. It asks after
// its subscription saw a change committed (or, the first time, after it
// subscribed), so a query already running may have read the store before
// that change: joining it would hand the watcher a stale empty answer, and
// the watcher would then sleep on a wake-up it has already used, missing
// the change until its timeout. Such a watcher waits for the running query
// to end and then starts, or joins, the next one.
type changesGroup struct {
	mu       sync.Mutex
	started  uint64 // queries started so far
	inFlight map[int64]*changesCall
	waits    atomic.Int64 // callers that have waited for another's query (tests)
}

type changesCall struct {
	seq     uint64 // changesGroup.started when this query started
	done    chan struct{}
	changes []store.Change // shared: read only
	current int64
	err     error
}

// changes returns st.Changes(since), sharing a query for the same since
// that started after this call did. The caller that starts the query runs
// it to the end even if its own request is canceled, as others may wait for
// it; a timeout bounds it. Each caller gets its own copy of the changes.
func (g *changesGroup) changes(ctx context.Context, st store.Store, since int64) ([]store.Change, int64, error) {
	g.mu.Lock()
	if g.inFlight == nil {
		g.inFlight = map[int64]*changesCall{}
	}
	asked := g.started
	for {
		c, ok := g.inFlight[since]
		if ok && c.seq > asked {
			g.mu.Unlock()
			g.waits.Add(1)
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
			return slices.Clone(c.changes), c.current, c.err
		}
		if ok { // started before we asked: may not have seen what woke us
			g.mu.Unlock()
			g.waits.Add(1)
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
			g.mu.Lock()
			continue
		}
		g.started++
		c = &changesCall{seq: g.started, done: make(chan struct{})}
		g.inFlight[since] = c
		g.mu.Unlock()
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		c.changes, c.current, c.err = st.Changes(qctx, since)
		cancel()
		g.mu.Lock()
		delete(g.inFlight, since)
		g.mu.Unlock()
		close(c.done)
		return slices.Clone(c.changes), c.current, c.err
	}
}
