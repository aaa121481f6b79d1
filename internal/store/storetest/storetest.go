// Package storetest is the conformance suite every store.Store
// implementation passes, and the benchmarks they share.
//
// An implementation's test calls Run with a function that makes a fresh,
// empty database and returns how to open a Store over it:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.OpenFunc {
//			dir := t.TempDir()
//			return func(tb testing.TB) store.Store { … Open(dir) … }
//		})
//	}
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// OpenFunc opens a Store over one database. Each call opens another Store
// over the same database, as a restarted process or a second replica would;
// the OpenFunc closes it when the test ends (Close may also be called
// before).
type OpenFunc func(tb testing.TB) store.Store

// Run runs the conformance suite. newDB is called once per subtest.
func Run(t *testing.T, newDB func(t *testing.T) OpenFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open OpenFunc)
	}{
		{"events round-trip with every field", testEventsRoundTrip},
		{"a retried batch is stored once", testRetriedBatch},
		{"a batch with one bad event stores nothing", testBadBatch},
		{"events are filtered by time, kind, service, actor and trace", testEventFilters},
		{"event pages follow the cursor both ways", testEventPaging},
		{"concurrent appends store every event once", testConcurrentAppends},
		{"events and decisions survive a restart", testRestart},
		{"decisions are validated and canonical", testDecisionValidation},
		{"expired decisions are hidden unless asked", testExpiredDecisions},
		{"decisions are created, read and deleted", testDecisionLifecycle},
		{"policy versions are numbered and guarded", testPolicy},
		{"the trust bundle is replaced", testTrustBundle},
		{"actor keys are replaced only from the version read", testActorKeys},
		{"of concurrent actor-key writers from one version exactly one wins", testActorKeysRace},
		{"revisions increase and Changes returns what changed", testChanges},
		{"a subscriber is woken by a change", testSubscribe},
		{"a second store sees a decision and is woken within a second", testTwoStores},
		{"join tokens are single use with distinct refusals", testJoinTokens},
		{"a join token is won by exactly one concurrent consumer", testJoinTokenRace},
		{"a join token of n uses is won by exactly n concurrent consumers", testJoinTokenUsesRace},
		{"join tokens are listed without secrets and revoked by id", testJoinTokenListRevoke},
		{"the inventory answers who runs what", testInventory},
		{"an instance quota holds under concurrent heartbeats and lets churn in", testInstanceQuota},
		{"services are revoked and reinstated", testRevocation},
		{"prune deletes exactly what is older and counts it", testPrune},
		{"pruned changes make a watcher behind them reset", testPruneChanges},
	}
	tests = append(tests, detectionTests...)
	tests = append(tests, dashboardTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newDB(t))
		})
	}
}

// Helpers.

var base = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

func event(id string, at time.Time) store.Event {
	data, _ := json.Marshal(map[string]any{"id": id, "time": at, "kind": "sql_injection", "detail": "SELECT ⟦1 OR 1=1⟧"})
	return store.Event{ID: id, Time: at, Kind: "sql_injection", Action: "blocked", Service: "shop", Route: "GET /items", Data: data}
}

func events(prefix string, n int, from time.Time) []store.Event {
	out := make([]store.Event, n)
	for i := range out {
		out[i] = event(fmt.Sprintf("%s-%04d", prefix, i), from.Add(time.Duration(i)*time.Millisecond))
	}
	return out
}

func ids(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func all(t *testing.T, s store.Store, f store.EventFilter) []store.Event {
	t.Helper()
	f.Limit = store.MaxQueryLimit
	var out []store.Event
	for {
		page, err := s.QueryEvents(t.Context(), f)
		if err != nil {
			t.Fatalf("QueryEvents(%+v): %v", f, err)
		}
		out = append(out, page...)
		if len(page) < f.Limit {
			return out
		}
		c := page[len(page)-1].Cursor()
		f.After = &c
	}
}

func mustAppend(t *testing.T, s store.Store, evs []store.Event) int {
	t.Helper()
	n, err := s.AppendEvents(t.Context(), evs)
	if err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	return n
}

func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var ie *store.InvalidError
	if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &ie) {
		t.Fatalf("err = %v, want an *InvalidError for %q", err, field)
	}
	if ie.Field != field {
		t.Fatalf("err = %v, names field %q, want %q", err, ie.Field, field)
	}
}

func mustDecide(t *testing.T, s store.Store, d store.Decision) store.Decision {
	t.Helper()
	d, err := s.CreateDecision(t.Context(), d)
	if err != nil {
		t.Fatalf("CreateDecision: %v", err)
	}
	return d
}

// Events.

func testEventsRoundTrip(t *testing.T, open OpenFunc) {
	s := open(t)
	e := event("round-trip", base)
	e.ActorIP = "::ffff:203.0.113.7"
	e.ActorUser = "alice"
	e.SessionHash = "s3ss10n"
	e.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	e.ActorVerified = true
	bare := store.Event{ID: "bare", Time: base.Add(time.Second), Kind: "authz_denied", Service: "orders"}
	claimed := store.Event{ID: "claimed", Time: base.Add(2 * time.Second), Kind: "sql_injection", Service: "orders",
		ActorIP: "198.51.100.9", ActorClaimedBy: "orders"}
	userClaimed := store.Event{ID: "user-claimed", Time: base.Add(3 * time.Second), Kind: "login_success", Service: "orders",
		ActorIP: "198.51.100.10", ActorUser: "bob", ActorVerified: true, ActorUserClaimedBy: "orders"}
	if n := mustAppend(t, s, []store.Event{e, bare, claimed, userClaimed}); n != 4 {
		t.Fatalf("inserted %d, want 4", n)
	}
	if got := all(t, s, store.EventFilter{ActorVerified: true}); len(got) != 2 || got[0].ID != "round-trip" || got[1].ID != "user-claimed" {
		t.Errorf("events with a verified actor: %v, want [round-trip user-claimed]", ids(got))
	}
	if got := all(t, s, store.EventFilter{ActorUserVerified: true}); len(got) != 1 || got[0].ID != "round-trip" {
		t.Errorf("events with a verified actor and user: %v, want [round-trip]", ids(got))
	}
	got := all(t, s, store.EventFilter{})
	if len(got) != 4 {
		t.Fatalf("got %d events, want 4", len(got))
	}
	if c := got[2]; c.ActorVerified || c.ActorClaimedBy != "orders" || c.ActorIP != "198.51.100.9" || c.ActorUserClaimedBy != "" {
		t.Errorf("claimed event came back as %+v", c)
	}
	if c := got[3]; !c.ActorVerified || c.ActorClaimedBy != "" || c.ActorUserClaimedBy != "orders" || c.ActorUser != "bob" {
		t.Errorf("event with a claimed user came back as %+v", c)
	}
	if log, err := s.ReadEventLog(t.Context(), store.EventLogFilter{Limit: 10}); err != nil || len(log) != 4 || log[3].ActorUserClaimedBy != "orders" {
		t.Errorf("event log %+v, %v: want the claimed user's service read back", log, err)
	}
	want := e
	want.ActorIP = "203.0.113.7" // canonical
	if g := got[0]; !g.Time.Equal(want.Time) || g.Time.Nanosecond() != want.Time.Nanosecond() || g.Time.Location() != time.UTC {
		t.Errorf("time = %v, want %v exactly, in UTC", g.Time, want.Time)
	}
	got[0].Time, want.Time = time.Time{}, time.Time{}
	if string(got[0].Data) != string(want.Data) {
		t.Errorf("data = %s, want %s", got[0].Data, want.Data)
	}
	got[0].Data, want.Data = nil, nil
	if fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Errorf("event = %+v, want %+v", got[0], want)
	}
	if got[1].Data != nil || got[1].ActorIP != "" {
		t.Errorf("bare event came back as %+v", got[1])
	}
}

