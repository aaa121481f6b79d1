package control_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/postgres"
	"github.com/rampartsec/rampart/internal/store/sqlite"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// backends are the stores the dashboard's tests run over: each test runs
// once per store, through the real handler over HTTP.
var backends = []struct {
	name string
	open func(t testing.TB) store.Store
}{
	{"sqlite", func(t testing.TB) store.Store {
		s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"postgres", func(t testing.TB) store.Store {
		s, err := postgres.Open(context.Background(), postgres.Config{DSN: storetest.PostgresSchema(t, "rampart_dash_")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

// newStoreEnv is newEnv over s, with the clock at now if not zero.
func newStoreEnv(t testing.TB, s store.Store, now time.Time) *env {
	t.Helper()
	c, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	token, hash := control.NewAdminToken()
	cfg := control.Config{Store: s, CA: c, AdminTokenHash: hash, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	if !now.IsZero() {
		cfg.Now = func() time.Time { return now }
	}
	h, err := control.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return &env{url: srv.URL, admin: token, store: s, ca: c, h: h}
}

func eachBackend(t *testing.T, fn func(t *testing.T, open func(t testing.TB) store.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open) })
	}
}

// postAll posts evs through the API in batches.
func (e *env) postAll(t *testing.T, evs []store.Event) {
	t.Helper()
	for i := 0; i < len(evs); i += store.MaxEventBatch {
		r := decode[control.EventBatchResult](t, e.do(t, "POST", "/v1/events", batchOf(evs[i:min(i+store.MaxEventBatch, len(evs))]...)), http.StatusOK)
		if r.Inserted != min(store.MaxEventBatch, len(evs)-i) {
			t.Fatalf("batch at %d: inserted %d", i, r.Inserted)
		}
	}
}

var (
	dashKinds   = []string{"sql_injection", "waf", "ssrf", "path_traversal", "authz_denied", "decision_enforced", "request_summary", "login_failure", "business"}
	dashActions = []string{"blocked", "monitored", "observed", "observed", "observed"}
)

// dashEvents makes n events over the day before until, of 30 services, 200
// addresses in 10.0.0.0/16 and 20 users.
func dashEvents(n int, until time.Time) []store.Event {
	r := rand.New(rand.NewPCG(7, 11))
	evs := make([]store.Event, n)
	for i := range evs {
		e := store.Event{ID: fmt.Sprintf("e-%05d", i), Time: until.Add(-time.Duration(1 + r.Int64N(int64(24*time.Hour)))),
			Kind: dashKinds[r.IntN(len(dashKinds))], Action: dashActions[r.IntN(len(dashActions))],
			Service: fmt.Sprintf("svc-%02d", r.IntN(30)), Route: "GET /items/{id}"}
		if r.IntN(8) > 0 {
			e.ActorIP = fmt.Sprintf("10.0.%d.%d", r.IntN(4), r.IntN(50))
		}
		if r.IntN(3) == 0 {
			e.ActorUser = fmt.Sprintf("user-%02d", r.IntN(20))
		}
		if r.IntN(4) == 0 {
			e.TraceID = fmt.Sprintf("%032x", r.IntN(500))
		}
		e.Data = json.RawMessage(fmt.Sprintf(`{"detail":"event %d"}`, i))
		evs[i] = e
	}
	return evs
}

const dashPolicy = `
services:
  svc-01:
    allow:
      - callers: [gateway]
        methods: [GET]
        paths: ["/items/{id}"]
    sensitive:
      - methods: [POST, DELETE]
        paths: ["/items/{id}"]
  svc-02:
    allow:
      - callers: [svc-01]
  svc-03:
    allow:
      - callers: [svc-09]
`

func TestOverviewCountsMatchAnIndependentCount(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t testing.TB) store.Store) {
		until := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
		e := newStoreEnv(t, open(t), time.Time{})
		evs := dashEvents(10500, until)
		e.postAll(t, evs)
		if r := e.putPolicy(t, "", dashPolicy); r.status != http.StatusCreated {
			t.Fatalf("policy: %d %s", r.status, r.body)
		}
		for _, hb := range []control.Heartbeat{{Service: "svc-01", ID: "a", Exposed: true}, {Service: "svc-01", ID: "b"}, {Service: "svc-05", ID: "a"}} {
			if r := e.do(t, "POST", "/v1/heartbeat", hb); r.status != http.StatusNoContent {
				t.Fatalf("heartbeat: %d %s", r.status, r.body)
			}
		}
		blockIP := decode[store.Decision](t, e.do(t, "POST", "/v1/decisions", control.DecisionRequest{Scope: store.ScopeIP, Value: "10.0.1.7", Action: store.ActionBlock, TTL: "1h"}), http.StatusCreated)
		readOnly := decode[store.Decision](t, e.do(t, "POST", "/v1/decisions", control.DecisionRequest{Scope: store.ScopeCIDR, Value: "10.0.0.0/16", Action: store.ActionReadOnly, Origin: "scanner-burst"}), http.StatusCreated)
		lifted := decode[store.Decision](t, e.do(t, "POST", "/v1/decisions", control.DecisionRequest{Scope: store.ScopeUser, Value: "user-01", Action: store.ActionBlock}), http.StatusCreated)
		if r := e.do(t, "DELETE", "/v1/decisions/"+lifted.ID, nil); r.status != http.StatusNoContent {
			t.Fatal(r.status)
		}

		const buckets = 24
		q := url.Values{"since": {until.Add(-24 * time.Hour).Format(time.RFC3339Nano)}, "until": {until.Format(time.RFC3339Nano)},
			"buckets": {fmt.Sprint(buckets)}, "top": {"5"}}
		o := decode[control.Overview](t, e.do(t, "GET", "/v1/stats/overview?"+q.Encode(), nil), http.StatusOK)

		// The same figures, counted here over the events posted.
		since := until.Add(-24 * time.Hour)
		attack := func(ev store.Event) bool { return ev.Action != "observed" }
		timeline := make([]map[string]int64, buckets)
		for i := range timeline {
			timeline[i] = map[string]int64{}
		}
		byKind, byService := map[string]int64{}, map[string]int64{}
		type tally struct{ attacks, events int64 }
		actors := map[store.Actor]tally{}
		var total, attacks int64
		for _, ev := range evs {
			total++
			for _, a := range []store.Actor{{Scope: store.ScopeIP, Value: ev.ActorIP}, {Scope: store.ScopeUser, Value: ev.ActorUser}} {
				if a.Value != "" {
					v := actors[a]
					v.events++
					if attack(ev) {
						v.attacks++
					}
					actors[a] = v
				}
			}
			if !attack(ev) {
				continue
			}
			attacks++
			timeline[int(ev.Time.Sub(since)/time.Hour)][ev.Kind]++
			byKind[ev.Kind]++
			byService[ev.Service]++
		}
		if o.EventsTotal != total || o.AttacksTotal != attacks {
			t.Errorf("totals %d events %d attacks, want %d and %d", o.EventsTotal, o.AttacksTotal, total, attacks)
		}
		if len(o.Timeline) != buckets || o.BucketSeconds != 3600 {
			t.Fatalf("timeline of %d buckets of %vs, want %d of 3600s", len(o.Timeline), o.BucketSeconds, buckets)
		}
		for i, b := range o.Timeline {
			var sum int64
			for _, c := range timeline[i] {
				sum += c
			}
			if !b.Start.Equal(since.Add(time.Duration(i)*time.Hour)) || b.Total != sum || !maps.Equal(b.ByKind, timeline[i]) {
				t.Errorf("bucket %d: %v %d %v, want %v %d %v", i, b.Start, b.Total, b.ByKind, since.Add(time.Duration(i)*time.Hour), sum, timeline[i])
			}
		}
		gotKinds := map[string]int64{}
		for _, k := range o.ByKind {
			gotKinds[k.Kind] = k.Count
		}
		if !maps.Equal(gotKinds, byKind) {
			t.Errorf("by kind %v, want %v", gotKinds, byKind)
		}
		gotServices := map[string]int64{}
		for _, s := range o.ByService {
			gotServices[s.Service] = s.Count
		}
		if !maps.Equal(gotServices, byService) {
			t.Errorf("by service %v, want %v", gotServices, byService)
		}

		// Top actors: most attacks, then most events.
		type ranked struct {
			a store.Actor
			tally
		}
		var rank []ranked
		for a, v := range actors {
			rank = append(rank, ranked{a, v})
		}
		slices.SortFunc(rank, func(x, y ranked) int {
			return cmp.Or(cmp.Compare(y.attacks, x.attacks), cmp.Compare(y.events, x.events))
		})
		if len(o.TopActors) != 5 {
			t.Fatalf("%d top actors, want 5", len(o.TopActors))
		}
		for i, a := range o.TopActors {
			if a.Attacks != rank[i].attacks || a.Events != actors[a.Actor].events || a.Attacks != actors[a.Actor].attacks {
				t.Errorf("top actor %d: %+v, want %d attacks (%+v has %+v)", i, a, rank[i].attacks, a.Actor, actors[a.Actor])
			}
			var want []string
			if a.Actor.Scope == store.ScopeIP {
				want = append(want, readOnly.ID) // every address is in 10.0.0.0/16
				if a.Actor.Value == "10.0.1.7" {
					want = []string{blockIP.ID, readOnly.ID}
				}
			}
			var got []string
			for _, d := range a.Decisions {
				got = append(got, d.ID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("top actor %v: decisions %v, want %v", a.Actor, got, want)
			}
		}

		if want := (control.DecisionStats{Active: 2, ByAction: map[string]int{"block": 1, "read-only": 1},
			ByOrigin: map[string]int{"manual": 1, "scanner-burst": 1}}); o.Decisions.Active != want.Active ||
			!maps.Equal(o.Decisions.ByAction, want.ByAction) || !maps.Equal(o.Decisions.ByOrigin, want.ByOrigin) {
			t.Errorf("decisions %+v, want %+v", o.Decisions, want)
		}

		services := map[string]control.ServiceStatus{}
		for _, s := range o.Services {
			services[s.Name] = s
		}
		if len(services) != len(byService) {
			t.Errorf("%d services, want the %d attacked", len(services), len(byService))
		}
		for name, n := range byService {
			if services[name].Attacks != n {
				t.Errorf("service %s: %d attacks, want %d", name, services[name].Attacks, n)
			}
		}
		if s := services["svc-01"]; !s.Exposed || !s.EdgeReachable || s.Instances != 2 || s.LiveInstances != 2 || s.SensitiveRoutes != 2 {
			t.Errorf("svc-01: %+v, want exposed, reachable from the edge, 2 live instances, 2 sensitive routes", s)
		}
		if s := services["svc-02"]; s.Exposed || !s.EdgeReachable {
			t.Errorf("svc-02: %+v, want reachable from the edge through svc-01", s)
		}
		if s := services["svc-03"]; s.EdgeReachable {
			t.Errorf("svc-03: %+v, only svc-09 calls it", s)
		}

		ch := o.Changes
		var created []string
		for _, d := range ch.DecisionsCreated {
			created = append(created, d.ID)
		}
		if want := []string{readOnly.ID, blockIP.ID}; !slices.Equal(created, want) {
			t.Errorf("decisions created in the last hour %v, want %v (newest first; the lifted one is gone)", created, want)
		}
		if len(ch.DecisionsLifted) != 1 || ch.DecisionsLifted[0].ID != lifted.ID {
			t.Errorf("decisions lifted %+v, want %s", ch.DecisionsLifted, lifted.ID)
		}
		if len(ch.PolicyVersions) != 1 || ch.PolicyVersions[0].Version != 1 || ch.PolicyVersions[0].Size != len(dashPolicy) {
			t.Errorf("policy versions %+v, want version 1", ch.PolicyVersions)
		}
		if len(ch.ServicesNew) != 2 || len(ch.InstancesNew) != 3 {
			t.Errorf("new services %+v and instances %+v, want 2 and 3", ch.ServicesNew, ch.InstancesNew)
		}
	})
}

func TestOverviewRefusesBadRanges(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ query, field string }{
		{"range=0h", "range"},
		{"range=-1h", "range"},
		{"range=400d", "range"},
		{"range=1h&since=2h", "range"},
		{"since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since"},
		{"buckets=0", "buckets"},
		{"buckets=501", "buckets"},
		{"top=1000", "top"},
		{"top=x", "top"},
		{"colour=red", "colour"},
		{"range=" + strings.Repeat("1", 5000), "query"},
	} {
		r := e.do(t, "GET", "/v1/stats/overview?"+c.query, nil)
		code := "invalid"
		if c.field == "query" {
			code = "too_large"
		}
		if eb := wantError(t, r, http.StatusBadRequest, code); eb.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.query, eb.Field, c.field)
		}
	}
	wantError(t, e.doWith(t, "GET", "/v1/stats/overview", nil, "", ""), http.StatusUnauthorized, "unauthorized")
}

