package detect

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/decision"
)

func mustParse(t testing.TB, doc string) []*Scenario {
	t.Helper()
	ss, err := Parse(t.Name()+".yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func mustEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// at is an event of kind from ip at offset d of t0.
func at(d time.Duration, kind, ip string) Event {
	return Event{ID: fmt.Sprintf("e%d", d/time.Millisecond), Time: t0.Add(d), Kind: kind, Actor: Actor{IP: ip}}
}

func processAll(e *Engine, evs ...Event) []Alert {
	var out []Alert
	for _, ev := range evs {
		out = append(out, e.Process(ev)...)
	}
	return out
}

const leaky3 = `
name: three
type: leaky
filter: evt.kind == "x"
groupby: evt.actor.ip
capacity: 2
leakspeed: 10s
blackhole: 1m
response: {scope: ip, action: block, ttl: 1h}
`

func TestLeakyOverflowsOnEventTimeNotWallClock(t *testing.T) {
	t.Run("three events within the leak overflow a capacity of two", func(t *testing.T) {
		e := mustEngine(t, Config{Scenarios: mustParse(t, leaky3)})
		alerts := processAll(e, at(0, "x", "a"), at(time.Second, "x", "a"), at(2*time.Second, "x", "a"))
		if len(alerts) != 1 || alerts[0].Count != 3 || !slices.Equal(alerts[0].Evidence, []string{"e0", "e1000", "e2000"}) {
			t.Fatalf("alerts %+v, want one of the three events", alerts)
		}
		d := alerts[0].Decisions
		if len(d) != 1 || d[0] != (Decision{Scope: ScopeIP, Value: "a", Action: Block, TTL: time.Hour}) {
			t.Errorf("decisions %+v", d)
		}
	})
	t.Run("three events a leak apart do not", func(t *testing.T) {
		e := mustEngine(t, Config{Scenarios: mustParse(t, leaky3)})
		if alerts := processAll(e, at(0, "x", "a"), at(11*time.Second, "x", "a"), at(22*time.Second, "x", "a")); len(alerts) != 0 {
			t.Fatalf("alerts %+v, want none", alerts)
		}
	})
	t.Run("keys are counted apart", func(t *testing.T) {
		e := mustEngine(t, Config{Scenarios: mustParse(t, leaky3)})
		if alerts := processAll(e, at(0, "x", "a"), at(1, "x", "b"), at(2, "x", "a"), at(3, "x", "b")); len(alerts) != 0 {
			t.Fatalf("alerts %+v, want none", alerts)
		}
	})
}

func TestBlackholeSilencesTheKeyThenLetsItAlertAgain(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, leaky3)})
	var evs []Event
	for i := range 6 { // 0..5s: alert at the third, the next three silent
		evs = append(evs, at(time.Duration(i)*time.Second, "x", "a"))
	}
	evs = append(evs, at(61*time.Second, "x", "a")) // the alert was at 2s: still silent
	for i := range 3 {                              // after the minute: a new alert
		evs = append(evs, at(62*time.Second+time.Duration(i)*time.Second, "x", "a"))
	}
	alerts := processAll(e, evs...)
	if len(alerts) != 2 || alerts[1].First != t0.Add(62*time.Second) {
		t.Fatalf("alerts %+v, want two, the second from 62s", alerts)
	}
	if st := e.Stats().Scenarios[0]; st.Suppressed != 4 || st.Alerts != 2 {
		t.Errorf("stats %+v, want 4 suppressed and 2 alerts", st)
	}
}