func testRetriedBatch(t *testing.T, open OpenFunc) {
	s := open(t)
	batch := events("retry", 50, base)
	batch = append(batch, batch[3]) // repeated inside the batch too
	if n := mustAppend(t, s, batch); n != 50 {
		t.Fatalf("first delivery inserted %d, want 50", n)
	}
	if n := mustAppend(t, s, batch); n != 0 {
		t.Fatalf("retry inserted %d, want 0", n)
	}
	// A retry that overlaps a new batch stores only the new events.
	more := append(events("retry", 50, base)[40:], events("more", 5, base)...)
	if n := mustAppend(t, s, more); n != 5 {
		t.Fatalf("overlapping batch inserted %d, want 5", n)
	}
	if got := all(t, s, store.EventFilter{}); len(got) != 55 {
		t.Fatalf("stored %d events, want 55", len(got))
	}
	if n := mustAppend(t, s, nil); n != 0 {
		t.Fatalf("empty batch inserted %d", n)
	}
}

func testBadBatch(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	tests := []struct {
		field string
		edit  func(*store.Event)
	}{
		{"events[2].id", func(e *store.Event) { e.ID = "" }},
		{"events[2].id", func(e *store.Event) { e.ID = "has space" }},
		{"events[2].time", func(e *store.Event) { e.Time = time.Time{} }},
		{"events[2].kind", func(e *store.Event) { e.Kind = "" }},
		{"events[2].service", func(e *store.Event) { e.Service = "" }},
		{"events[2].actor_ip", func(e *store.Event) { e.ActorIP = "not-an-ip" }},
		{"events[2].data", func(e *store.Event) { e.Data = json.RawMessage(`{"truncated":`) }},
		{"events[2].data", func(e *store.Event) { e.Data = make(json.RawMessage, store.MaxEventData+1) }},
		{"events[2].route", func(e *store.Event) { e.Route = "GET /\x00" }},
	}
	for _, tt := range tests {
		batch := events("bad", 5, base)
		tt.edit(&batch[2])
		_, err := s.AppendEvents(ctx, batch)
		wantInvalid(t, err, tt.field)
	}
	_, err := s.AppendEvents(ctx, events("huge", store.MaxEventBatch+1, base))
	wantInvalid(t, err, "events")
	if got := all(t, s, store.EventFilter{}); len(got) != 0 {
		t.Fatalf("refused batches left %d events: %v", len(got), ids(got))
	}
	for _, f := range []struct {
		field  string
		filter store.EventFilter
	}{
		{"limit", store.EventFilter{Limit: -1}},
		{"limit", store.EventFilter{Limit: store.MaxQueryLimit + 1}},
		{"until", store.EventFilter{Since: base, Until: base.Add(-time.Second)}},
		{"actor_ip", store.EventFilter{ActorIP: "999.1.1.1"}},
		{"cursor", store.EventFilter{After: &store.Cursor{Time: base}}},
		{"kind", store.EventFilter{Kind: "\xff"}},
		{"trace_id", store.EventFilter{TraceID: "a\x00b"}},
	} {
		_, err := s.QueryEvents(ctx, f.filter)
		wantInvalid(t, err, f.field)
	}
}