func TestEventSearchFiltersAndPagesOnTheServer(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t testing.TB) store.Store) {
		until := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
		e := newStoreEnv(t, open(t), time.Time{})
		evs := dashEvents(3000, until)
		e.postAll(t, evs)
		net := netip.MustParsePrefix("10.0.2.0/23")
		var want []string
		for _, ev := range evs {
			if ev.ActorIP != "" && net.Contains(netip.MustParseAddr(ev.ActorIP)) && ev.Action != "observed" &&
				(ev.Kind == "sql_injection" || ev.Kind == "waf") {
				want = append(want, ev.ID)
			}
		}
		q := url.Values{"actor": {"cidr:10.0.2.0/23"}, "attacks": {"true"}, "kind": {"sql_injection", "waf"}, "limit": {"37"}, "order": {"desc"}}
		var got []string
		var last time.Time
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatal("pages do not end")
			}
			p := decode[control.EventPage](t, e.do(t, "GET", "/v1/events?"+q.Encode(), nil), http.StatusOK)
			for _, ev := range p.Events {
				if !last.IsZero() && ev.Time.After(last) {
					t.Fatalf("page out of order: %v after %v", ev.Time, last)
				}
				last = ev.Time
				got = append(got, ev.ID)
			}
			if p.Next == "" {
				break
			}
			q.Set("cursor", p.Next)
		}
		slices.Sort(got)
		slices.Sort(want)
		if len(want) < 100 || !slices.Equal(got, want) {
			t.Errorf("got %d events, want the %d in the network, attacks of two kinds", len(got), len(want))
		}

		for _, c := range []struct{ query, field string }{
			{"actor=cidr:10.0.0.0", "actor"},
			{"actor=device:x", "actor"},
			{"actor=ip:10.0.0.1&actor_ip=10.0.0.2", "actor"},
			{"actor_cidr=10.0.0.1", "actor_cidr"},
			{"limit=5000", "limit"},
			{"limit=0", "limit"},
			{"attacks=maybe", "attacks"},
			{"trace_id=a&trace_id=b", "trace_id"},
			{"cursor=!!!", "cursor"},
			{"kind=" + strings.Repeat("kind=x&", 40), "kind"},
			{"service=" + strings.Repeat("a", 300), "service"},
			{"since=yesterday", "since"},
			{"colour=red", "colour"},
		} {
			r := e.do(t, "GET", "/v1/events?"+c.query, nil)
			if eb := wantError(t, r, http.StatusBadRequest, "invalid"); eb.Field != c.field {
				t.Errorf("%.60s: field %q, want %q", c.query, eb.Field, c.field)
			}
		}
		eb := wantError(t, e.do(t, "GET", "/v1/events?trace_id="+strings.Repeat("a", 5000), nil), http.StatusBadRequest, "too_large")
		if eb.Field != "query" {
			t.Errorf("huge query: field %q", eb.Field)
		}
	})
}