func TestCancelOnEmptiesTheBucket(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, `
name: bf
type: leaky
filter: evt.kind in ["fail", "ok"]
groupby: evt.actor.ip
cancel_on: evt.kind == "ok"
capacity: 2
leakspeed: 1h
`)})
	alerts := processAll(e, at(0, "fail", "a"), at(1, "fail", "a"), at(2, "ok", "a"), at(3, "fail", "a"), at(4, "fail", "a"))
	if len(alerts) != 0 {
		t.Fatalf("alerts %+v: the success should have emptied the bucket", alerts)
	}
	if alerts = processAll(e, at(5, "fail", "a")); len(alerts) != 1 || alerts[0].Count != 3 {
		t.Fatalf("alerts %+v, want one counting the three failures after the success", alerts)
	}
	if st := e.Stats().Scenarios[0]; st.Cancelled != 1 {
		t.Errorf("cancelled %d, want 1", st.Cancelled)
	}
}

func TestEscalationDoublesTheTTLUpToItsMax(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, `
name: inj
type: trigger
filter: evt.kind == "sql_injection"
groupby: evt.actor.ip
response:
  scope: ip
  action: block
  ttl: 1h
  escalation: {max: 7d}
`)})
	var ttls []time.Duration
	now := time.Duration(0)
	for range 10 {
		alerts := e.Process(at(now, "sql_injection", "a"))
		if len(alerts) != 1 {
			t.Fatalf("at %s: %d alerts, want 1 (the blackhole is the escalated TTL, now over)", now, len(alerts))
		}
		d := alerts[0].Decisions[0]
		ttls = append(ttls, d.TTL)
		// Silent while the decision holds.
		if more := e.Process(at(now+d.TTL-time.Second, "sql_injection", "a")); len(more) != 0 {
			t.Fatalf("alert during the decision's TTL: %+v", more)
		}
		now += d.TTL + time.Minute
	}
	week := 7 * 24 * time.Hour
	want := []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 16 * time.Hour, 32 * time.Hour,
		64 * time.Hour, 128 * time.Hour, week, week}
	if !slices.Equal(ttls, want) {
		t.Errorf("TTLs %v, want %v", ttls, want)
	}

	// Past the memory (the max, 7 days, after the last decision
	// expired), the actor starts over.
	alerts := e.Process(at(now+7*24*time.Hour, "sql_injection", "a"))
	if len(alerts) != 1 || alerts[0].Decisions[0].TTL != time.Hour || alerts[0].Decisions[0].Repeats != 0 {
		t.Errorf("after the memory: %+v, want a first offence again", alerts)
	}
}

func TestUnverifiedActorFieldsKeyNothing(t *testing.T) {
	scenarios := mustParse(t, `
name: per-user
type: trigger
filter: evt.kind == "x"
groupby: evt.actor.user
response: {scope: user, action: read-only, ttl: 1h}
---
name: per-session
type: trigger
filter: evt.kind == "x"
groupby: key(evt.actor.session, evt.actor.device)
response: {scope: session, action: block, ttl: 1h}
`)
	e := mustEngine(t, Config{Scenarios: scenarios})
	claimed := at(0, "x", "203.0.113.1")
	claimed.Actor.User, claimed.Actor.Session, claimed.Actor.Device = "victim", "s1", "d1"
	if alerts := e.Process(claimed); len(alerts) != 0 {
		t.Fatalf("an unverified user and session keyed %+v", alerts)
	}
	for _, st := range e.Stats().Scenarios {
		if st.Unkeyed != 1 {
			t.Errorf("%s: unkeyed %d, want 1", st.Name, st.Unkeyed)
		}
	}
	verified := claimed
	verified.ActorVerified = true
	alerts := e.Process(verified)
	if len(alerts) != 2 || alerts[0].Decisions[0].Value != "victim" || alerts[1].Decisions[0].Value != "s1" {
		t.Fatalf("verified: %+v, want the user and the session decided", alerts)
	}
}

