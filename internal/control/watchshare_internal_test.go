package control

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// gatedStore answers Changes as a real store would around one commit: a
// query that read the store before the commit finds nothing new, one that
// starts after it finds the change. The first query blocks until released,
// so that the test can commit while it runs.
type gatedStore struct {
	store.Store // only Changes is used
	queries     atomic.Int32
	entered     chan struct{}
	release     chan struct{}
	committed   atomic.Bool
}

func (s *gatedStore) Changes(ctx context.Context, since int64) ([]store.Change, int64, error) {
	seen := s.committed.Load() // what this query reads
	if s.queries.Add(1) == 1 {
		close(s.entered)
		<-s.release
	}
	if !seen {
		return nil, since, nil
	}
	return []store.Change{{Revision: since + 1, Kind: "decision", Key: "d1"}}, since + 1, nil
}

func TestAWatcherWokenByACommitNeverJoinsAQueryThatStartedBeforeIt(t *testing.T) {
	st := &gatedStore{entered: make(chan struct{}), release: make(chan struct{})}
	var g changesGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	var first []store.Change
	wg.Add(1)
	go func() { // a watcher whose query reads the store before the commit
		defer wg.Done()
		first, _, _ = g.changes(ctx, st, 7)
	}()
	<-st.entered
	st.committed.Store(true) // a decision is committed; it wakes the other watcher
	woken := make(chan []store.Change, 1)
	go func() {
		ch, _, err := g.changes(ctx, st, 7)
		if err != nil {
			t.Error(err)
		}
		woken <- ch
	}()
	// The woken watcher must not be answered by the query that started
	// before the commit; give it every chance to (wrongly) join it.
	for g.waits.Load() < 1 {
		if ctx.Err() != nil {
			t.Fatal("the woken watcher never waited on the running query")
		}
		time.Sleep(time.Millisecond)
	}
	close(st.release)
	wg.Wait()
	if len(first) != 0 {
		t.Fatalf("the query that read the store before the commit found %v", first)
	}
	select {
	case got := <-woken:
		if len(got) != 1 || got[0].Key != "d1" {
			t.Errorf("the woken watcher got %v, want the committed change", got)
		}
	case <-ctx.Done():
		t.Fatal("the woken watcher never returned")
	}
	if n := st.queries.Load(); n != 2 {
		t.Errorf("%d queries, want 2: the woken watcher's own, after the commit", n)
	}
}