func testEventFilters(t *testing.T, open OpenFunc) {
	s := open(t)
	var batch []store.Event
	for i := range 12 {
		e := event("f"+strconv.Itoa(i), base.Add(time.Duration(i)*time.Minute))
		e.Kind = []string{"sql_injection", "ssrf", "authz_denied"}[i%3]
		e.Service = []string{"shop", "orders"}[i%2]
		e.ActorIP = []string{"198.51.100.1", "198.51.100.2", "2001:db8::1", ""}[i%4]
		e.ActorUser = []string{"", "bob"}[i/6]
		e.TraceID = "trace-" + strconv.Itoa(i%5)
		e.SessionHash = []string{"", "sess-a"}[i%2]
		batch = append(batch, e)
	}
	mustAppend(t, s, batch)
	match := func(keep func(store.Event) bool) []string {
		var out []string
		for _, e := range batch {
			if keep(e) {
				out = append(out, e.ID)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		filter store.EventFilter
		want   []string
	}{
		{"all", store.EventFilter{}, match(func(store.Event) bool { return true })},
		{"kind", store.EventFilter{Kind: "ssrf"}, match(func(e store.Event) bool { return e.Kind == "ssrf" })},
		{"service", store.EventFilter{Service: "orders"}, match(func(e store.Event) bool { return e.Service == "orders" })},
		{"actor ip", store.EventFilter{ActorIP: "2001:db8:0::1"}, match(func(e store.Event) bool { return e.ActorIP == "2001:db8::1" })},
		{"actor user", store.EventFilter{ActorUser: "bob"}, match(func(e store.Event) bool { return e.ActorUser == "bob" })},
		{"session", store.EventFilter{SessionHash: "sess-a"}, match(func(e store.Event) bool { return e.SessionHash == "sess-a" })},
		{"trace", store.EventFilter{TraceID: "trace-2"}, match(func(e store.Event) bool { return e.TraceID == "trace-2" })},
		{"time range", store.EventFilter{Since: base.Add(3 * time.Minute), Until: base.Add(7 * time.Minute)},
			match(func(e store.Event) bool {
				return !e.Time.Before(base.Add(3*time.Minute)) && e.Time.Before(base.Add(7*time.Minute))
			})},
		{"combined", store.EventFilter{Service: "shop", ActorUser: "bob", Since: base.Add(7 * time.Minute)},
			match(func(e store.Event) bool {
				return e.Service == "shop" && e.ActorUser == "bob" && !e.Time.Before(base.Add(7*time.Minute))
			})},
		{"nothing", store.EventFilter{Kind: "no_such_kind"}, nil},
	}
	for _, tt := range tests {
		got := ids(all(t, s, tt.filter))
		if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	got, err := s.QueryEvents(t.Context(), store.EventFilter{Limit: 3, Reverse: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"f11", "f10", "f9"}; !slices.Equal(ids(got), want) {
		t.Errorf("newest 3: got %v, want %v", ids(got), want)
	}
}

func testEventPaging(t *testing.T, open OpenFunc) {
	s := open(t)
	// Ties on time are ordered by id; the cursor must not skip or repeat them.
	var batch []store.Event
	for i := range 25 {
		batch = append(batch, event(fmt.Sprintf("p%02d", i), base.Add(time.Duration(i/5)*time.Second)))
	}
	slices.Reverse(batch) // insertion order must not matter
	mustAppend(t, s, batch)
	for _, reverse := range []bool{false, true} {
		var got []string
		f := store.EventFilter{Limit: 4, Reverse: reverse}
		for range 10 {
			page, err := s.QueryEvents(t.Context(), f)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ids(page)...)
			if len(page) < f.Limit {
				break
			}
			c, err := store.ParseCursor(page[len(page)-1].Cursor().String()) // as an API client would
			if err != nil {
				t.Fatal(err)
			}
			f.After = &c
		}
		want := ids(batch)
		if !reverse {
			slices.Reverse(want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("reverse=%v: pages gave %v, want %v", reverse, got, want)
		}
	}
	if _, err := store.ParseCursor("not a cursor"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("ParseCursor(garbage) = %v, want ErrInvalid", err)
	}
}

func testConcurrentAppends(t *testing.T, open OpenFunc) {
	s := open(t)
	const workers, batches, size = 6, 5, 40
	var inserted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				// Workers 2k and 2k+1 send the same batches: a client and
				// its retry racing each other.
				batch := events(fmt.Sprintf("c%d-%d", w/2, b), size, base.Add(time.Duration(w/2)*time.Hour))
				n, err := s.AppendEvents(context.Background(), batch)
				if err != nil {
					errs <- err
					return
				}
				inserted.Add(int64(n))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("AppendEvents: %v", err)
	}
	got := all(t, s, store.EventFilter{})
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] {
			t.Fatalf("event %s stored twice", e.ID)
		}
		seen[e.ID] = true
	}
	if int64(len(got)) != inserted.Load() {
		t.Fatalf("stored %d events, appends reported %d inserted", len(got), inserted.Load())
	}
	if len(got) != workers/2*batches*size {
		t.Fatalf("stored %d events, want %d distinct", len(got), workers/2*batches*size)
	}
}

func testRestart(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	batch := events("durable", 100, base)
	mustAppend(t, s, batch)
	d := mustDecide(t, s, store.Decision{Scope: store.ScopeIP, Value: "192.0.2.1", Action: store.ActionBlock, Expires: time.Now().Add(time.Hour)})
	if _, err := s.PutPolicy(ctx, "services: {}\n", 0); err != nil {
		t.Fatal(err)
	}
	_, rev, err := s.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t)
	if got := all(t, s, store.EventFilter{}); !slices.Equal(ids(got), ids(batch)) {
		t.Fatalf("after restart: %d events, want %d", len(got), len(batch))
	}
	if n := mustAppend(t, s, batch); n != 0 {
		t.Fatalf("batch retried after restart inserted %d, want 0", n)
	}
	ds, err := s.ListDecisions(ctx, false)
	if err != nil || len(ds) != 1 || ds[0].ID != d.ID || !ds[0].Expires.Equal(d.Expires) {
		t.Fatalf("after restart: decisions %+v, %v; want %+v", ds, err, d)
	}
	if p, err := s.Policy(ctx, 0); err != nil || p.Version != 1 {
		t.Fatalf("after restart: policy %+v, %v", p, err)
	}
	d2 := mustDecide(t, s, store.Decision{Scope: store.ScopeUser, Value: "mallory", Action: store.ActionReadOnly})
	if d2.Revision <= rev {
		t.Fatalf("revision after restart %d, not above %d", d2.Revision, rev)
	}
}

// Decisions.

func testDecisionValidation(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	future := time.Now().Add(time.Hour)
	bad := []struct {
		field string
		d     store.Decision
	}{
		{"scope", store.Decision{Value: "1.2.3.4", Action: store.ActionBlock}},
		{"scope", store.Decision{Scope: "country", Value: "FR", Action: store.ActionBlock}},
		{"value", store.Decision{Scope: store.ScopeIP, Value: "1.2.3", Action: store.ActionBlock}},
		{"value", store.Decision{Scope: store.ScopeIP, Value: "10.0.0.0/8", Action: store.ActionBlock}},
		{"value", store.Decision{Scope: store.ScopeIP, Value: "fe80::1%eth0", Action: store.ActionBlock}},
		{"value", store.Decision{Scope: store.ScopeCIDR, Value: "10.0.0.0/33", Action: store.ActionBlock}},
		{"value", store.Decision{Scope: store.ScopeCIDR, Value: "10.0.0.1", Action: store.ActionBlock}},
		{"value", store.Decision{Scope: store.ScopeUser, Value: "", Action: store.ActionBlock}},
		{"value", store.Decision{Scope: store.ScopeSession, Value: "a\nb", Action: store.ActionBlock}},
		{"action", store.Decision{Scope: store.ScopeUser, Value: "eve"}},
		{"action", store.Decision{Scope: store.ScopeUser, Value: "eve", Action: "ban"}},
		{"rate_limit", store.Decision{Scope: store.ScopeUser, Value: "eve", Action: store.ActionBlock, RateLimit: 10}},
		{"rate_limit", store.Decision{Scope: store.ScopeUser, Value: "eve", Action: store.ActionRateLimit, RateLimit: -1}},
		{"expires", store.Decision{Scope: store.ScopeUser, Value: "eve", Action: store.ActionBlock, Expires: time.Now().Add(-time.Second)}},
		{"origin", store.Decision{Scope: store.ScopeUser, Value: "eve", Action: store.ActionBlock, Origin: string(make([]byte, 200))}},
	}
	for _, tt := range bad {
		_, err := s.CreateDecision(ctx, tt.d)
		wantInvalid(t, err, tt.field)
	}
	if ds, _ := s.ListDecisions(ctx, true); len(ds) != 0 {
		t.Fatalf("refused decisions were stored: %+v", ds)
	}
	if _, rev, _ := s.Changes(ctx, 0); rev != 0 {
		t.Fatalf("refused decisions bumped the revision to %d", rev)
	}
	canonical := []struct {
		scope     store.Scope
		in, value string
	}{
		{store.ScopeIP, "::ffff:192.0.2.9", "192.0.2.9"},
		{store.ScopeIP, "2001:DB8:0:0::1", "2001:db8::1"},
		{store.ScopeCIDR, "10.1.2.3/8", "10.0.0.0/8"},
		{store.ScopeCIDR, "::ffff:192.0.2.0/120", "192.0.2.0/24"},
		{store.ScopeCIDR, "2001:db8::1/32", "2001:db8::/32"},
		{store.ScopeUser, "Alice Ω", "Alice Ω"},
	}
	for _, c := range canonical {
		d := mustDecide(t, s, store.Decision{Scope: c.scope, Value: c.in, Action: store.ActionRateLimit, RateLimit: 30, Expires: future})
		if d.Value != c.value || d.Origin != store.OriginManual || d.ID == "" || d.Created.IsZero() || d.Revision == 0 {
			t.Errorf("CreateDecision(%s %q) = %+v, want value %q, origin manual, id, created, revision", c.scope, c.in, d, c.value)
		}
	}
}