func TestAllowlistedActorsAreNeverDecided(t *testing.T) {
	scenarios := mustParse(t, `
name: per-ip
type: trigger
filter: evt.kind == "x"
groupby: evt.actor.ip
response: {scope: ip, action: block, ttl: 1h}
---
name: per-range
type: trigger
filter: evt.kind == "y"
groupby: ip_range(evt.actor.ip)
response: {scope: range, action: block, ttl: 1h}
`)
	allow := []Allow{}
	for _, s := range []string{"ip:198.51.100.0/24", "ip:203.0.113.9", "user:support-1"} {
		a, err := ParseAllow(s)
		if err != nil {
			t.Fatal(err)
		}
		allow = append(allow, a)
	}
	e := mustEngine(t, Config{Scenarios: scenarios, Allow: allow})
	support := at(0, "x", "192.0.2.1")
	support.Actor.User, support.ActorVerified = "support-1", true
	for _, ev := range []Event{at(0, "x", "198.51.100.77"), at(0, "x", "203.0.113.9"), support,
		at(0, "y", "203.0.113.10")} { // its /24 holds 203.0.113.9
		if alerts := e.Process(ev); len(alerts) != 0 {
			t.Errorf("%+v: alerts %+v, want none", ev.Actor, alerts)
		}
	}
	if alerts := e.Process(at(0, "x", "203.0.113.10")); len(alerts) != 1 {
		t.Errorf("a neighbour of an allowlisted address: %d alerts, want 1", len(alerts))
	}
	if st := e.Stats(); st.Allowlisted != 4 {
		t.Errorf("allowlisted %d, want 4", st.Allowlisted)
	}
	if _, err := ParseAllow("ip:not-an-ip"); err == nil {
		t.Error("ParseAllow accepted a bad address")
	}
	if _, err := ParseAllow("planet:earth"); err == nil {
		t.Error("ParseAllow accepted an unknown scope")
	}
}

func TestExceptionsExemptMatchingEvents(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, `
name: x
type: trigger
filter: evt.kind == "x"
groupby: key(evt.actor.ip, evt.route)
exceptions:
  - name: office health checks
    fields: [evt.actor.ip, evt.route]
    comps: [in_cidr, startswith]
    values:
      - [[10.0.0.0/8, 198.51.100.0/24], "GET /health"]
  - name: teapots
    fields: evt.status
    values: [418]
`)})
	ev := func(ip, route string, status int) Event {
		e := at(0, "x", ip)
		e.Route, e.Status = route, status
		return e
	}
	for _, tt := range []struct {
		ev     Event
		exempt bool
	}{
		{ev("10.1.2.3", "GET /healthz", 200), true},
		{ev("198.51.100.7", "GET /health", 200), true},
		{ev("203.0.113.1", "GET /health", 200), false},
		{ev("10.1.2.3", "GET /admin", 200), false},
		{ev("203.0.113.2", "GET /", 418), true},
	} {
		alerts := e.Process(tt.ev)
		if (len(alerts) == 0) != tt.exempt {
			t.Errorf("%s %s %d: alerts %d, exempt want %v", tt.ev.Actor.IP, tt.ev.Route, tt.ev.Status, len(alerts), tt.exempt)
		}
	}
	if st := e.Stats().Scenarios[0]; st.Exempted != 3 {
		t.Errorf("exempted %d, want 3", st.Exempted)
	}
}

func TestMaxKeysEvictsTheLeastRecentAndCountsIt(t *testing.T) {
	e := mustEngine(t, Config{MaxKeys: 10, Scenarios: mustParse(t, `
name: slow
type: leaky
filter: true
groupby: evt.actor.ip
capacity: 1000
leakspeed: 24h
`)})
	for i := range 100 {
		e.Process(at(time.Duration(i)*time.Millisecond, "x", fmt.Sprint(i)))
	}
	st := e.Stats().Scenarios[0]
	if st.Keys != 10 || st.Evictions != 90 || st.Expired != 0 {
		t.Errorf("keys %d evictions %d expired %d, want 10, 90, 0", st.Keys, st.Evictions, st.Expired)
	}
}

func TestDrainedBucketsAreForgotten(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, `
name: fast
type: leaky
filter: true
groupby: evt.actor.ip
capacity: 1000
leakspeed: 1s
`)})
	for i := range 100 {
		e.Process(at(time.Duration(i)*time.Minute, "x", fmt.Sprint(i)))
	}
	st := e.Stats().Scenarios[0]
	if st.Keys > 2 || st.Expired < 98 || st.Evictions != 0 {
		t.Errorf("keys %d expired %d evictions %d: drained buckets should go without evictions", st.Keys, st.Expired, st.Evictions)
	}
}

