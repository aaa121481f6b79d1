package control

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
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

// listGate is a store whose first ListDecisions reads the store, then
// blocks until released, as a query that read the store just before a
// commit and is slow to answer.
type listGate struct {
	store.Store
	queries atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (s *listGate) ListDecisions(ctx context.Context, expired bool) ([]store.Decision, error) {
	ds, err := s.Store.ListDecisions(ctx, expired)
	if s.queries.Add(1) == 1 {
		close(s.entered)
		<-s.release
	}
	return ds, err
}

// A new decision wakes every watcher, and each reads the decisions at
// once: the readers that ask together share one store query, and none is
// answered by a query that read the store before it asked.
func TestServicesReadingTheDecisionsTogetherShareOneQuery(t *testing.T) {
	lite, err := sqlite.Open(t.Context(), sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	st := &listGate{Store: lite, entered: make(chan struct{}), release: make(chan struct{})}
	authority, err := ca.Generate(spiffeid.RequireTrustDomainFromString("example.org"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	token, hash := NewAdminToken()
	h, err := New(Config{Store: st, CA: authority, AdminTokenHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	get := func() []store.Decision {
		req := httptest.NewRequest(http.MethodGet, "/v1/decisions", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var l DecisionList
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &l) != nil {
			t.Errorf("GET /v1/decisions: %d %s", rec.Code, rec.Body)
		}
		return l.Decisions
	}
	first := make(chan []store.Decision, 1)
	go func() { first <- get() }() // reads the store before the decision
	<-st.entered
	d, err := lite.CreateDecision(t.Context(), store.Decision{Scope: store.ScopeIP, Value: "203.0.113.9", Action: store.ActionBlock})
	if err != nil {
		t.Fatal(err)
	}
	const readers = 50
	got := make(chan []store.Decision, readers)
	for range readers {
		go func() { got <- get() }()
	}
	// Before the fix every reader queried the store itself; now they wait
	// for the query that read before them, then share the next.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for h.decisions.waits.Load() < readers && st.queries.Load() < readers+1 {
		if ctx.Err() != nil {
			t.Fatalf("readers never all waited: %d waits, %d queries", h.decisions.waits.Load(), st.queries.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(st.release)
	if ds := <-first; len(ds) != 0 {
		t.Errorf("the query that read before the decision found %v", ds)
	}
	for range readers {
		ds := <-got
		if len(ds) != 1 || ds[0].ID != d.ID {
			t.Fatalf("a reader that asked after the decision got %v", ds)
		}
	}
	if n := st.queries.Load(); n != 2 {
		t.Errorf("%d readers made %d store queries, want 2: the first reader's and one for all the others", readers+1, n)
	}
}
