package storetest

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

var dashboardTests = []struct {
	name string
	fn   func(t *testing.T, open OpenFunc)
}{
	{"events are searched by kinds, services, action, attacks and network", testDashboardFilters},
	{"counts grouped in the database match counts made in Go over 12000 events", testCountEvents},
	{"an actor's decisions include the networks that contain it", testActorDecisions},
	{"policy versions are listed newest first with size and hash", testPolicyVersions},
	{"activity lists what changed since a time", testActivity},
	{"alerts are found by key and by id", testAlertsByKey},
}

func dashEvent(id string, at time.Time, kind, action, service, ip, user string) store.Event {
	e := event(id, at)
	e.Kind, e.Action, e.Service, e.ActorIP, e.ActorUser = kind, action, service, ip, user
	return e
}

func testDashboardFilters(t *testing.T, open OpenFunc) {
	s := open(t)
	evs := []store.Event{
		dashEvent("a", base, "sql_injection", "blocked", "shop", "203.0.113.7", "alice"),
		dashEvent("b", base.Add(1*time.Second), "waf", "blocked", "gateway", "203.0.113.200", ""),
		dashEvent("c", base.Add(2*time.Second), "request_summary", "observed", "shop", "203.0.114.1", "bob"),
		dashEvent("d", base.Add(3*time.Second), "ssrf", "monitored", "orders", "2001:db8::1", ""),
		dashEvent("e", base.Add(4*time.Second), "login_failure", "observed", "auth", "2001:db8:0:1::5", "alice"),
		dashEvent("f", base.Add(5*time.Second), "sql_injection", "blocked", "orders", "", ""),
	}
	evs[0].SessionHash = "s1"
	mustAppend(t, s, evs)
	for _, c := range []struct {
		name string
		f    store.EventFilter
		want []string
	}{
		{"any of two kinds", store.EventFilter{Kinds: []string{"waf", "ssrf"}}, []string{"b", "d"}},
		{"any of two services", store.EventFilter{Services: []string{"shop", "auth"}}, []string{"a", "c", "e"}},
		{"kinds and services together", store.EventFilter{Kinds: []string{"sql_injection"}, Services: []string{"orders"}}, []string{"f"}},
		{"an action", store.EventFilter{Action: "monitored"}, []string{"d"}},
		{"attacks only", store.EventFilter{Attacks: true}, []string{"a", "b", "d", "f"}},
		{"an IPv4 network", store.EventFilter{ActorCIDR: "203.0.113.0/24"}, []string{"a", "b"}},
		{"an IPv4 network not on a byte boundary", store.EventFilter{ActorCIDR: "203.0.113.128/25"}, []string{"b"}},
		{"an IPv4 network as IPv4-mapped IPv6", store.EventFilter{ActorCIDR: "::ffff:203.0.112.0/118"}, []string{"a", "b", "c"}},
		{"an IPv6 network", store.EventFilter{ActorCIDR: "2001:db8::/64"}, []string{"d"}},
		{"a wide IPv6 network", store.EventFilter{ActorCIDR: "2001:db8::/32"}, []string{"d", "e"}},
		{"every IPv4 address", store.EventFilter{ActorCIDR: "0.0.0.0/0"}, []string{"a", "b", "c"}},
		{"a network and a user", store.EventFilter{ActorCIDR: "203.0.113.0/24", ActorUser: "alice"}, []string{"a"}},
		{"a session", store.EventFilter{SessionHash: "s1"}, []string{"a"}},
	} {
		if got := ids(all(t, s, c.f)); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	tooMany := make([]string, store.MaxFilterValues+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("k", i)
	}
	_, err := s.QueryEvents(t.Context(), store.EventFilter{Kinds: tooMany})
	wantInvalid(t, err, "kind")
	_, err = s.QueryEvents(t.Context(), store.EventFilter{Services: []string{"ok", ""}})
	wantInvalid(t, err, "service")
	_, err = s.QueryEvents(t.Context(), store.EventFilter{ActorCIDR: "203.0.113.7"})
	wantInvalid(t, err, "actor_cidr")
	_, err = s.QueryEvents(t.Context(), store.EventFilter{Action: "bad\x00"})
	wantInvalid(t, err, "action")
}

// dashKinds and dashActions make a realistic mix: most events observed.
var (
	dashKinds   = []string{"sql_injection", "waf", "ssrf", "path_traversal", "authz_denied", "request_summary", "login_failure", "business"}
	dashActions = []string{"blocked", "monitored", "observed", "observed"}
)

func testCountEvents(t *testing.T, open OpenFunc) {
	s := open(t)
	const n = 12000
	r := rand.New(rand.NewPCG(1, 2))
	until := base.Add(7 * 24 * time.Hour)
	evs := make([]store.Event, n)
	for i := range evs {
		at := base.Add(time.Duration(r.Int64N(int64(7 * 24 * time.Hour))))
		ip := ""
		if r.IntN(10) > 0 {
			ip = fmt.Sprintf("10.%d.%d.%d", r.IntN(2), r.IntN(4), r.IntN(40))
		}
		evs[i] = dashEvent(fmt.Sprintf("ev-%05d", i), at, dashKinds[r.IntN(len(dashKinds))], dashActions[r.IntN(len(dashActions))],
			fmt.Sprintf("svc-%02d", r.IntN(50)), ip, "")
		evs[i].Data = nil
	}
	for i := 0; i < n; i += store.MaxEventBatch {
		mustAppend(t, s, evs[i:min(i+store.MaxEventBatch, n)])
	}
	since := until.Add(-24 * time.Hour)
	attack := func(e store.Event) bool { return e.Action != store.ActionObserved }
	inDay := func(e store.Event) bool { return !e.Time.Before(since) && e.Time.Before(until) }

	// The timeline: attacks of the last day in hourly buckets, per kind.
	got, err := s.CountEvents(t.Context(), store.EventCountQuery{
		Filter: store.EventFilter{Since: since, Until: until, Attacks: true},
		By:     []store.EventDimension{store.ByBucket, store.ByKind}, Bucket: time.Hour})
	if err != nil {
		t.Fatalf("CountEvents: %v", err)
	}
	type bk struct {
		bucket time.Time
		kind   string
	}
	want := map[bk]int64{}
	for _, e := range evs {
		if inDay(e) && attack(e) {
			want[bk{since.Add(e.Time.Sub(since).Truncate(time.Hour)), e.Kind}]++
		}
	}
	if len(got) != len(want) {
		t.Errorf("timeline: %d groups, want %d", len(got), len(want))
	}
	var sum int64
	for _, c := range got {
		if w := want[bk{c.Bucket, c.Kind}]; c.Count != w || c.Attacks != c.Count {
			t.Errorf("timeline %v %s: count %d attacks %d, want %d", c.Bucket, c.Kind, c.Count, c.Attacks, w)
		}
		sum += c.Count
	}
	if sum == 0 {
		t.Fatal("timeline counted nothing: the test data is wrong")
	}

	// Per service over the whole week, every event, the attacks beside.
	got, err = s.CountEvents(t.Context(), store.EventCountQuery{By: []store.EventDimension{store.ByService}})
	if err != nil {
		t.Fatalf("CountEvents: %v", err)
	}
	type tally struct {
		count, attacks int64
		last           time.Time
	}
	perService := map[string]tally{}
	for _, e := range evs {
		v := perService[e.Service]
		v.count++
		if attack(e) {
			v.attacks++
		}
		if e.Time.After(v.last) {
			v.last = e.Time
		}
		perService[e.Service] = v
	}
	if len(got) != len(perService) {
		t.Errorf("by service: %d groups, want %d", len(got), len(perService))
	}
	for i, c := range got {
		w := perService[c.Service]
		if c.Count != w.count || c.Attacks != w.attacks || !c.Last.Equal(w.last) {
			t.Errorf("service %s: %d/%d last %v, want %d/%d last %v", c.Service, c.Count, c.Attacks, c.Last, w.count, w.attacks, w.last)
		}
		if i > 0 && (got[i-1].Count < c.Count || got[i-1].Count == c.Count && got[i-1].Service > c.Service) {
			t.Errorf("by service: not most numerous first at %d: %v then %v", i, got[i-1], c)
		}
	}

	// Top actors by address within a network, limited.
	const top = 5
	got, err = s.CountEvents(t.Context(), store.EventCountQuery{
		Filter: store.EventFilter{ActorCIDR: "10.1.0.0/16", Since: since, Until: until},
		By:     []store.EventDimension{store.ByActorIP}, Limit: top})
	if err != nil {
		t.Fatalf("CountEvents: %v", err)
	}
	perIP := map[string]int64{}
	cidr := netip.MustParsePrefix("10.1.0.0/16")
	for _, e := range evs {
		if e.ActorIP != "" && cidr.Contains(netip.MustParseAddr(e.ActorIP)) && inDay(e) {
			perIP[e.ActorIP]++
		}
	}
	type kv struct {
		ip string
		n  int64
	}
	var ranked []kv
	for ip, c := range perIP {
		ranked = append(ranked, kv{ip, c})
	}
	slices.SortFunc(ranked, func(a, b kv) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.ip, b.ip)) })
	if len(got) != top {
		t.Fatalf("top actors: %d, want %d", len(got), top)
	}
	for i, c := range got {
		if c.ActorIP != ranked[i].ip || c.Count != ranked[i].n {
			t.Errorf("top actor %d: %s %d, want %s %d", i, c.ActorIP, c.Count, ranked[i].ip, ranked[i].n)
		}
	}

	// Ranked by attacks: the services with the most attacks first.
	got, err = s.CountEvents(t.Context(), store.EventCountQuery{By: []store.EventDimension{store.ByService}, ByAttacks: true, Limit: 3})
	if err != nil {
		t.Fatalf("CountEvents: %v", err)
	}
	type sa struct {
		service        string
		attacks, count int64
	}
	var byAttacks []sa
	for svc, v := range perService {
		byAttacks = append(byAttacks, sa{svc, v.attacks, v.count})
	}
	slices.SortFunc(byAttacks, func(a, b sa) int {
		return cmp.Or(cmp.Compare(b.attacks, a.attacks), cmp.Compare(b.count, a.count), strings.Compare(a.service, b.service))
	})
	if len(got) != 3 {
		t.Fatalf("by attacks: %d groups, want 3", len(got))
	}
	for i, c := range got {
		if w := byAttacks[i]; c.Service != w.service || c.Attacks != w.attacks {
			t.Errorf("by attacks %d: %s %d, want %s %d", i, c.Service, c.Attacks, w.service, w.attacks)
		}
	}

	// No dimension: one total, as the pages of QueryEvents count it.
	got, err = s.CountEvents(t.Context(), store.EventCountQuery{Filter: store.EventFilter{ActorCIDR: "10.0.2.0/23", Attacks: true}})
	if err != nil {
		t.Fatalf("CountEvents: %v", err)
	}
	paged := all(t, s, store.EventFilter{ActorCIDR: "10.0.2.0/23", Attacks: true})
	if len(got) != 1 || got[0].Count != int64(len(paged)) || len(paged) == 0 {
		t.Errorf("total %v, want one group of %d (the events QueryEvents pages through)", got, len(paged))
	}
	// Nothing matches: no group.
	got, err = s.CountEvents(t.Context(), store.EventCountQuery{Filter: store.EventFilter{Kind: "none"}})
	if err != nil || len(got) != 0 {
		t.Errorf("count of nothing = %v, %v; want no group", got, err)
	}

	_, err = s.CountEvents(t.Context(), store.EventCountQuery{By: []store.EventDimension{store.ByBucket}, Bucket: time.Hour})
	wantInvalid(t, err, "by")
	_, err = s.CountEvents(t.Context(), store.EventCountQuery{Filter: store.EventFilter{Since: since, Until: until},
		By: []store.EventDimension{store.ByBucket}, Bucket: time.Second})
	wantInvalid(t, err, "bucket")
	_, err = s.CountEvents(t.Context(), store.EventCountQuery{By: []store.EventDimension{"data"}})
	wantInvalid(t, err, "by")
	_, err = s.CountEvents(t.Context(), store.EventCountQuery{Filter: store.EventFilter{Limit: 5}})
	wantInvalid(t, err, "filter")
}

