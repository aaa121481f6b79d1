package control_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/detect"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

// detecting is a control plane that runs detection: its API on 127.0.0.1,
// its store, and its detector running until stop (or the test's end).
type detecting struct {
	*env
	det  *control.Detector
	stop func() // kills the replica: detector, API and store
}

func startDetecting(t *testing.T, s store.Store, c *ca.CA, admin string, hash []byte, cfg control.DetectConfig) *detecting {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	det, err := control.NewDetector(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := control.New(control.Config{Store: s, CA: c, AdminTokenHash: hash, Detector: det,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- det.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("detector: %v", err)
		}
		srv.Close()
		s.Close()
	}
	t.Cleanup(stop)
	return &detecting{env: &env{url: srv.URL, admin: admin, store: s, ca: c, h: h}, det: det, stop: stop}
}

func newCA(t *testing.T) *ca.CA {
	t.Helper()
	c, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sqliteDetecting(t *testing.T, cfg control.DetectConfig) *detecting {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	admin, hash := control.NewAdminToken()
	return startDetecting(t, s, newCA(t), admin, hash, cfg)
}

var evSeq int

// attack returns an event of kind from ip, now.
func attack(kind, ip string) store.Event {
	evSeq++
	return store.Event{ID: fmt.Sprintf("ev-%s-%d-%d", kind, evSeq, time.Now().UnixNano()), Time: time.Now().UTC(),
		Kind: kind, Action: "blocked", Service: "shop", Route: "GET /items", ActorIP: ip}
}

// eventually polls fn until it returns true, for up to a minute.
func eventually(t *testing.T, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("not within a minute: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func decisionsOf(t *testing.T, e *env, origin string) []store.Decision {
	t.Helper()
	list := decode[control.DecisionList](t, e.do(t, "GET", "/v1/decisions", nil), http.StatusOK)
	return slices.DeleteFunc(list.Decisions, func(d store.Decision) bool { return d.Origin != origin })
}

func TestInjectionFromAVerifiedActorIsBlockedWithItsEvidenceAndReachesTheWatch(t *testing.T) {
	e := sqliteDetecting(t, control.DetectConfig{})
	start := decode[control.WatchResult](t, e.do(t, "GET", "/v1/watch?since=latest", nil), http.StatusOK)

	ev := attack("sql_injection", "203.0.113.7")
	decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events", batchOf(ev)), http.StatusOK) // the admin: verified

	var ds []store.Decision
	eventually(t, "a decision from injection-escalation", func() bool {
		ds = decisionsOf(t, e.env, "injection-escalation")
		return len(ds) > 0
	})
	d := ds[0]
	if len(ds) != 1 || d.Scope != store.ScopeIP || d.Value != "203.0.113.7" || d.Action != store.ActionBlock ||
		d.AlertID == "" || !slices.Contains(d.Evidence, ev.ID) || d.Simulated || d.Expires.IsZero() {
		t.Fatalf("decisions %+v, want one block of 203.0.113.7 with its alert and evidence", ds)
	}
	w := decode[control.WatchResult](t, e.do(t, "GET", fmt.Sprintf("/v1/watch?since=%d&timeout=10s", start.Revision), nil), http.StatusOK)
	if !slices.ContainsFunc(w.Changes, func(c store.Change) bool { return c.Kind == store.ChangeDecision && c.Key == d.ID }) {
		t.Errorf("watch %+v, want the creation of %s", w, d.ID)
	}
	ex := decode[control.Explanation](t, e.do(t, "GET", "/v1/decisions/"+d.ID+"/explain", nil), http.StatusOK)
	if ex.Alert == nil || ex.Alert.ID != d.AlertID || ex.Alert.Scenario != "injection-escalation" ||
		len(ex.Events) != 1 || ex.Events[0].ID != ev.ID {
		t.Errorf("explanation %+v, want the alert and the event", ex)
	}
	alerts := decode[control.AlertList](t, e.do(t, "GET", "/v1/alerts?scenario=injection-escalation&since=1h&limit=10", nil), http.StatusOK)
	if len(alerts.Alerts) != 1 || alerts.Alerts[0].ID != d.AlertID || alerts.Alerts[0].Decisions[0].ID != d.ID {
		t.Errorf("alerts %+v", alerts)
	}
	wantError(t, e.do(t, "GET", "/v1/alerts?scenrio=x", nil), http.StatusBadRequest, "invalid")
	wantError(t, e.do(t, "GET", "/v1/alerts?limit=0", nil), http.StatusBadRequest, "invalid")
	wantError(t, e.do(t, "GET", "/v1/alerts/a-nope", nil), http.StatusNotFound, "not_found")
}

func TestEventsOfAnUnverifiedActorMakeNoDecision(t *testing.T) {
	e := sqliteDetecting(t, control.DetectConfig{})
	// As a service that could not back the actor it names stores them.
	var evs []store.Event
	for range 5 {
		ev := attack("sql_injection", "203.0.113.9")
		ev.ActorClaimedBy = "shop"
		evs = append(evs, ev)
	}
	if _, err := e.store.AppendEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	// A verified event after them: once it is decided, they were read.
	marker := attack("sql_injection", "198.51.100.1")
	decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events", batchOf(marker)), http.StatusOK)
	eventually(t, "the marker's decision", func() bool { return len(decisionsOf(t, e.env, "injection-escalation")) > 0 })
	for _, d := range decisionsOf(t, e.env, "injection-escalation") {
		if d.Value != "198.51.100.1" {
			t.Errorf("decision %+v against an unverified actor", d)
		}
	}
	if st := e.det.Stats(); st.Events < 6 {
		t.Errorf("detector processed %d events, want the 6", st.Events)
	}
}

const simulated = `name: payout-burst
description: a payout, simulated
type: trigger
filter: evt.kind == "business" && evt.attrs.name == "payout"
groupby: evt.actor.ip
response:
  scope: ip
  action: block
  ttl: 10m
  simulate: true
`

func TestASimulatedDecisionIsRecordedButNeverOnTheWatch(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "payout.yaml"), []byte(simulated), 0o600); err != nil {
		t.Fatal(err)
	}
	e := sqliteDetecting(t, control.DetectConfig{ScenarioDir: dir})
	_, rev0, err := e.store.Changes(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := attack("business", "203.0.113.20")
	ev.Data = []byte(`{"name":"payout","attrs":{"amount":"900"}}`)
	decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events", batchOf(ev)), http.StatusOK)
	var ds []store.Decision
	eventually(t, "the simulated decision", func() bool {
		ds = decisionsOf(t, e.env, "payout-burst")
		return len(ds) > 0
	})
	if len(ds) != 1 || !ds[0].Simulated || ds[0].Revision != 0 {
		t.Fatalf("decisions %+v, want one simulated", ds)
	}
	changes, _, err := e.store.Changes(t.Context(), rev0)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("changes %+v after a simulated decision, want none", changes)
	}
	alerts := decode[control.AlertList](t, e.do(t, "GET", "/v1/alerts?scenario=payout-burst", nil), http.StatusOK)
	if len(alerts.Alerts) != 1 || !alerts.Alerts[0].Simulated {
		t.Errorf("alerts %+v, want one simulated", alerts)
	}
	list := decode[control.ScenarioList](t, e.do(t, "GET", "/v1/scenarios", nil), http.StatusOK)
	if !slices.ContainsFunc(list.Scenarios, func(s control.ScenarioInfo) bool { return s.Name == "payout-burst" && s.Simulate }) ||
		list.Detector == nil || !list.Detector.Leading {
		t.Errorf("scenarios %+v", list)
	}
}

func TestScenarioFilesAreReloadedAndABadOneKeepsTheSetInForce(t *testing.T) {
	dir := t.TempDir()
	e := sqliteDetecting(t, control.DetectConfig{ScenarioDir: dir, ReloadInterval: 50 * time.Millisecond})
	has := func(name string) bool {
		return slices.ContainsFunc(e.det.Scenarios(), func(s *detect.Scenario) bool { return s.Name == name })
	}
	if has("payout-burst") {
		t.Fatal("payout-burst in force before its file exists")
	}
	if err := os.WriteFile(filepath.Join(dir, "payout.yaml"), []byte(simulated), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "payout-burst loaded", func() bool { return has("payout-burst") })
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("name: bad\ntype: leaky\nfilter: evt.nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // several reload intervals
	if !has("payout-burst") || has("bad") {
		t.Error("a bad file changed the scenarios in force")
	}
}

func TestReplayShowsWhatScenariosWouldRaiseAndStoresNothing(t *testing.T) {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	admin, hash := control.NewAdminToken()
	h, err := control.New(control.Config{Store: s, CA: newCA(t), AdminTokenHash: hash}) // no detector running
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{url: srv.URL, admin: admin, store: s}
	ev := attack("business", "203.0.113.30")
	ev.Data = []byte(`{"name":"payout"}`)
	decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events", batchOf(ev, attack("sql_injection", "203.0.113.31"))), http.StatusOK)
	res := decode[control.ReplayResult](t, e.do(t, "POST", "/v1/scenarios/replay", control.ReplayRequest{
		Since: "1h", Scenarios: map[string]string{"payout.yaml": simulated}}), http.StatusOK)
	var names []string
	for _, a := range res.Alerts {
		names = append(names, a.Scenario)
	}
	sort.Strings(names)
	if res.Events != 2 || !slices.Equal(names, []string{"injection-escalation", "payout-burst"}) {
		t.Errorf("replay: %d events, alerts of %v", res.Events, names)
	}
	if ds, _ := s.ListDecisions(t.Context(), true); len(ds) != 0 {
		t.Errorf("replay stored %d decisions", len(ds))
	}
	wantError(t, e.do(t, "POST", "/v1/scenarios/replay", control.ReplayRequest{}), http.StatusBadRequest, "invalid")
	wantError(t, e.do(t, "POST", "/v1/scenarios/replay", control.ReplayRequest{Since: "1h",
		Scenarios: map[string]string{"x.yaml": "name: x\nfilter: evt.nope\n"}}), http.StatusBadRequest, "invalid")
}
