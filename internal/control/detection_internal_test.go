package control

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/detect"
	"github.com/rampartsec/rampart/internal/store"
)

func TestDetectEventReadsDataAndLeavesOutAnUnverifiedActor(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	data := json.RawMessage(`{"method":"POST","path":"/login","status":401,"count":3,"device":"dev-1",
		"login":{"name":"alice","user":"u-1","exists":true},"object":{"kind":"order","id":"o-9","owner":"u-2"},
		"attrs":{"role":"admin"}}`)
	e := store.Event{ID: "ev-1", Time: at, Kind: "login_failure", Service: "auth", Route: "POST /login",
		ActorIP: "203.0.113.5", ActorUser: "u-1", SessionHash: "5e55", ActorVerified: true, Data: data}
	got := DetectEvent(e)
	want := detect.Event{ID: "ev-1", Time: at, Kind: "login_failure", Service: "auth", Route: "POST /login",
		Method: "POST", Path: "/login", Status: 401, Count: 3, ActorVerified: true,
		Actor:  detect.Actor{IP: "203.0.113.5", User: "u-1", Session: "5e55", Device: "dev-1"},
		Login:  detect.Login{Name: "alice", User: "u-1", Exists: true},
		Object: detect.Object{Kind: "order", ID: "o-9", Owner: "u-2"}, Attrs: map[string]string{"role": "admin"}}
	if gj, wj := mustJSON(t, got), mustJSON(t, want); gj != wj {
		t.Errorf("DetectEvent =\n%s\nwant\n%s", gj, wj)
	}

	e.ActorVerified, e.ActorClaimedBy = false, "auth"
	if got := DetectEvent(e); got.Actor != (detect.Actor{}) {
		t.Errorf("unverified actor kept: %+v", got.Actor)
	}

	// A field of an unexpected type is ignored, not the whole event.
	e.ActorVerified = true
	e.Data = json.RawMessage(`{"status":"401","path":"/x","name":"payout"}`)
	e.Kind = detect.KindBusiness
	if got := DetectEvent(e); got.Path != "/x" || got.Status != 0 || got.Attrs["name"] != "payout" {
		t.Errorf("DetectEvent with a mistyped field = %+v", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAlertRecordMapsScopesDevicesIncluded(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := detect.Alert{Scenario: "s", Key: "k", Count: 5, First: now, Last: now, Evidence: []string{"e1", "e2"},
		Decisions: []detect.Decision{
			{Scope: detect.ScopeRange, Value: "203.0.113.0/24", Action: detect.Block, TTL: time.Hour},
			{Scope: detect.ScopeDevice, Value: "c-0123456789abcdef", Action: detect.Block, TTL: time.Hour},
			{Scope: detect.ScopeUser, Value: "mallory", Action: detect.ReadOnly, TTL: time.Hour, Simulate: true},
			{Scope: detect.ScopeIP, Value: "not an ip", Action: detect.Block, TTL: time.Hour},
		}}
	sa, ds, invalid := AlertRecord(a, now)
	if sa.ID != store.AlertID("s", "k", "e1") || !sa.Simulated || len(sa.Decisions) != 4 {
		t.Errorf("alert %+v", sa)
	}
	if invalid != 1 || len(ds) != 3 {
		t.Fatalf("%d decisions, %d invalid; want 3, 1", len(ds), invalid)
	}
	if ds[0].Scope != store.ScopeCIDR || ds[0].Origin != "s" || ds[0].AlertID != sa.ID || !ds[0].Expires.Equal(now.Add(time.Hour)) ||
		len(ds[0].Evidence) != 2 || ds[0].ID != sa.Decisions[0].ID {
		t.Errorf("range decision %+v", ds[0])
	}
	if ds[1].Scope != store.ScopeDevice || ds[1].Value != "c-0123456789abcdef" || ds[1].ID != sa.Decisions[1].ID {
		t.Errorf("device decision %+v: want it made, as any scope", ds[1])
	}
	if !ds[2].Simulated || ds[2].Scope != store.ScopeUser {
		t.Errorf("user decision %+v", ds[2])
	}
	if sa.Decisions[1].Skipped != "" || sa.Decisions[3].Skipped == "" {
		t.Errorf("skipped decisions: %+v; want only the invalid one", sa.Decisions)
	}
	// The same alert again: the same ids.
	sa2, ds2, _ := AlertRecord(a, now.Add(time.Minute))
	if sa2.ID != sa.ID || ds2[0].ID != ds[0].ID {
		t.Error("ids differ for the same alert")
	}
}
