package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// Detection tests, run by Run.
var detectionTests = []struct {
	name string
	fn   func(t *testing.T, open OpenFunc)
}{
	{"the event log gives each event once, in commit order, across stores", testEventLog},
	{"an event subscriber is woken by an append", testSubscribeEvents},
	{"a cursor advances only from where it is", testCursor},
	{"an alert and its decisions are stored once", testPutAlert},
	{"one store at a time leads", testLead},
}

func testEventLog(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	a, b := open(t), open(t)
	// Batches from two stores at once, each out of time order.
	var wg sync.WaitGroup
	for i, s := range []store.Store{a, b} {
		wg.Go(func() {
			for j := range 10 {
				evs := events(fmt.Sprintf("s%d-b%d", i, j), 20, base)
				evs[0], evs[19] = evs[19], evs[0]
				if _, err := s.AppendEvents(ctx, evs); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if _, err := a.AppendEvents(ctx, events("s0-b0", 20, base)); err != nil { // a retry adds nothing
		t.Fatal(err)
	}
	var got []store.LoggedEvent
	var after int64
	for {
		page, err := b.ReadEventLog(ctx, store.EventLogFilter{After: after, Limit: 33})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].Seq
	}
	if len(got) != 400 {
		t.Fatalf("read %d events from the log, want 400", len(got))
	}
	seen := map[string]bool{}
	for i, e := range got {
		if seen[e.ID] {
			t.Errorf("event %s read twice", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && e.Seq <= got[i-1].Seq {
			t.Errorf("seq %d after %d", e.Seq, got[i-1].Seq)
		}
	}
	// Within a batch, the log is in time order.
	first := map[string]time.Time{}
	for _, e := range got {
		batch := e.ID[:len("s0-b0")]
		if t0, ok := first[batch]; ok && e.Time.Before(t0) {
			t.Errorf("%s out of time order in its batch", e.ID)
		}
		first[batch] = e.Time
	}
	// Through and Since bound it.
	page, err := a.ReadEventLog(ctx, store.EventLogFilter{Through: got[9].Seq, Since: base.Add(10 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page {
		if e.Seq > got[9].Seq || e.Time.Before(base.Add(10*time.Millisecond)) {
			t.Errorf("event %s (seq %d, %v) outside the filter", e.ID, e.Seq, e.Time)
		}
	}
	byID, err := a.EventsByID(ctx, []string{got[3].ID, got[1].ID, "nope"})
	if err != nil {
		t.Fatal(err)
	}
	if len(byID) != 2 {
		t.Errorf("EventsByID returned %d events, want 2", len(byID))
	}
}

func testSubscribeEvents(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	a, b := open(t), open(t)
	for _, s := range []store.Store{a, b} {
		ch, err := s.SubscribeEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.AppendEvents(ctx, events(fmt.Sprintf("sub-%p", s), 3, base)); err != nil {
			t.Fatal(err)
		}
		if s != a {
			// Another process's events reach it only where the store
			// is told of them (PostgreSQL's notifications).
			select {
			case <-ch:
			case <-time.After(2 * time.Second):
				t.Log("a second store was not woken by the first's events (no notifications in this engine)")
			}
			continue
		}
		select {
		case seq := <-ch:
			if seq <= 0 {
				t.Errorf("woken with seq %d", seq)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("not woken by an append through the same store")
		}
	}
}

func testCursor(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	if seq, err := s.Cursor(ctx, "detect"); err != nil || seq != 0 {
		t.Fatalf("Cursor = %d, %v; want 0", seq, err)
	}
	if err := s.AdvanceCursor(ctx, "detect", 0, 5); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceCursor(ctx, "detect", 0, 7); !errors.Is(err, store.ErrConflict) {
		t.Errorf("advance from a stale 0: %v, want ErrConflict", err)
	}
	if err := s.AdvanceCursor(ctx, "detect", 5, 9); err != nil {
		t.Fatal(err)
	}
	if seq, err := s.Cursor(ctx, "detect"); err != nil || seq != 9 {
		t.Errorf("Cursor = %d, %v; want 9", seq, err)
	}
}

func testPutAlert(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	ch, err := s.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, rev0, err := s.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := store.AlertID("injection", "203.0.113.7", "ev-1")
	a := store.Alert{ID: id, Scenario: "injection", Key: "203.0.113.7", Count: 3, First: base, Last: base.Add(time.Second),
		Evidence:  []string{"ev-1", "ev-2", "ev-3"},
		Decisions: []store.AlertDecision{{ID: store.AlertDecisionID(id, 0), Scope: "ip", Value: "203.0.113.7", Action: store.ActionBlock, TTL: "4h0m0s"}}}
	ds := []store.Decision{
		{ID: store.AlertDecisionID(id, 0), Scope: store.ScopeIP, Value: "203.0.113.7", Action: store.ActionBlock, Origin: "injection",
			AlertID: id, Evidence: a.Evidence, Expires: time.Now().Add(time.Hour)},
		{ID: store.AlertDecisionID(id, 1), Scope: store.ScopeUser, Value: "mallory", Action: store.ActionReadOnly, Origin: "injection",
			AlertID: id, Evidence: a.Evidence, Simulated: true, Expires: time.Now().Add(time.Hour)},
	}
	for i := range 3 {
		created, err := s.PutAlert(ctx, a, append([]store.Decision(nil), ds...))
		if err != nil {
			t.Fatal(err)
		}
		if created != (i == 0) {
			t.Errorf("put %d: created %v", i, created)
		}
	}
	got, err := s.Alert(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 3 || len(got.Evidence) != 3 || len(got.Decisions) != 1 || !got.First.Equal(base) {
		t.Errorf("Alert = %+v", got)
	}
	list, err := s.Alerts(ctx, store.AlertFilter{Scenario: "injection"})
	if err != nil || len(list) != 1 {
		t.Errorf("Alerts = %d, %v; want 1", len(list), err)
	}
	if list, err := s.Alerts(ctx, store.AlertFilter{Scenario: "other"}); err != nil || len(list) != 0 {
		t.Errorf("Alerts of another scenario = %d, %v; want 0", len(list), err)
	}
	all, err := s.ListDecisions(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("%d decisions, want 2 (one simulated)", len(all))
	}
	for _, d := range all {
		if d.AlertID != id || len(d.Evidence) != 3 || d.Origin != "injection" {
			t.Errorf("decision %+v: want its alert, evidence and origin", d)
		}
		if d.Simulated != (d.Revision == 0) {
			t.Errorf("decision %s: simulated %v with revision %d", d.ID, d.Simulated, d.Revision)
		}
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up for the alert's decision")
	}
	changes, _, err := s.Changes(ctx, rev0)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Key != ds[0].ID {
		t.Errorf("changes %+v, want one: the enforced decision's creation", changes)
	}
	// Alerts are pruned with the events.
	res, err := s.Prune(ctx, store.PruneConfig{EventsBefore: time.Now().Add(time.Minute)})
	if err != nil || res.Alerts != 1 {
		t.Errorf("Prune = %+v, %v; want 1 alert deleted", res, err)
	}
	if _, err := s.Alert(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Alert after prune: %v, want ErrNotFound", err)
	}
}

func testLead(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	a, b := open(t), open(t)
	l, err := a.Lead(ctx, "detect")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lead(ctx, "detect"); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("second Lead: %v, want ErrBusy", err)
	}
	other, err := b.Lead(ctx, "other")
	if err != nil {
		t.Fatalf("Lead of another name: %v", err)
	}
	other.Release()
	l.Release()
	l.Release()
	l2, err := b.Lead(ctx, "detect")
	if err != nil {
		t.Fatalf("Lead after release: %v", err)
	}
	l2.Release()
}