func TestDistinctCountsValuesNotEvents(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, `
name: enum
type: leaky
filter: true
groupby: evt.actor.ip
distinct: evt.login.name
capacity: 3
leakspeed: 1h
`)})
	ev := func(name string) Event { e := at(0, "x", "a"); e.Login.Name = name; return e }
	if alerts := processAll(e, ev("a"), ev("a"), ev("b"), ev("b"), ev("c"), ev("a"), ev(""), ev("")); len(alerts) != 0 {
		t.Fatalf("three distinct values overflowed a capacity of 3: %+v", alerts)
	}
	alerts := e.Process(ev("d"))
	if len(alerts) != 1 || alerts[0].Distinct != 4 {
		t.Fatalf("alerts %+v, want one with 4 distinct", alerts)
	}
}

func TestHyperLogLogStaysWithinItsErrorBound(t *testing.T) {
	var d distinctSet
	total := 0.0
	const n = 100_000
	for i := range n {
		total += d.add(hash64(fmt.Sprintf("value-%d", i)))
		if i < exactDistinct && total != float64(i+1) {
			t.Fatalf("exact phase: %v after %d values", total, i+1)
		}
	}
	// Standard error 1.04/sqrt(4096) = 1.6%; 5% is over three of them.
	for name, got := range map[string]float64{"estimate": d.count(), "sum of increments": total} {
		if rel := math.Abs(got-n) / n; rel > 0.05 {
			t.Errorf("%s %.0f for %d distinct values: %.1f%% off", name, got, n, rel*100)
		} else {
			t.Logf("%s %.0f for %d distinct values: %.2f%% off", name, got, n, rel*100)
		}
	}
	before := d.count()
	for i := range 1000 {
		d.add(hash64(fmt.Sprintf("value-%d", i)))
	}
	if d.count() != before {
		t.Errorf("values seen again moved the estimate from %.0f to %.0f", before, d.count())
	}
}

func TestConditionalFiresOnTheConditionWithTheLevelBefore(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, `
name: ato
type: conditional
filter: evt.kind in ["fail", "ok"]
groupby: evt.actor.ip
condition: evt.kind == "ok" && count >= 3
cancel_on: evt.kind == "ok"
leakspeed: 1h
response: {scope: ip, action: read-only, ttl: 1h}
`)})
	if alerts := processAll(e, at(0, "fail", "a"), at(1, "fail", "a"), at(2, "ok", "a")); len(alerts) != 0 {
		t.Fatalf("two failures then a success: %+v", alerts)
	}
	alerts := processAll(e, at(3, "fail", "a"), at(4, "fail", "a"), at(5, "fail", "a"), at(6, "ok", "a"))
	if len(alerts) != 1 || alerts[0].Count != 4 {
		t.Fatalf("three failures then a success: %+v, want one alert over the four events", alerts)
	}
}

func TestWeightAndCountFillTheBucket(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, `
name: w
type: leaky
filter: true
groupby: evt.actor.ip
capacity: 10
leakspeed: 1h
`)})
	summary := at(0, "request", "a")
	summary.Count = 11
	alerts := e.Process(summary)
	if len(alerts) != 1 || alerts[0].Count != 11 {
		t.Fatalf("a summary of 11 requests: %+v, want it to overflow a capacity of 10", alerts)
	}
}

