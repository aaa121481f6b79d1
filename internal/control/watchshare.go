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
type changesGroup struct {
	sharedQueries[int64, changesResult]
}

type changesResult struct {
	changes []store.Change // shared: read only
	current int64
}

// changes returns st.Changes(since), sharing a query for the same since
// that started after this call did. Each caller gets its own copy of the
// changes.
func (g *changesGroup) changes(ctx context.Context, st store.Store, since int64) ([]store.Change, int64, error) {
	r, err := g.do(ctx, since, func(ctx context.Context) (changesResult, error) {
		changes, current, err := st.Changes(ctx, since)
		return changesResult{changes, current}, err
	})
	return slices.Clone(r.changes), r.current, err
}

// decisionsGroup makes one store query for the services and gateways that
// read the decisions at the same time: a new decision wakes every watcher,
// and each then reads the decisions (GET /v1/decisions) at once. Without
// it, a thousand watchers make a thousand identical queries per decision,
// which queue on the store's few connections and delay the decision's
// arrival at the last of them by as much.
type decisionsGroup struct {
	sharedQueries[bool, []store.Decision]
}

// list returns st.ListDecisions(expired), sharing a query that started
// after this call did. Each caller gets its own copy.
func (g *decisionsGroup) list(ctx context.Context, st store.Store, expired bool) ([]store.Decision, error) {
	ds, err := g.do(ctx, expired, func(ctx context.Context) ([]store.Decision, error) {
		return st.ListDecisions(ctx, expired)
	})
	return slices.Clone(ds), err
}

// sharedQueries runs one query per key for the callers that ask at the same
// time, and gives them all its answer.
//
// A caller joins only a query that started after it asked. A watcher asks
// after its subscription saw a change committed (or, the first time, after
// it subscribed), and a service reloads after its watch told it of a
// change, so a query already running may have read the store before that
// change: joining it would hand the caller a stale answer (and a watcher
// would then sleep on a wake-up it has already used, missing the change
// until its timeout). Such a caller waits for the running query to end and
// then starts, or joins, the next one; or takes the answer of the last
// query to end, if that one started after it asked (callers woken by the
// end of a query do not all wake before the next one ends).
type sharedQueries[K comparable, V any] struct {
	mu       sync.Mutex
	started  uint64 // queries started so far
	inFlight map[K]*sharedCall[V]
	lastKey  K
	last     *sharedCall[V] // the last query to end, for lastKey
	waits    atomic.Int64   // callers that have waited for another's query (tests)
}

type sharedCall[V any] struct {
	seq  uint64 // sharedQueries.started when this query started
	done chan struct{}
	val  V // shared: read only
	err  error
}

// do returns query's answer for key, sharing a query for the same key that
// started after this call did. The caller that starts the query runs it to
// the end even if its own request is canceled, as others may wait for it;
// a timeout bounds it. The answer is shared: callers must not modify it.
func (g *sharedQueries[K, V]) do(ctx context.Context, key K, query func(context.Context) (V, error)) (V, error) {
	var zero V
	g.mu.Lock()
	if g.inFlight == nil {
		g.inFlight = map[K]*sharedCall[V]{}
	}
	asked := g.started
	for {
		if l := g.last; l != nil && g.lastKey == key && l.seq > asked {
			g.mu.Unlock()
			return l.val, l.err
		}
		c, ok := g.inFlight[key]
		if ok && c.seq > asked {
			g.mu.Unlock()
			g.waits.Add(1)
			select {
			case <-c.done:
			case <-ctx.Done():
				return zero, ctx.Err()
			}
			return c.val, c.err
		}
		if ok { // started before we asked: may not have seen what we must
			g.mu.Unlock()
			g.waits.Add(1)
			select {
			case <-c.done:
			case <-ctx.Done():
				return zero, ctx.Err()
			}
			g.mu.Lock()
			continue
		}
		g.started++
		c = &sharedCall[V]{seq: g.started, done: make(chan struct{})}
		g.inFlight[key] = c
		g.mu.Unlock()
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		c.val, c.err = query(qctx)
		cancel()
		g.mu.Lock()
		delete(g.inFlight, key)
		if g.last == nil || c.seq > g.last.seq {
			g.lastKey, g.last = key, c
		}
		g.mu.Unlock()
		close(c.done)
		return c.val, c.err
	}
}
