package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// prune runs Prune, failing the test on an error.
func prune(t *testing.T, s store.Store, cfg store.PruneConfig) store.PruneResult {
	t.Helper()
	res, err := s.Prune(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Prune(%+v): %v", cfg, err)
	}
	return res
}

func testPrune(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()

	// Events: 5 before the cutoff, one at it and 2 after; batches of 2
	// make the prune take several.
	old := events("old", 5, base.Add(-time.Hour))
	kept := append(events("new", 2, base.Add(time.Millisecond)), event("at", base))
	mustAppend(t, s, append(old, kept...))

	// Decisions: one expired, one live, one that never expires.
	expired := mustDecide(t, s, store.Decision{Scope: store.ScopeIP, Value: "192.0.2.1", Action: store.ActionBlock, Expires: time.Now().Add(50 * time.Millisecond)})
	live := mustDecide(t, s, store.Decision{Scope: store.ScopeIP, Value: "192.0.2.2", Action: store.ActionBlock, Expires: time.Now().Add(time.Hour)})
	forever := mustDecide(t, s, store.Decision{Scope: store.ScopeUser, Value: "eve", Action: store.ActionReadOnly})

	// Join tokens: one used up, one expired, one revoked, one usable and
	// one with a use spent and one left.
	usedTok, _, err := s.CreateJoinToken(ctx, store.JoinTokenSpec{Service: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeJoinToken(ctx, usedTok, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateJoinToken(ctx, store.JoinTokenSpec{Service: "shop", TTL: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	_, revoked, err := s.CreateJoinToken(ctx, store.JoinTokenSpec{Service: "shop", Uses: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeJoinToken(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	usable, _, err := s.CreateJoinToken(ctx, store.JoinTokenSpec{Service: "orders", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	partly, _, err := s.CreateJoinToken(ctx, store.JoinTokenSpec{Service: "orders", Uses: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeJoinToken(ctx, partly, "orders"); err != nil {
		t.Fatal(err)
	}

	// Instances: one gone before the cutoff, one seen after it.
	if err := s.Heartbeat(ctx, store.Instance{Service: "shop", ID: "shop-1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetServiceRevoked(ctx, "shop", true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the decision and the short token expire
	cutoff := time.Now()
	time.Sleep(5 * time.Millisecond)
	if err := s.Heartbeat(ctx, store.Instance{Service: "orders", ID: "orders-1"}); err != nil {
		t.Fatal(err)
	}

	cfg := store.PruneConfig{
		EventsBefore:    base,
		DecisionsBefore: time.Now().Add(2 * time.Hour), // later than now: live decisions stay all the same
		TokensBefore:    time.Now().Add(2 * time.Hour), // and usable tokens
		InstancesBefore: cutoff,
		Batch:           2,
	}
	got := prune(t, s, cfg)
	want := store.PruneResult{Events: 5, Decisions: 1, JoinTokens: 3, Instances: 1}
	if got != want || got.Total() != 10 {
		t.Errorf("Prune = %+v, want %+v", got, want)
	}
	t.Run("a retried prune deletes nothing more", func(t *testing.T) {
		if got := prune(t, s, cfg); got != (store.PruneResult{}) {
			t.Errorf("second Prune = %+v, want nothing", got)
		}
	})

	if got, want := ids(all(t, s, store.EventFilter{})), []string{"at", "new-0000", "new-0001"}; !slices.Equal(got, want) {
		t.Errorf("events left %v, want %v", got, want)
	}
	ds, err := s.ListDecisions(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, d := range ds {
		left = append(left, d.ID)
	}
	if want := []string{live.ID, forever.ID}; !slices.Equal(left, want) {
		t.Errorf("decisions left %v, want the live %s and the lasting %s (not the expired %s)", left, live.ID, forever.ID, expired.ID)
	}
	if _, err := s.Decision(ctx, expired.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("pruned decision: %v, want ErrNotFound", err)
	}
	if _, err := s.ConsumeJoinToken(ctx, usedTok, "shop"); !errors.Is(err, store.ErrTokenUnknown) {
		t.Errorf("pruned used token: %v, want ErrTokenUnknown", err)
	}
	if _, err := s.ConsumeJoinToken(ctx, usable, "orders"); err != nil {
		t.Errorf("the usable token was pruned: %v", err)
	}
	if _, err := s.ConsumeJoinToken(ctx, partly, "orders"); err != nil {
		t.Errorf("the token with a use left was pruned: %v", err)
	}
	ins, err := s.Instances(ctx, store.InstanceFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].ID != "orders-1" {
		t.Errorf("instances left %+v, want orders-1 only", ins)
	}
	svc, err := s.Service(ctx, "shop")
	if err != nil || svc.Revoked.IsZero() {
		t.Errorf("the service of a pruned instance: %+v, %v; want it known and still revoked", svc, err)
	}

	t.Run("a zero config deletes nothing", func(t *testing.T) {
		if got := prune(t, s, store.PruneConfig{}); got != (store.PruneResult{}) {
			t.Errorf("Prune(zero) = %+v", got)
		}
		if _, err := s.Prune(ctx, store.PruneConfig{Batch: -1}); err == nil {
			t.Error("Prune with a negative batch: no error")
		}
	})
}

func testPruneChanges(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	decide := func() int64 {
		t.Helper()
		return mustDecide(t, s, store.Decision{Scope: store.ScopeUser, Value: "eve", Action: store.ActionBlock}).Revision
	}
	changes := func(since int64) ([]store.Change, int64) {
		t.Helper()
		cs, current, err := s.Changes(ctx, since)
		if err != nil {
			t.Fatalf("Changes(%d): %v", since, err)
		}
		return cs, current
	}
	wantReset := func(since, current int64) {
		t.Helper()
		cs, cur := changes(since)
		if len(cs) != 1 || cs[0].Kind != store.ChangeReset || cs[0].Revision != current || cur != current {
			t.Errorf("Changes(%d) = %+v, %d; want one reset at %d", since, cs, cur, current)
		}
	}
	wantRevisions := func(since int64, want ...int64) {
		t.Helper()
		cs, _ := changes(since)
		var got []int64
		for _, c := range cs {
			if c.Kind == store.ChangeReset {
				t.Errorf("Changes(%d): a reset, want changes %v", since, want)
			}
			got = append(got, c.Revision)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Changes(%d) revisions %v, want %v", since, got, want)
		}
	}

	for range 3 {
		decide()
	}
	time.Sleep(5 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(5 * time.Millisecond)
	decide()
	r5 := decide()
	if r5 != 5 {
		t.Fatalf("fifth change has revision %d", r5)
	}
	wantRevisions(0, 1, 2, 3, 4, 5) // nothing pruned yet: no reset

	cfg := store.PruneConfig{ChangesBefore: cutoff, Batch: 2}
	if got := prune(t, s, cfg); got != (store.PruneResult{Changes: 3}) {
		t.Errorf("Prune = %+v, want 3 changes", got)
	}
	if got := prune(t, s, cfg); got != (store.PruneResult{}) {
		t.Errorf("retried Prune = %+v, want nothing", got)
	}
	wantReset(0, 5)
	wantReset(2, 5)
	wantRevisions(3, 4, 5) // up to date with the last pruned change: nothing missed
	wantRevisions(5)
	wantRevisions(9) // ahead: nothing, as before

	// Everything old: every change goes, and only a watcher behind resets.
	if got := prune(t, s, store.PruneConfig{ChangesBefore: time.Now().Add(time.Hour)}); got != (store.PruneResult{Changes: 2}) {
		t.Errorf("Prune of all = %+v, want 2 changes", got)
	}
	wantRevisions(5)
	wantReset(4, 5)
	r6 := decide()
	wantRevisions(5, r6)
	wantReset(4, r6)

}