func TestCampaignMembersAreDecidedOneByOne(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, `
name: dist
type: leaky
filter: evt.kind == "fail"
groupby: evt.service
distinct: evt.actor.ip
capacity: 3
leakspeed: 1h
members: {min: 2}
response: {scope: ip, action: block-sensitive, ttl: 1h}
`)})
	ev := func(ip string) Event { e := at(0, "fail", ip); e.Service = "shop"; return e }
	alerts := processAll(e, ev("a"), ev("a"), ev("b"), ev("c"), ev("d"))
	if len(alerts) != 1 || len(alerts[0].Decisions) != 1 || alerts[0].Decisions[0].Value != "a" {
		t.Fatalf("campaign alert %+v, want one deciding a (the only member with 2 events)", alerts)
	}
	alerts = processAll(e, ev("b"), ev("a"), ev("e"))
	if len(alerts) != 1 || alerts[0].Decisions[0].Value != "b" {
		t.Fatalf("during the campaign: %+v, want b decided once and a not again", alerts)
	}
}

func TestReplayGivesTheSameAlerts(t *testing.T) {
	tr := newTraffic(42)
	benignDay(tr, 100, time.Hour)
	evs := append(tr.events("r"), generated["credential-stuffing-distributed"]()...)
	slices.SortStableFunc(evs, func(a, b Event) int { return a.Time.Compare(b.Time) })
	run := func() []Alert {
		return mustEngine(t, Config{Scenarios: Builtin()}).ProcessBatch(nil, evs)
	}
	first, second := run(), run()
	if len(first) == 0 || fmt.Sprint(first) != fmt.Sprint(second) {
		t.Errorf("two runs over the same events differ (or raised nothing): %d and %d alerts", len(first), len(second))
	}
}

func TestProcessDoesNotModifyTheCallersEvent(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: Builtin()})
	ev := loginFailure("203.0.113.1", string(make([]byte, 2000)), true)
	ev.Actor.User = "claimed"
	ev.Attrs = map[string]string{"k": string(make([]byte, 1000))}
	e.Process(ev)
	if ev.Actor.User != "claimed" || len(ev.Login.Name) != 2000 || len(ev.Attrs["k"]) != 1000 {
		t.Error("Process changed the event it was given")
	}
}

// The actions and scopes a scenario writes are the decision API's, so that
// the control plane can store an alert's decision as it is (range being
// the API's cidr).
func TestActionsAndScopesAreTheDecisionAPIs(t *testing.T) {
	for _, p := range [][2]string{
		{string(Block), string(decision.Block)}, {string(BlockSensitive), string(decision.BlockSensitive)},
		{string(ReadOnly), string(decision.ReadOnly)}, {string(RateLimit), string(decision.RateLimit)},
		{string(ScopeIP), string(decision.ScopeIP)}, {string(ScopeUser), string(decision.ScopeUser)},
		{string(ScopeSession), string(decision.ScopeSession)},
	} {
		if p[0] != p[1] {
			t.Errorf("detect says %q where the decision API says %q", p[0], p[1])
		}
	}
}

func TestFilterKinds(t *testing.T) {
	for src, want := range map[string][]string{
		`evt.kind == "a"`:                           {"a"},
		`"a" == evt.kind && evt.status > 3`:         {"a"},
		`evt.kind in ["a", "b"] && evt.kind != "a"`: {"a", "b"},
		`evt.kind in ["a", "b"] && evt.kind == "b"`: {"b"},
		`evt.kind == "a" || evt.kind == "c"`:        {"a", "c"},
		`evt.kind == "a" || evt.status == 404`:      nil,
		`evt.status == 404`:                         nil,
		`!(evt.kind == "a")`:                        nil,
	} {
		got, ok := filterKinds(src)
		if ok != (want != nil) || !slices.Equal(got, want) {
			t.Errorf("%s: kinds %v (%v), want %v", src, got, ok, want)
		}
	}
}

