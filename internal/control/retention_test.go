package control_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

func TestAWatcherBehindPrunedChangesIsToldToReset(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for range 3 {
		if _, err := e.store.CreateDecision(ctx, store.Decision{Scope: store.ScopeUser, Value: "eve", Action: store.ActionBlock}); err != nil {
			t.Fatal(err)
		}
	}
	watch := func(since string) control.WatchResult {
		t.Helper()
		return decode[control.WatchResult](t, e.do(t, "GET", "/v1/watch?timeout=0s&since="+since, nil), http.StatusOK)
	}
	if w := watch("1"); len(w.Changes) != 2 || w.Changes[0].Kind != store.ChangeDecision {
		t.Fatalf("before the prune: %+v, want 2 decision changes", w)
	}
	if _, err := e.store.Prune(ctx, store.PruneConfig{ChangesBefore: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, since := range []string{"0", "1", "2"} {
		w := watch(since)
		if len(w.Changes) != 1 || w.Changes[0].Kind != store.ChangeReset || w.Revision != 3 {
			t.Errorf("since=%s after the prune: %+v, want one reset at revision 3", since, w)
		}
	}
	if w := watch("3"); len(w.Changes) != 0 || w.Revision != 3 {
		t.Errorf("an up-to-date watcher after the prune: %+v, want no change at revision 3", w)
	}
	if w := watch("latest"); len(w.Changes) != 0 || w.Revision != 3 {
		t.Errorf("since=latest after the prune: %+v", w)
	}
	d, err := e.store.CreateDecision(ctx, store.Decision{Scope: store.ScopeUser, Value: "mallory", Action: store.ActionBlock})
	if err != nil {
		t.Fatal(err)
	}
	if w := watch("3"); len(w.Changes) != 1 || w.Changes[0].Key != d.ID || w.Revision != 4 {
		t.Errorf("a change after the prune: %+v, want decision %s at revision 4", w, d.ID)
	}
}

func TestServerPrunesOnSchedule(t *testing.T) {
	dir := initDir(t)
	srv, err := control.StartServer(t.Context(), control.ServerConfig{
		Dir: dir, Addr: "127.0.0.1:0",
		Retention: control.Retention{Events: time.Hour, Changes: -1, Interval: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// Another process over the same database, after the first prune at
	// start: only a later one deletes the old event.
	s, err := sqlite.Open(t.Context(), sqlite.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	mk := func(id string, at time.Time) store.Event {
		return store.Event{ID: id, Time: at, Kind: "sql_injection", Action: "blocked", Service: "shop", Data: []byte(`{}`)}
	}
	if _, err := s.AppendEvents(t.Context(), []store.Event{mk("old", now.Add(-2*time.Hour)), mk("recent", now.Add(-time.Minute))}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		evs, err := s.QueryEvents(t.Context(), store.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		if fmt.Sprint(ids) == "[recent]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %v 10s after they were stored, want [recent]: the old one should have been pruned", ids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	changes, _, err := s.Changes(t.Context(), 0)
	if err != nil || len(changes) == 0 || changes[0].Kind == store.ChangeReset {
		t.Errorf("changes kept forever: %+v, %v", changes, err)
	}
}