func testActorDecisions(t *testing.T, open OpenFunc) {
	s := open(t)
	ip := mustDecide(t, s, store.Decision{Scope: store.ScopeIP, Value: "203.0.113.7", Action: store.ActionBlock})
	other := mustDecide(t, s, store.Decision{Scope: store.ScopeIP, Value: "203.0.113.8", Action: store.ActionBlock})
	net := mustDecide(t, s, store.Decision{Scope: store.ScopeCIDR, Value: "203.0.113.0/24", Action: store.ActionReadOnly})
	far := mustDecide(t, s, store.Decision{Scope: store.ScopeCIDR, Value: "198.51.100.0/24", Action: store.ActionBlock})
	user := mustDecide(t, s, store.Decision{Scope: store.ScopeUser, Value: "alice", Action: store.ActionRateLimit})
	_ = far
	decisionIDs := func(ds []store.Decision) []string {
		out := []string{}
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	for _, c := range []struct {
		actor store.Actor
		want  []string
	}{
		{store.Actor{Scope: store.ScopeIP, Value: "203.0.113.7"}, []string{ip.ID, net.ID}},
		{store.Actor{Scope: store.ScopeIP, Value: "::ffff:203.0.113.8"}, []string{other.ID, net.ID}},
		{store.Actor{Scope: store.ScopeCIDR, Value: "203.0.113.0/28"}, []string{ip.ID, other.ID, net.ID}},
		{store.Actor{Scope: store.ScopeCIDR, Value: "203.0.0.0/16"}, []string{ip.ID, other.ID, net.ID}},
		{store.Actor{Scope: store.ScopeUser, Value: "alice"}, []string{user.ID}},
		{store.Actor{Scope: store.ScopeUser, Value: "bob"}, []string{}},
	} {
		got, err := s.ActorDecisions(t.Context(), c.actor)
		if err != nil {
			t.Fatalf("ActorDecisions(%v): %v", c.actor, err)
		}
		if !slices.Equal(decisionIDs(got), c.want) {
			t.Errorf("ActorDecisions(%v) = %v, want %v", c.actor, decisionIDs(got), c.want)
		}
	}
	_, err := s.ActorDecisions(t.Context(), store.Actor{Scope: "device", Value: "x"})
	wantInvalid(t, err, "actor")
}

func testPolicyVersions(t *testing.T, open OpenFunc) {
	s := open(t)
	texts := []string{"services: {}\n", "services:\n  a: {}\n", "services:\n  a: {}\n  b: {}\n"}
	for _, text := range texts {
		if _, err := s.PutPolicy(t.Context(), text, store.AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := s.PolicyVersions(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 {
		t.Fatalf("%d versions, want 3", len(vs))
	}
	for i, v := range vs {
		text := texts[len(texts)-1-i]
		sum := sha256.Sum256([]byte(text))
		if v.Version != int64(len(texts)-i) || v.Size != len(text) || v.SHA256 != hex.EncodeToString(sum[:]) || v.Created.IsZero() {
			t.Errorf("version %d: %+v, want version %d of %d bytes", i, v, len(texts)-i, len(text))
		}
	}
	vs, err = s.PolicyVersions(t.Context(), 3, 1)
	if err != nil || len(vs) != 1 || vs[0].Version != 2 {
		t.Errorf("PolicyVersions(before 3, 1) = %+v, %v; want version 2", vs, err)
	}
	_, err = s.PolicyVersions(t.Context(), -1, 0)
	wantInvalid(t, err, "before")
}

func testActivity(t *testing.T, open OpenFunc) {
	s := open(t)
	if err := s.Heartbeat(t.Context(), store.Instance{Service: "old", ID: "i1"}); err != nil {
		t.Fatal(err)
	}
	old, err := s.Service(t.Context(), "old")
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	for !since.After(old.FirstSeen) { // a coarse clock: wait for the next tick
		since = time.Now()
	}
	d := mustDecide(t, s, store.Decision{Scope: store.ScopeIP, Value: "203.0.113.7", Action: store.ActionBlock})
	if err := s.DeleteDecision(t.Context(), d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutPolicy(t.Context(), "services: {}\n", store.AnyVersion); err != nil {
		t.Fatal(err)
	}
	for _, in := range []store.Instance{{Service: "new", ID: "n1", Version: "1.2", Callers: []string{"gateway GET /items/{id}"}}, {Service: "old", ID: "i2"}} {
		if err := s.Heartbeat(t.Context(), in); err != nil {
			t.Fatal(err)
		}
	}
	act, err := s.Activity(t.Context(), since)
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, c := range act.Changes {
		changes = append(changes, string(c.Kind)+"/"+string(c.Op))
	}
	if want := []string{"policy/create", "decision/delete", "decision/create"}; !slices.Equal(changes, want) {
		t.Errorf("changes %v, want %v (newest first)", changes, want)
	}
	if len(act.Services) != 1 || act.Services[0].Name != "new" {
		t.Errorf("new services %+v, want only new", act.Services)
	}
	var instances []string
	for _, in := range act.Instances {
		instances = append(instances, in.Service+"/"+in.ID)
		if want := map[string][]string{"new": {"gateway GET /items/{id}"}, "old": {}}[in.Service]; !slices.Equal(in.Callers, want) || in.Callers == nil {
			t.Errorf("%s/%s callers %#v, want %#v", in.Service, in.ID, in.Callers, want)
		}
	}
	slices.Sort(instances)
	if want := []string{"new/n1", "old/i2"}; !slices.Equal(instances, want) {
		t.Errorf("new instances %v, want %v", instances, want)
	}
	_, err = s.Activity(t.Context(), time.Time{})
	wantInvalid(t, err, "since")

	live, err := s.LiveInstances(t.Context(), since)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"new": 1, "old": 1}; !maps.Equal(live, want) {
		t.Errorf("live instances since %v: %v, want %v (old/i1 was last seen before)", since, live, want)
	}
}

func testAlertsByKey(t *testing.T, open OpenFunc) {
	s := open(t)
	put := func(id, key string) {
		t.Helper()
		if _, err := s.PutAlert(t.Context(), store.Alert{ID: id, Scenario: "sc", Key: key, Count: 1, First: base, Last: base}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put("a-1", "203.0.113.7")
	put("a-2", "203.0.113.7 alice")
	put("a-3", "198.51.100.1")
	as, err := s.AlertsByKey(t.Context(), "203.0.113.7", []string{"a-2"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range as {
		got = append(got, a.ID)
	}
	slices.Sort(got)
	if want := []string{"a-1", "a-2"}; !slices.Equal(got, want) {
		t.Errorf("AlertsByKey = %v, want %v", got, want)
	}
}

// TestActorIPKeyBackfill checks that events stored before the actor IP key
// existed are found by network once the store is opened again. forget
// makes the database look as it did after migration 0006 ran over such
// events: their keys NULL.
func TestActorIPKeyBackfill(t *testing.T, open OpenFunc, forget func(t *testing.T)) {
	s := open(t)
	evs := events("old", 2500, base)
	for i := range evs {
		evs[i].ActorIP = fmt.Sprintf("198.51.100.%d", i%256)
	}
	evs[0].ActorIP = ""
	for i := 0; i < len(evs); i += store.MaxEventBatch {
		mustAppend(t, s, evs[i:min(i+store.MaxEventBatch, len(evs))])
	}
	f := store.EventFilter{ActorCIDR: "198.51.100.0/25"}
	want := 0
	for _, e := range evs {
		if e.ActorIP != "" && netip.MustParsePrefix("198.51.100.0/25").Contains(netip.MustParseAddr(e.ActorIP)) {
			want++
		}
	}
	if got := len(all(t, s, f)); got != want {
		t.Fatalf("before: %d events in the network, want %d", got, want)
	}
	s.Close()
	forget(t)
	if got := len(all(t, open(t), f)); got != want {
		t.Errorf("after reopening: %d events in the network, want %d", got, want)
	}
}