func testExpiredDecisions(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	soon := mustDecide(t, s, store.Decision{Scope: store.ScopeIP, Value: "192.0.2.1", Action: store.ActionBlock, Expires: time.Now().Add(time.Second)})
	later := mustDecide(t, s, store.Decision{Scope: store.ScopeIP, Value: "192.0.2.2", Action: store.ActionBlock, Expires: time.Now().Add(time.Hour)})
	never := mustDecide(t, s, store.Decision{Scope: store.ScopeCIDR, Value: "198.51.100.0/24", Action: store.ActionBlockSensitive, Origin: "credential_stuffing"})
	list := func(includeExpired bool) []string {
		ds, err := s.ListDecisions(ctx, includeExpired)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	// Listed before soon expires, soon is there. A machine so busy that
	// the list ends after the expiry proves nothing here, and is not a
	// failure: the store was right to leave soon out.
	if got, want := list(false), []string{soon.ID, later.ID, never.ID}; time.Now().Before(soon.Expires) && !slices.Equal(got, want) {
		t.Fatalf("before expiry: %v, want %v", got, want)
	}
	time.Sleep(time.Until(soon.Expires) + 20*time.Millisecond)
	if !soon.Expired(time.Now()) || never.Expired(time.Now().Add(1000*time.Hour)) {
		t.Fatal("Decision.Expired disagrees")
	}
	if got, want := list(false), []string{later.ID, never.ID}; !slices.Equal(got, want) {
		t.Fatalf("after expiry: %v, want %v", got, want)
	}
	if got, want := list(true), []string{soon.ID, later.ID, never.ID}; !slices.Equal(got, want) {
		t.Fatalf("after expiry, including expired: %v, want %v", got, want)
	}
	if d, err := s.Decision(ctx, soon.ID); err != nil || d.ID != soon.ID {
		t.Fatalf("Decision(expired) = %+v, %v", d, err)
	}
}

func testDecisionLifecycle(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	in := store.Decision{Scope: store.ScopeSession, Value: "9f86d081884c7d65", Action: store.ActionRateLimit, RateLimit: 20,
		Reason: "enumeration of /users/{id}", Origin: "enumeration", Expires: time.Now().Add(time.Hour)}
	d := mustDecide(t, s, in)
	got, err := s.Decision(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created.Equal(d.Created) || !got.Expires.Equal(d.Expires) {
		t.Errorf("times: got %v/%v, want %v/%v", got.Created, got.Expires, d.Created, d.Expires)
	}
	got.Created, got.Expires, d.Created, d.Expires = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, d) {
		t.Errorf("Decision = %+v, want %+v", got, d)
	}
	if err := s.DeleteDecision(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decision(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Decision after delete: %v, want ErrNotFound", err)
	}
	if err := s.DeleteDecision(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	// Ids straight from a URL path: refused as input, not as a failure.
	_, err = s.Decision(ctx, "\xff")
	wantInvalid(t, err, "id")
	wantInvalid(t, s.DeleteDecision(ctx, "a\x00"), "id")
}

// Policy and trust bundle.

func testPolicy(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	if _, err := s.Policy(ctx, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Policy before any: %v, want ErrNotFound", err)
	}
	p1, err := s.PutPolicy(ctx, "v1\n", 0)
	if err != nil || p1.Version != 1 || p1.Revision == 0 {
		t.Fatalf("PutPolicy = %+v, %v", p1, err)
	}
	if _, err := s.PutPolicy(ctx, "stale\n", 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutPolicy from an old base: %v, want ErrConflict", err)
	}
	p2, err := s.PutPolicy(ctx, "v2\n", 1)
	if err != nil || p2.Version != 2 {
		t.Fatalf("PutPolicy(base 1) = %+v, %v", p2, err)
	}
	p3, err := s.PutPolicy(ctx, "v3\n", store.AnyVersion)
	if err != nil || p3.Version != 3 || p3.Revision <= p2.Revision {
		t.Fatalf("PutPolicy(any) = %+v, %v", p3, err)
	}
	if got, err := s.Policy(ctx, 0); err != nil || got.YAML != "v3\n" || got.Version != 3 {
		t.Fatalf("latest = %+v, %v", got, err)
	}
	if got, err := s.Policy(ctx, 1); err != nil || got.YAML != "v1\n" || !got.Created.Equal(p1.Created) {
		t.Fatalf("version 1 = %+v, %v", got, err)
	}
	if _, err := s.Policy(ctx, 9); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("version 9: %v, want ErrNotFound", err)
	}
	_, err = s.PutPolicy(ctx, "", store.AnyVersion)
	wantInvalid(t, err, "yaml")
	_, err = s.PutPolicy(ctx, "x", -2)
	wantInvalid(t, err, "base")
	_, err = s.Policy(ctx, -1)
	wantInvalid(t, err, "version")

	// Writers racing from the same base: exactly one wins.
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := range 5 {
		wg.Go(func() {
			_, err := s.PutPolicy(context.Background(), "race "+strconv.Itoa(i), 3)
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("racing PutPolicy: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d racing writers won, want 1", won.Load())
	}
}

func testTrustBundle(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	if _, err := s.TrustBundle(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TrustBundle before any: %v, want ErrNotFound", err)
	}
	_, err := s.PutTrustBundle(ctx, nil)
	wantInvalid(t, err, "data")
	b1, err := s.PutTrustBundle(ctx, []byte(`{"keys":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := s.PutTrustBundle(ctx, []byte(`{"keys":[1,2]}`))
	if err != nil || b2.Revision <= b1.Revision {
		t.Fatalf("second PutTrustBundle = %+v, %v", b2, err)
	}
	got, err := s.TrustBundle(ctx)
	if err != nil || string(got.Data) != `{"keys":[1,2]}` || got.Revision != b2.Revision || !got.Updated.Equal(b2.Updated) {
		t.Fatalf("TrustBundle = %+v, %v; want %+v", got, err, b2)
	}
}

// Actor keys.

func testActorKeys(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	if _, _, err := s.ActorKeys(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ActorKeys before any: %v, want ErrNotFound", err)
	}
	if _, err := s.PutActorKeys(ctx, []byte("v1"), 1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutActorKeys expecting version 1 of none: %v, want ErrConflict", err)
	}
	_, err := s.PutActorKeys(ctx, nil, 0)
	wantInvalid(t, err, "data")
	_, err = s.PutActorKeys(ctx, make([]byte, store.MaxActorKeysSize+1), 0)
	wantInvalid(t, err, "data")
	_, err = s.PutActorKeys(ctx, []byte("v1"), -1)
	wantInvalid(t, err, "expect_version")

	ch, err := s.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte{0, 1, 2, 0xff, 'k'} // opaque bytes, returned exactly
	v1, err := s.PutActorKeys(ctx, blob, 0)
	if err != nil || v1 != 1 {
		t.Fatalf("first PutActorKeys = %d, %v; want version 1", v1, err)
	}
	_, current, _ := s.Changes(ctx, 0)
	waitRevision(t, ch, current, time.Minute)
	data, version, err := s.ActorKeys(ctx)
	if err != nil || version != 1 || string(data) != string(blob) {
		t.Fatalf("ActorKeys = %q, %d, %v; want %q, 1", data, version, err, blob)
	}
	if _, err := s.PutActorKeys(ctx, []byte("lost"), 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutActorKeys from version 0 again: %v, want ErrConflict", err)
	}
	v2, err := s.PutActorKeys(ctx, []byte("v2"), v1)
	if err != nil || v2 != 2 {
		t.Fatalf("PutActorKeys from version 1 = %d, %v; want version 2", v2, err)
	}
	// Another store over the database (a replica, or after a restart) reads
	// the same, and is refused an outdated write just the same.
	other := open(t)
	data, version, err = other.ActorKeys(ctx)
	if err != nil || version != 2 || string(data) != "v2" {
		t.Fatalf("the other store's ActorKeys = %q, %d, %v; want v2, 2", data, version, err)
	}
	if _, err := other.PutActorKeys(ctx, []byte("lost"), v1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the other store's outdated write: %v, want ErrConflict", err)
	}
	if data, version, _ := s.ActorKeys(ctx); version != 2 || string(data) != "v2" {
		t.Fatalf("after refused writes: %q, %d; want v2, 2", data, version)
	}
}

func testActorKeysRace(t *testing.T, open OpenFunc) {
	a, b := open(t), open(t) // two replicas
	if _, err := a.PutActorKeys(t.Context(), []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	var won, lost atomic.Int32
	var winner atomic.Value
	start := make(chan struct{})
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			data := "writer " + strconv.Itoa(i)
			v, err := s.PutActorKeys(context.Background(), []byte(data), 1)
			switch {
			case err == nil && v == 2:
				won.Add(1)
				winner.Store(data)
			case errors.Is(err, store.ErrConflict):
				lost.Add(1)
			default:
				t.Errorf("PutActorKeys = %d, %v", v, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if won.Load() != 1 || lost.Load() != n-1 {
		t.Fatalf("%d won, %d told of a conflict; want 1 and %d", won.Load(), lost.Load(), n-1)
	}
	data, version, err := b.ActorKeys(t.Context())
	if err != nil || version != 2 || string(data) != winner.Load() {
		t.Fatalf("ActorKeys = %q, %d, %v; want the winner's %q at version 2", data, version, err, winner.Load())
	}
	changes, _, err := a.Changes(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var keyChanges int
	for _, c := range changes {
		if c.Kind == store.ChangeActorKeys {
			keyChanges++
		}
	}
	if keyChanges != 2 {
		t.Errorf("%d actor-key changes recorded, want 2 (the first put and the winner)", keyChanges)
	}
}

// Revisions.

func testChanges(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	changes, rev, err := s.Changes(ctx, 0)
	if err != nil || len(changes) != 0 || rev != 0 {
		t.Fatalf("Changes on an empty store = %v, %d, %v", changes, rev, err)
	}
	// What is not watched does not bump the revision.
	mustAppend(t, s, events("nochange", 3, base))
	if _, _, err := s.CreateJoinToken(ctx, store.JoinTokenSpec{Service: "shop"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx, store.Instance{Service: "shop", ID: "i1"}); err != nil {
		t.Fatal(err)
	}
	if _, rev, _ := s.Changes(ctx, 0); rev != 0 {
		t.Fatalf("events, tokens and heartbeats bumped the revision to %d", rev)
	}

	d := mustDecide(t, s, store.Decision{Scope: store.ScopeIP, Value: "192.0.2.1", Action: store.ActionBlock})
	p, err := s.PutPolicy(ctx, "p\n", store.AnyVersion)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutTrustBundle(ctx, []byte("bundle")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetServiceRevoked(ctx, "shop", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutActorKeys(ctx, []byte("keys 1"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutActorKeys(ctx, []byte("keys 2"), 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutActorKeys from an outdated version: %v, want ErrConflict", err)
	}
	if _, err := s.PutActorKeys(ctx, []byte("keys 2"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDecision(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	type kko struct {
		kind store.ChangeKind
		key  string
		op   store.Op
	}
	want := []kko{
		{store.ChangeDecision, d.ID, store.OpCreate},
		{store.ChangePolicy, strconv.FormatInt(p.Version, 10), store.OpCreate},
		{store.ChangeTrustBundle, "", store.OpUpdate},
		{store.ChangeService, "shop", store.OpUpdate},
		{store.ChangeActorKeys, "1", store.OpCreate},
		{store.ChangeActorKeys, "2", store.OpUpdate}, // and none for the refused write
		{store.ChangeDecision, d.ID, store.OpDelete},
	}
	changes, rev, err = s.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != len(want) || rev != changes[len(changes)-1].Revision {
		t.Fatalf("Changes(0) = %+v, current %d; want %d changes", changes, rev, len(want))
	}
	for i, c := range changes {
		if (kko{c.Kind, c.Key, c.Op}) != want[i] || c.Time.IsZero() {
			t.Errorf("change %d = %+v, want %+v", i, c, want[i])
		}
		if i > 0 && c.Revision <= changes[i-1].Revision {
			t.Errorf("revision %d after %d", c.Revision, changes[i-1].Revision)
		}
	}
	if changes[0].Revision != d.Revision || changes[1].Revision != p.Revision {
		t.Errorf("change revisions %d, %d; objects say %d, %d", changes[0].Revision, changes[1].Revision, d.Revision, p.Revision)
	}
	tail, cur, err := s.Changes(ctx, changes[2].Revision)
	if err != nil || len(tail) != 4 || tail[0] != changes[3] || cur != rev {
		t.Fatalf("Changes(since %d) = %+v, %d, %v", changes[2].Revision, tail, cur, err)
	}
	none, cur, err := s.Changes(ctx, rev)
	if err != nil || len(none) != 0 || cur != rev {
		t.Fatalf("Changes(current) = %+v, %d, %v", none, cur, err)
	}
	_, _, err = s.Changes(ctx, -1)
	wantInvalid(t, err, "since")

	// Many writers at once still give distinct, gap-free revisions.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := s.CreateDecision(context.Background(), store.Decision{Scope: store.ScopeUser, Value: "u" + strconv.Itoa(i), Action: store.ActionBlock})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	more, cur, err := s.Changes(ctx, rev)
	if err != nil || len(more) != 20 || cur != rev+20 {
		t.Fatalf("after 20 concurrent decisions: %d changes, current %d (was %d), %v", len(more), cur, rev, err)
	}
	for i, c := range more {
		if c.Revision != rev+int64(i)+1 {
			t.Fatalf("change %d has revision %d, want %d", i, c.Revision, rev+int64(i)+1)
		}
	}
}

func waitRevision(t *testing.T, ch <-chan int64, atLeast int64, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case rev, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed while waiting for revision %d", atLeast)
			}
			if rev >= atLeast {
				return
			}
		case <-deadline:
			t.Fatalf("no revision >= %d within %v", atLeast, within)
		}
	}
}

func testSubscribe(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := s.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	d := mustDecide(t, s, store.Decision{Scope: store.ScopeIP, Value: "192.0.2.1", Action: store.ActionBlock})
	waitRevision(t, ch, d.Revision, time.Minute)
	waitRevision(t, other, d.Revision, time.Minute)

	// A subscriber that does not read sees only the latest revision.
	var last int64
	for i := range 5 {
		last = mustDecide(t, s, store.Decision{Scope: store.ScopeUser, Value: "u" + strconv.Itoa(i), Action: store.ActionBlock}).Revision
	}
	waitRevision(t, ch, last, time.Minute)

	cancel()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(time.Minute):
		t.Fatal("channel not closed a minute after its context was canceled")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range other {
	} // closed by Close
	if _, err := s.Subscribe(context.Background()); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
}

func testTwoStores(t *testing.T, open OpenFunc) {
	a, b := open(t), open(t)
	ctx := t.Context()
	ch, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d := mustDecide(t, a, store.Decision{Scope: store.ScopeIP, Value: "203.0.113.50", Action: store.ActionBlock, Reason: "made on replica A"})
	waitRevision(t, ch, d.Revision, time.Minute)
	t.Logf("replica B woken %v after the decision was made on A", time.Since(start))
	changes, _, err := b.Changes(ctx, d.Revision-1)
	if err != nil || len(changes) == 0 || changes[0].Key != d.ID {
		t.Fatalf("B's Changes = %+v, %v; want the decision %s", changes, err, d.ID)
	}
	got, err := b.Decision(ctx, d.ID)
	if err != nil || got.Value != d.Value {
		t.Fatalf("B's Decision = %+v, %v", got, err)
	}
	// And the other way, with the revisions shared.
	d2 := mustDecide(t, b, store.Decision{Scope: store.ScopeUser, Value: "mallory", Action: store.ActionBlock})
	if d2.Revision != d.Revision+1 {
		t.Fatalf("B's decision has revision %d, want %d", d2.Revision, d.Revision+1)
	}
}

// Join tokens.

func testJoinTokens(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	tok, info, err := s.CreateJoinToken(ctx, store.JoinTokenSpec{Service: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if d := info.Expires.Sub(info.Created); d != store.DefaultJoinTokenTTL || info.Service != "shop" || !info.Used.IsZero() ||
		info.Uses != 1 || info.UsesLeft != 1 || !store.ValidJoinTokenID(info.ID) || !strings.Contains(tok, info.ID) {
		t.Fatalf("token info %+v", info)
	}
	forged, _, _ := store.NewJoinToken()
	sameID := tok[:len(tok)-43] + forged[len(forged)-43:] // the right id, another secret
	for _, bad := range []string{"", "rjt_", tok[:len(tok)-1], tok + "A", forged, sameID, "Bearer " + tok} {
		if _, err := s.ConsumeJoinToken(ctx, bad, "shop"); !errors.Is(err, store.ErrTokenUnknown) {
			t.Errorf("ConsumeJoinToken(%q) = %v, want ErrTokenUnknown", bad, err)
		}
	}
	if _, err := s.ConsumeJoinToken(ctx, tok, "orders"); !errors.Is(err, store.ErrTokenWrongService) {
		t.Fatalf("wrong service: %v, want ErrTokenWrongService", err)
	}
	used, err := s.ConsumeJoinToken(ctx, tok, "shop")
	if err != nil {
		t.Fatalf("ConsumeJoinToken after a wrong-service attempt: %v", err)
	}
	if used.Service != "shop" || used.Used.IsZero() || used.LastUsed.IsZero() || used.UsesLeft != 0 || used.ID != info.ID || !used.Expires.Equal(info.Expires) {
		t.Fatalf("consumed token %+v", used)
	}
	if _, err := s.ConsumeJoinToken(ctx, tok, "shop"); !errors.Is(err, store.ErrTokenUsed) {
		t.Fatalf("second use: %v, want ErrTokenUsed", err)
	}

	short, _, err := s.CreateJoinToken(ctx, store.JoinTokenSpec{Service: "shop", TTL: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if _, err := s.ConsumeJoinToken(ctx, short, "shop"); !errors.Is(err, store.ErrTokenExpired) {
		t.Fatalf("expired: %v, want ErrTokenExpired", err)
	}

	three, _, err := s.CreateJoinToken(ctx, store.JoinTokenSpec{Service: "shop", Uses: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got, err := s.ConsumeJoinToken(ctx, three, "shop")
		if err != nil {
			t.Fatalf("use %d of 3: %v", i+1, err)
		}
		if got.UsesLeft != 2-i || got.Used.IsZero() != (i < 2) {
			t.Fatalf("after use %d of 3: %+v", i+1, got)
		}
	}
	if _, err := s.ConsumeJoinToken(ctx, three, "shop"); !errors.Is(err, store.ErrTokenUsed) {
		t.Fatalf("fourth use of three: %v, want ErrTokenUsed", err)
	}

	for _, bad := range []struct {
		spec  store.JoinTokenSpec
		field string
	}{
		{store.JoinTokenSpec{Service: "bad name"}, "service"},
		{store.JoinTokenSpec{Service: "shop", TTL: -time.Second}, "ttl"},
		{store.JoinTokenSpec{Service: "shop", TTL: store.MaxJoinTokenTTL + time.Second}, "ttl"},
		{store.JoinTokenSpec{Service: "shop", Uses: -1}, "uses"},
		{store.JoinTokenSpec{Service: "shop", Uses: store.MaxJoinTokenUses + 1}, "uses"},
	} {
		_, _, err = s.CreateJoinToken(ctx, bad.spec)
		wantInvalid(t, err, bad.field)
	}
}

func testJoinTokenRace(t *testing.T, open OpenFunc) {
	raceJoinToken(t, open(t), 1)
}

func testJoinTokenUsesRace(t *testing.T, open OpenFunc) {
	raceJoinToken(t, open(t), 3)
}

// raceJoinToken has 16 consumers claim a token of uses uses at once.
func raceJoinToken(t *testing.T, s store.Store, uses int) {
	tok, _, err := s.CreateJoinToken(t.Context(), store.JoinTokenSpec{Service: "shop", Uses: uses})
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	var won, used atomic.Int32
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			_, err := s.ConsumeJoinToken(context.Background(), tok, "shop")
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, store.ErrTokenUsed):
				used.Add(1)
			default:
				t.Errorf("ConsumeJoinToken: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if won.Load() != int32(uses) || used.Load() != n-int32(uses) {
		t.Fatalf("%d won, %d told used up; want %d and %d", won.Load(), used.Load(), uses, n-uses)
	}
}

func testJoinTokenListRevoke(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	shop, shopInfo, err := s.CreateJoinToken(ctx, store.JoinTokenSpec{Service: "shop", Uses: 3})
	if err != nil {
		t.Fatal(err)
	}
	_, ordersInfo, err := s.CreateJoinToken(ctx, store.JoinTokenSpec{Service: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeJoinToken(ctx, shop, "shop"); err != nil {
		t.Fatal(err)
	}
	list := func(f store.JoinTokenFilter) []store.JoinToken {
		t.Helper()
		got, err := s.JoinTokens(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := list(store.JoinTokenFilter{})
	if len(got) != 2 || got[0].ID != ordersInfo.ID || got[1].ID != shopInfo.ID || got[1].UsesLeft != 2 || got[1].Uses != 3 || got[1].LastUsed.IsZero() {
		t.Fatalf("JoinTokens = %+v, want orders' then shop's with 2 uses left", got)
	}
	raw, _ := json.Marshal(got)
	if secret := shop[len(shop)-43:]; strings.Contains(string(raw), secret) {
		t.Fatalf("the list holds the secret: %s", raw)
	}
	if got := list(store.JoinTokenFilter{Service: "shop"}); len(got) != 1 || got[0].ID != shopInfo.ID {
		t.Fatalf("JoinTokens(shop) = %+v", got)
	}

	revoked, err := s.RevokeJoinToken(ctx, shopInfo.ID)
	if err != nil || revoked.Revoked.IsZero() || revoked.ID != shopInfo.ID {
		t.Fatalf("RevokeJoinToken = %+v, %v", revoked, err)
	}
	again, err := s.RevokeJoinToken(ctx, shopInfo.ID)
	if err != nil || !again.Revoked.Equal(revoked.Revoked) {
		t.Fatalf("revoking again = %+v, %v; want the first revocation kept", again, err)
	}
	if _, err := s.ConsumeJoinToken(ctx, shop, "shop"); !errors.Is(err, store.ErrTokenRevoked) {
		t.Fatalf("a revoked token's use: %v, want ErrTokenRevoked", err)
	}
	if got := list(store.JoinTokenFilter{}); len(got) != 1 || got[0].ID != ordersInfo.ID {
		t.Fatalf("usable tokens after revocation = %+v, want orders' only", got)
	}
	if got := list(store.JoinTokenFilter{All: true}); len(got) != 2 || got[1].Revoked.IsZero() || got[1].UsesLeft != 2 {
		t.Fatalf("every token after revocation = %+v", got)
	}
	for _, id := range []string{"0123456789abcdef", "nope", ""} {
		if _, err := s.RevokeJoinToken(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeJoinToken(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := s.JoinTokens(ctx, store.JoinTokenFilter{Service: "bad name"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("JoinTokens(bad service) = %v, want ErrInvalid", err)
	}
}

// Inventory.

func testInstanceQuota(t *testing.T, open OpenFunc) {
	a, b := open(t), open(t) // two replicas over one database
	ctx := t.Context()
	const max, n = 5, 40
	live := store.InstanceQuota{Max: max, LiveAfter: time.Now().Add(-time.Hour)}
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			s := a
			if i%2 == 1 {
				s = b
			}
			err := s.HeartbeatQuota(ctx, store.Instance{Service: "rogue", ID: fmt.Sprintf("fresh-%03d", i)}, live)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, store.ErrQuota):
				refused.Add(1)
			default:
				t.Errorf("HeartbeatQuota: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	ins, err := a.Instances(ctx, store.InstanceFilter{Service: "rogue"})
	if err != nil {
		t.Fatal(err)
	}
	if ok.Load() != max || refused.Load() != n-max || len(ins) != max {
		t.Fatalf("%d registered, %d refused, %d stored; want %d, %d, %d", ok.Load(), refused.Load(), len(ins), max, n-max, max)
	}
	// Known instances are refreshed at the quota; other services are not
	// held by this one's.
	for _, in := range ins {
		if err := b.HeartbeatQuota(ctx, store.Instance{Service: "rogue", ID: in.ID, Version: "2"}, live); err != nil {
			t.Errorf("refresh of known instance %s: %v", in.ID, err)
		}
	}
	if err := a.HeartbeatQuota(ctx, store.Instance{Service: "shop", ID: "shop-1"}, live); err != nil {
		t.Errorf("another service: %v", err)
	}
	// Once every instance is gone, a new one replaces the one seen longest
	// ago, and the count stays at the quota.
	time.Sleep(5 * time.Millisecond)
	if err := a.HeartbeatQuota(ctx, store.Instance{Service: "rogue", ID: ins[1].ID}, live); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	gone := store.InstanceQuota{Max: max, LiveAfter: time.Now()}
	if err := b.HeartbeatQuota(ctx, store.Instance{Service: "rogue", ID: "after-restart"}, gone); err != nil {
		t.Fatalf("a new instance once the others are gone: %v", err)
	}
	after, err := a.Instances(ctx, store.InstanceFilter{Service: "rogue"})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != max {
		t.Fatalf("%d instances after churn, want %d", len(after), max)
	}
	has := func(id string) bool {
		return slices.ContainsFunc(after, func(in store.Instance) bool { return in.ID == id })
	}
	// The refreshes went in ID order: ins[0] was seen longest ago, ins[1]
	// last.
	if !has("after-restart") || has(ins[0].ID) || !has(ins[1].ID) {
		t.Fatalf("after churn: %v; want the new instance in place of %s, and %s kept", after, ins[0].ID, ins[1].ID)
	}
}

func testInventory(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	beat := func(in store.Instance) {
		t.Helper()
		if err := s.Heartbeat(ctx, in); err != nil {
			t.Fatalf("Heartbeat(%s/%s): %v", in.Service, in.ID, err)
		}
	}
	pgx := store.Module{Path: "github.com/jackc/pgx/v5", Version: "v5.7.0"}
	shop1 := store.Instance{Service: "shop", ID: "shop-1", Version: "1.0.0", GoVersion: "go1.26.0",
		Modules: []store.Module{pgx, {Path: "golang.org/x/net", Version: "v0.30.0"}},
		Routes:  []string{"GET /items", "POST /orders"}, Peers: []string{"spiffe://rampart.local/svc/orders"},
		DBDrivers: []string{"postgres"}, Exposed: true}
	beat(shop1)
	beat(store.Instance{Service: "orders", ID: "orders-1", Modules: []store.Module{{Path: "modernc.org/sqlite", Version: "v1.61.1"}}})
	time.Sleep(5 * time.Millisecond)
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	shop2 := store.Instance{Service: "shop", ID: "shop-2", Version: "1.1.0", Modules: []store.Module{{Path: "github.com/jackc/pgx/v5", Version: "v5.12.0"}}}
	beat(shop2)

	names := func(f store.InstanceFilter) []string {
		t.Helper()
		ins, err := s.Instances(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range ins {
			out = append(out, in.Service+"/"+in.ID)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		f    store.InstanceFilter
		want []string
	}{
		{"all", store.InstanceFilter{}, []string{"orders/orders-1", "shop/shop-1", "shop/shop-2"}},
		{"one service", store.InstanceFilter{Service: "shop"}, []string{"shop/shop-1", "shop/shop-2"}},
		{"live", store.InstanceFilter{SeenAfter: mid}, []string{"shop/shop-2"}},
		{"gone", store.InstanceFilter{SeenBefore: mid}, []string{"orders/orders-1", "shop/shop-1"}},
		{"module users", store.InstanceFilter{Module: "github.com/jackc/pgx/v5"}, []string{"shop/shop-1", "shop/shop-2"}},
		{"module prefix is no match", store.InstanceFilter{Module: "github.com/jackc/pgx"}, nil},
	} {
		if got := names(tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("instances, %s: %v, want %v", tt.name, got, tt.want)
		}
	}

	ins, err := s.Instances(ctx, store.InstanceFilter{Service: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	got := ins[0]
	if got.FirstSeen.IsZero() || got.LastSeen.Before(got.FirstSeen) {
		t.Errorf("seen times %v, %v", got.FirstSeen, got.LastSeen)
	}
	got.FirstSeen, got.LastSeen = time.Time{}, time.Time{}
	if fmt.Sprint(got) != fmt.Sprint(shop1) {
		t.Errorf("instance = %+v, want %+v", got, shop1)
	}
	if ins[1].Routes == nil || ins[1].Peers == nil || ins[1].DBDrivers == nil {
		t.Errorf("unreported lists came back nil: %+v", ins[1])
	}

	// A later heartbeat replaces what was reported and keeps FirstSeen.
	first := ins[0].FirstSeen
	shop1.Version, shop1.Exposed, shop1.Modules = "1.2.0", false, nil
	beat(shop1)
	ins, _ = s.Instances(ctx, store.InstanceFilter{Service: "shop"})
	if ins[0].Version != "1.2.0" || ins[0].Exposed || len(ins[0].Modules) != 0 || !ins[0].FirstSeen.Equal(first) || !ins[0].LastSeen.After(mid) {
		t.Errorf("after a second heartbeat: %+v", ins[0])
	}

	svcs, err := s.Services(ctx, store.ServiceFilter{})
	if err != nil || len(svcs) != 2 || svcs[0].Name != "orders" || svcs[1].Name != "shop" || svcs[1].Instances != 2 || svcs[1].LastSeen.IsZero() {
		t.Fatalf("Services = %+v, %v", svcs, err)
	}
	beat(store.Instance{Service: "orders", ID: "orders-1", Exposed: true})
	for _, tt := range []struct {
		name string
		f    store.ServiceFilter
		want []string
	}{
		{"exposed", store.ServiceFilter{Exposed: true}, []string{"orders"}},
		{"module users", store.ServiceFilter{Module: "github.com/jackc/pgx/v5"}, []string{"shop"}},
		{"module nobody uses", store.ServiceFilter{Module: "example.com/none"}, nil},
	} {
		svcs, err := s.Services(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, svc := range svcs {
			got = append(got, svc.Name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("services, %s: %v, want %v", tt.name, got, tt.want)
		}
	}

	for _, bad := range []struct {
		field string
		in    store.Instance
	}{
		{"service", store.Instance{ID: "x"}},
		{"service", store.Instance{Service: "a/b", ID: "x"}},
		{"id", store.Instance{Service: "shop"}},
		{"modules[0].path", store.Instance{Service: "shop", ID: "x", Modules: []store.Module{{Version: "v1"}}}},
		{"routes[1]", store.Instance{Service: "shop", ID: "x", Routes: []string{"GET /", ""}}},
	} {
		wantInvalid(t, s.Heartbeat(ctx, bad.in), bad.field)
	}
	_, err = s.Instances(ctx, store.InstanceFilter{Service: "\xff"})
	wantInvalid(t, err, "service")
	_, err = s.Services(ctx, store.ServiceFilter{Module: "\x00"})
	wantInvalid(t, err, "module")
}

func testRevocation(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	if _, err := s.Service(ctx, "shop"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown service: %v, want ErrNotFound", err)
	}
	if err := s.Heartbeat(ctx, store.Instance{Service: "shop", ID: "1"}); err != nil {
		t.Fatal(err)
	}
	svc, err := s.Service(ctx, "shop")
	if err != nil || !svc.Revoked.IsZero() {
		t.Fatalf("Service = %+v, %v", svc, err)
	}
	if err := s.SetServiceRevoked(ctx, "shop", true); err != nil {
		t.Fatal(err)
	}
	svc, _ = s.Service(ctx, "shop")
	if svc.Revoked.IsZero() {
		t.Fatal("revoked service shows no revocation")
	}
	if err := s.SetServiceRevoked(ctx, "shop", true); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Service(ctx, "shop"); !again.Revoked.Equal(svc.Revoked) {
		t.Errorf("second revocation moved the time from %v to %v", svc.Revoked, again.Revoked)
	}
	if err := s.SetServiceRevoked(ctx, "shop", false); err != nil {
		t.Fatal(err)
	}
	if svc, _ := s.Service(ctx, "shop"); !svc.Revoked.IsZero() {
		t.Fatal("reinstated service still revoked")
	}
	// A service known only from a join token can be revoked before it
	// ever heartbeats.
	if err := s.SetServiceRevoked(ctx, "never-seen", true); err != nil {
		t.Fatal(err)
	}
	if svc, err := s.Service(ctx, "never-seen"); err != nil || svc.Revoked.IsZero() || svc.Instances != 0 {
		t.Fatalf("Service(never-seen) = %+v, %v", svc, err)
	}
	if err := s.SetServiceRevoked(ctx, "nobody", false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reinstating an unknown service: %v, want ErrNotFound", err)
	}
	wantInvalid(t, s.SetServiceRevoked(ctx, "", true), "service")
}