func TestCampaignMembersClearedAreNotDecided(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, `
name: dist
type: leaky
filter: evt.kind in ["fail", "ok"]
groupby: evt.service
distinct: 'evt.kind == "fail" ? evt.actor.ip : ""'
capacity: 3
leakspeed: 1h
members: {min: 2, clear_on: evt.kind == "ok"}
response: {scope: ip, action: block-sensitive, ttl: 1h}
`)})
	ev := func(kind, ip string) Event { e := at(0, kind, ip); e.Service = "shop"; return e }
	// The office fails, logs in, fails again; a bot fails twice.
	alerts := processAll(e, ev("fail", "office"), ev("ok", "office"), ev("fail", "office"),
		ev("fail", "bot"), ev("fail", "bot"), ev("fail", "c"), ev("fail", "d"))
	if len(alerts) != 1 || len(alerts[0].Decisions) != 1 || alerts[0].Decisions[0].Value != "bot" {
		t.Fatalf("campaign alert %+v, want only the bot decided", alerts)
	}
	// During the campaign, the office fails twice more: still trusted.
	if alerts = processAll(e, ev("fail", "office"), ev("fail", "office"), ev("fail", "e"), ev("ok", "e"), ev("fail", "e")); len(alerts) != 0 {
		t.Fatalf("during the campaign: %+v, want the office and e (who logged in) left alone", alerts)
	}
}

func TestReloadKeepsTheStateOfUnchangedScenarios(t *testing.T) {
	a := mustParse(t, leaky3)
	e := mustEngine(t, Config{Scenarios: a})
	processAll(e, at(0, "x", "a"), at(time.Second, "x", "a"))

	// The same YAML, parsed again: the bucket holding two events stays.
	if err := e.Reload(mustParse(t, leaky3)); err != nil {
		t.Fatal(err)
	}
	if alerts := e.Process(at(2*time.Second, "x", "a")); len(alerts) != 1 {
		t.Fatalf("after reloading an unchanged scenario: %d alerts, want its bucket kept and overflowing", len(alerts))
	}

	// A changed capacity starts empty.
	processAll(e, at(2*time.Minute, "x", "b"), at(2*time.Minute+time.Second, "x", "b"))
	changed := strings.Replace(leaky3, "capacity: 2", "capacity: 1", 1)
	if err := e.Reload(mustParse(t, changed)); err != nil {
		t.Fatal(err)
	}
	if alerts := e.Process(at(2*time.Minute+2*time.Second, "x", "b")); len(alerts) != 0 {
		t.Fatalf("after changing the scenario: %+v, want an empty bucket", alerts)
	}
	if err := e.Reload(append(mustParse(t, changed), mustParse(t, changed)...)); err == nil {
		t.Error("Reload accepted a scenario twice")
	}
}

func TestProcessFromSeveralGoroutines(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: Builtin()})
	evs := generated["credential-stuffing-distributed"]()
	done := make(chan int)
	for g := range 4 {
		go func() {
			n := 0
			for i := g; i < len(evs); i += 4 {
				n += len(e.Process(evs[i]))
				_ = e.Stats()
			}
			done <- n
		}()
	}
	alerts := 0
	for range 4 {
		alerts += <-done
	}
	if st := e.Stats(); st.Events != uint64(len(evs)) || alerts == 0 {
		t.Errorf("%d events counted of %d, %d alerts", st.Events, len(evs), alerts)
	}
}

// A stored event the feeder reads as several (a request summary's paths)
// shares its id: an alert names it once, in the head and in the ring of
// its evidence alike.
func TestAnEventReadAsSeveralIsOnePieceOfEvidence(t *testing.T) {
	e := mustEngine(t, Config{Scenarios: mustParse(t, `
name: many
type: leaky
filter: evt.kind == "x"
groupby: evt.actor.ip
capacity: 119
leakspeed: 1h
response: {scope: ip, action: block, ttl: 1h}
`)})
	var evs []Event
	for i := range 40 {
		for range 3 {
			ev := at(time.Duration(i)*time.Millisecond, "x", "203.0.113.1")
			evs = append(evs, ev)
		}
	}
	alerts := processAll(e, evs...)
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(alerts))
	}
	var want []string
	for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39} {
		want = append(want, fmt.Sprintf("e%d", i))
	}
	if got := alerts[0].Evidence; !slices.Equal(got, want) {
		t.Errorf("evidence %v, want %v", got, want)
	}
}