func TestEventDetailHasItsTraceAndActor(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t testing.TB) store.Store) {
		e := newStoreEnv(t, open(t), time.Time{})
		at := time.Now().UTC().Add(-time.Hour)
		var evs []store.Event
		for i := range 30 {
			ev := store.Event{ID: fmt.Sprintf("x-%02d", i), Time: at.Add(time.Duration(i) * time.Second), Kind: "waf",
				Action: "blocked", Service: "gateway", ActorIP: "203.0.113.7"}
			if i%3 == 0 {
				ev.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
				ev.ActorIP = ""
				ev.ActorUser = "alice"
			}
			evs = append(evs, ev)
		}
		e.postAll(t, evs)
		d := decode[control.EventDetail](t, e.do(t, "GET", "/v1/events/x-15?related=6", nil), http.StatusOK)
		if d.Event.ID != "x-15" || d.Actor == nil || *d.Actor != (store.Actor{Scope: store.ScopeUser, Value: "alice"}) {
			t.Fatalf("event %s actor %v, want x-15 of user alice", d.Event.ID, d.Actor)
		}
		var trace, actor []string
		for _, t := range d.SameTrace {
			trace = append(trace, t.ID)
		}
		for _, t := range d.SameActor {
			actor = append(actor, t.ID)
		}
		if want := []string{"x-00", "x-03", "x-06", "x-09", "x-12", "x-18"}; !slices.Equal(trace, want) {
			t.Errorf("same trace %v, want %v", trace, want)
		}
		if want := []string{"x-06", "x-09", "x-12", "x-18", "x-21", "x-24"}; !slices.Equal(actor, want) {
			t.Errorf("same actor %v, want %v (nearest, oldest first)", actor, want)
		}
		d = decode[control.EventDetail](t, e.do(t, "GET", "/v1/events/x-01?related=4", nil), http.StatusOK)
		if d.Actor == nil || d.Actor.Scope != store.ScopeIP || len(d.SameTrace) != 0 || len(d.SameActor) != 4 || d.SameActor[0].ID != "x-02" {
			t.Errorf("x-01: actor %v, trace %d, actor events %+v", d.Actor, len(d.SameTrace), d.SameActor)
		}
		wantError(t, e.do(t, "GET", "/v1/events/nope", nil), http.StatusNotFound, "not_found")
		wantError(t, e.do(t, "GET", "/v1/events/bad%20id", nil), http.StatusBadRequest, "invalid")
		wantError(t, e.do(t, "GET", "/v1/events/x-01?related=101", nil), http.StatusBadRequest, "invalid")
	})
}

