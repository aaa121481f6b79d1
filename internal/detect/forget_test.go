package detect

import (
	"testing"
	"time"
)

// silentUntilTTL is silent, once it decided, for the decision's TTL (no
// blackhole given), and escalates.
const silentUntilTTL = `
name: silent
type: leaky
filter: evt.kind == "x"
groupby: evt.actor.ip
capacity: 2
leakspeed: 10s
response: {scope: ip, action: block, ttl: 1h, escalation: {max: 1d}}
`

// A lifted decision ends its key's silence: the same attack right after
// the lift alerts again, where without Forget it stays silent for the
// decision's TTL.
func TestForgetEndsTheSilenceOfALiftedDecision(t *testing.T) {
	attack := func(e *Engine, from time.Duration) []Alert {
		return processAll(e, at(from, "x", "a"), at(from+time.Second, "x", "a"), at(from+2*time.Second, "x", "a"))
	}
	for _, lift := range []bool{false, true} {
		e := mustEngine(t, Config{Scenarios: mustParse(t, silentUntilTTL)})
		if alerts := attack(e, 0); len(alerts) != 1 || len(alerts[0].Decisions) != 1 {
			t.Fatalf("first attack: %+v, want one alert with a decision", alerts)
		}
		if alerts := attack(e, time.Minute); len(alerts) != 0 {
			t.Fatalf("attack within the TTL, not lifted: %+v, want none (silent)", alerts)
		}
		if lift {
			if !e.Forget("silent", "a", "a") {
				t.Fatal("Forget of the silent key: false")
			}
			if e.Forget("silent", "a", "a") {
				t.Error("Forget again: true, no silence was left")
			}
		}
		alerts := attack(e, 2*time.Minute)
		switch {
		case !lift && len(alerts) != 0:
			t.Errorf("attack within the TTL, not lifted: %+v, want none", alerts)
		case lift && (len(alerts) != 1 || len(alerts[0].Decisions) != 1 || alerts[0].Count != 3):
			t.Errorf("attack after the lift: %+v, want one alert of 3 events with a decision", alerts)
		case lift && (alerts[0].Decisions[0].Repeats != 0 || alerts[0].Decisions[0].TTL != time.Hour):
			// A person lifted it: a false positive must not lengthen the next.
			t.Errorf("attack after the lift: repeats %d, ttl %s; want 0 and the base 1h (a lift resets the escalation)",
				alerts[0].Decisions[0].Repeats, alerts[0].Decisions[0].TTL)
		}
	}
	e := mustEngine(t, Config{Scenarios: mustParse(t, silentUntilTTL)})
	if e.Forget("silent", "nobody", "nobody") || e.Forget("no-such-scenario", "a", "a") {
		t.Error("Forget of a key or scenario never seen: true")
	}
}

// Of a campaign, a lifted member is decided again when it reaches Min;
// the campaign stays under way for the others.
func TestForgetAMemberOfACampaign(t *testing.T) {
	const campaign = `
name: camp
type: leaky
filter: evt.kind == "x"
groupby: evt.service
distinct: evt.actor.ip
capacity: 3
leakspeed: 1m
members: {min: 2, max: 100}
response: {scope: ip, action: block, ttl: 1h}
`
	e := mustEngine(t, Config{Scenarios: mustParse(t, campaign)})
	ev := func(i int, ip string) Event {
		x := at(time.Duration(i)*time.Second, "x", ip)
		x.Service = "shop"
		return x
	}
	var evs []Event
	for i, ip := range []string{"a", "a", "b", "b", "c", "c", "d", "d"} {
		evs = append(evs, ev(i, ip))
	}
	decided := map[string]int{}
	for _, a := range processAll(e, evs...) {
		for _, d := range a.Decisions {
			decided[d.Value]++
		}
	}
	if decided["a"] != 1 || decided["d"] != 1 {
		t.Fatalf("decisions %v, want a and d decided once", decided)
	}
	if !e.Forget("camp", "shop", "a") {
		t.Fatal("Forget of member a: false")
	}
	var again []Alert
	for i := range 2 {
		again = append(again, processAll(e, ev(20+i, "a"), ev(30+i, "d"))...)
	}
	decided = map[string]int{}
	for _, a := range again {
		for _, d := range a.Decisions {
			decided[d.Value]++
		}
	}
	if decided["a"] != 1 || decided["d"] != 0 {
		t.Errorf("after lifting a: decisions %v, want a decided again and d not", decided)
	}
}