func TestActorTimelineMergesEventsDecisionsAndAlerts(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t testing.TB) store.Store) {
		s := open(t)
		e := newStoreEnv(t, s, time.Time{})
		start := time.Now().UTC().Add(-time.Hour)
		var evs []store.Event
		for i := range 40 {
			evs = append(evs, store.Event{ID: fmt.Sprintf("t-%02d", i), Time: start.Add(time.Duration(i) * time.Minute), Kind: "sql_injection",
				Action: "blocked", Service: "orders", ActorIP: fmt.Sprintf("198.51.100.%d", 1+i%2)})
		}
		e.postAll(t, evs)
		d := decode[store.Decision](t, e.do(t, "POST", "/v1/decisions", control.DecisionRequest{Scope: store.ScopeCIDR, Value: "198.51.100.0/24", Action: store.ActionBlock, TTL: "1h"}), http.StatusCreated)
		other := decode[store.Decision](t, e.do(t, "POST", "/v1/decisions", control.DecisionRequest{Scope: store.ScopeIP, Value: "198.51.100.2", Action: store.ActionBlock}), http.StatusCreated)
		if _, err := s.PutAlert(t.Context(), store.Alert{ID: "a-1", Scenario: "sqli", Key: "198.51.100.1", Count: 20, First: start, Last: start}, nil); err != nil {
			t.Fatal(err)
		}
		// Refusals under the decision after it was made, by the gateway and
		// by orders; one under another decision, one before.
		after := d.Created.Add(time.Millisecond)
		refusal := func(id, service, decision string, at time.Time) store.Event {
			return store.Event{ID: id, Time: at, Kind: "decision_enforced", Action: "blocked", Service: service, ActorIP: "198.51.100.1",
				Data: json.RawMessage(`{"decision":"` + decision + `"}`)}
		}
		e.postAll(t, []store.Event{
			refusal("r-1", "gateway", d.ID, after), refusal("r-2", "gateway", d.ID, after.Add(time.Second)),
			refusal("r-3", "orders", d.ID, after.Add(2*time.Second)), refusal("r-4", "orders", other.ID, after.Add(time.Millisecond)),
			refusal("r-0", "orders", d.ID, d.Created.Add(-time.Minute)),
		})

		q := url.Values{"actor": {"ip:198.51.100.1"}, "limit": {"7"}}
		var items []control.TimelineItem
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("pages do not end")
			}
			tl := decode[control.Timeline](t, e.do(t, "GET", "/v1/actors/timeline?"+q.Encode(), nil), http.StatusOK)
			items = append(items, tl.Items...)
			if tl.Next == "" {
				break
			}
			q.Set("cursor", tl.Next)
		}
		// 20 events of .1 and its 5 refusals, the network decision and the alert.
		var kinds []string
		seen := map[string]bool{}
		for i, it := range items {
			if i > 0 && it.Time.After(items[i-1].Time) {
				t.Errorf("item %d at %v after %v: not newest first", i, it.Time, items[i-1].Time)
			}
			key := it.Type
			switch it.Type {
			case "event":
				key += ":" + it.Event.ID
			case "decision":
				key += ":" + it.Decision.ID
				if it.Decision.ID != d.ID || !it.Active || it.Enforcement == nil {
					t.Errorf("decision item %+v, want the active network decision with its enforcement", it)
					continue
				}
				var got []string
				for _, r := range it.Enforcement.FirstRefusals {
					got = append(got, r.Service+"/"+r.EventID)
				}
				if want := []string{"gateway/r-1", "orders/r-3"}; !slices.Equal(got, want) || it.Enforcement.Revision != d.Revision {
					t.Errorf("enforcement %+v, want %v at revision %d", it.Enforcement, want, d.Revision)
				}
			case "alert":
				key += ":" + it.Alert.ID
			}
			if seen[key] {
				t.Errorf("%s twice", key)
			}
			seen[key] = true
			kinds = append(kinds, it.Type)
		}
		count := func(kind string) (n int) {
			for _, k := range kinds {
				if k == kind {
					n++
				}
			}
			return n
		}
		if count("event") != 25 || count("decision") != 1 || count("alert") != 1 {
			t.Errorf("%d events, %d decisions, %d alerts; want 25, 1 (not the other address's), 1", count("event"), count("decision"), count("alert"))
		}

		tl := decode[control.Timeline](t, e.do(t, "GET", "/v1/actors/timeline?actor=cidr:198.51.100.0/30&limit=200", nil), http.StatusOK)
		decisions := 0
		for _, it := range tl.Items {
			if it.Type == "decision" {
				decisions++
			}
		}
		if decisions != 2 || tl.Next != "" {
			t.Errorf("network timeline: %d decisions, next %q; want both decisions and one page", decisions, tl.Next)
		}
		wantError(t, e.do(t, "GET", "/v1/actors/timeline", nil), http.StatusBadRequest, "invalid")
		wantError(t, e.do(t, "GET", "/v1/actors/timeline?actor=ip:999.1.1.1", nil), http.StatusBadRequest, "invalid")
		wantError(t, e.do(t, "GET", "/v1/actors/timeline?actor=user:a&limit=201", nil), http.StatusBadRequest, "invalid")
	})
}
