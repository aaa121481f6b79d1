package detect

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

type campaign struct {
	name     string
	start    time.Duration
	scenario string
	scope    Scope
	value    string
	add      func(tr *traffic, start time.Duration)
}

// campaigns are the attacks of the precision test, from addresses no
// benign user has.
var campaigns = []campaign{
	{"sql injection", 2 * time.Hour, "injection-escalation", ScopeIP, "45.33.1.1", func(tr *traffic, s time.Duration) {
		tr.add(s, Event{Kind: KindSQLInjection, Action: "blocked", Route: "GET /search", Actor: Actor{IP: "45.33.1.1"}})
	}},
	{"brute force", 3 * time.Hour, "brute-force", ScopeIP, "45.33.2.2", func(tr *traffic, s time.Duration) {
		for i := range 40 {
			tr.add(s+time.Duration(i)*2*time.Second, loginFailure("45.33.2.2", "user0005@example.com", true))
		}
	}},
	{"credential stuffing from one address", 4 * time.Hour, "credential-stuffing-ip", ScopeIP, "45.33.3.3", func(tr *traffic, s time.Duration) {
		for i := range 100 {
			tr.add(s+time.Duration(i)*700*time.Millisecond, loginFailure("45.33.3.3", fmt.Sprintf("leak%03d@example.org", i), i%2 == 0))
		}
	}},
	{"credential stuffing from one /24", 5 * time.Hour, "credential-stuffing-range", ScopeRange, "45.34.5.0/24", func(tr *traffic, s time.Duration) {
		for i := range 90 {
			tr.add(s+time.Duration(i)*time.Second, loginFailure(fmt.Sprintf("45.34.5.%d", 10+i%30), fmt.Sprintf("leak%03d@example.org", i), true))
		}
	}},
	{"credential stuffing from one device", 6 * time.Hour, "credential-stuffing-device", ScopeDevice, "dev-bad", func(tr *traffic, s time.Duration) {
		for i := range 12 {
			ev := loginFailure(fmt.Sprintf("45.35.%d.1", i), fmt.Sprintf("leak%03d@example.org", i), true)
			ev.Actor.Device, ev.ActorVerified = "dev-bad", true
			tr.add(s+time.Duration(i)*10*time.Second, ev)
		}
	}},
	{"distributed credential stuffing", 7 * time.Hour, "credential-stuffing-distributed", ScopeIP, "100.64.1.7", func(tr *traffic, s time.Duration) {
		for i := range 900 {
			ip := fmt.Sprintf("100.64.%d.%d", i%300/250, i%300%250+1)
			tr.add(s+time.Duration(i)*400*time.Millisecond, loginFailure(ip, fmt.Sprintf("stale%04d@example.org", i), false))
		}
	}},
	{"account takeover", 8 * time.Hour, "account-takeover", ScopeUser, "u-victim", func(tr *traffic, s time.Duration) {
		for i := range 6 {
			tr.add(s+time.Duration(i)*15*time.Second, loginFailure("45.36.1.1", "victim@example.com", true))
		}
		tr.add(s+2*time.Minute, loginSuccess("45.36.1.1", "victim@example.com", "u-victim", false))
	}},
	{"user enumeration", 9 * time.Hour, "user-enumeration", ScopeIP, "45.37.1.1", func(tr *traffic, s time.Duration) {
		for i := range 15 {
			tr.add(s+time.Duration(i)*3*time.Second, loginFailure("45.37.1.1", fmt.Sprintf("admin%d", i), false))
		}
	}},
	{"probing", 10 * time.Hour, "probing", ScopeIP, "45.38.1.1", func(tr *traffic, s time.Duration) {
		for i := range 30 {
			tr.add(s+time.Duration(i)*time.Second, request("45.38.1.1", "", "", fmt.Sprintf("/probe/%d", i), 404))
		}
	}},
	{"scraping", 12 * time.Hour, "scraping", ScopeIP, "45.40.1.1", func(tr *traffic, s time.Duration) {
		for i := range 4000 {
			tr.add(s+time.Duration(i)*40*time.Millisecond, request("45.40.1.1", "", "GET /products/{id}", fmt.Sprintf("/products/%d", i), 200))
		}
	}},
	{"admin-route abuse", 13 * time.Hour, "admin-route-abuse", ScopeUser, "u-eve", func(tr *traffic, s time.Duration) {
		ev := request("45.41.1.1", "u-eve", "POST /admin/refunds", "/admin/refunds", 200)
		ev.Attrs = map[string]string{"sensitive": "true", "expected": "false"}
		tr.add(s, ev)
	}},
	{"bola", 11 * time.Hour, "bola", ScopeUser, "u-mallory", func(tr *traffic, s time.Duration) {
		for i := range 20 {
			tr.add(s+time.Duration(i)*4*time.Second, objectAccess("45.39.1.1", "u-mallory", "order", fmt.Sprintf("o-%04d-0", i), fmt.Sprintf("u%04d", i)))
		}
	}},
	{"bola, a walk of consecutive ids", 14 * time.Hour, "bola-sequential", ScopeUser, "u-walker", func(tr *traffic, s time.Duration) {
		for i := range 8 {
			tr.add(s+time.Duration(i)*3*time.Second, objectAccess("45.42.1.1", "u-walker", "order", fmt.Sprintf("o-%d", 9000+i), fmt.Sprintf("u%04d", i)))
		}
	}},
	{"object ids probed without a user", 15 * time.Hour, "object-id-probing", ScopeIP, "45.43.1.1", func(tr *traffic, s time.Duration) {
		for i := range 15 {
			tr.add(s+time.Duration(i)*2*time.Second, request("45.43.1.1", "", "GET /orders/{id}", fmt.Sprintf("/orders/%d", 7000+i), 404))
		}
	}},
	{"object ids probed by a user", 16 * time.Hour, "object-id-probing-user", ScopeUser, "u-prober", func(tr *traffic, s time.Duration) {
		for i := range 15 {
			tr.add(s+time.Duration(i)*2*time.Second, request("45.44.1.1", "u-prober", "GET /orders/{id}", fmt.Sprintf("/orders/%d", 7000+i), 403))
		}
	}},
	{"brute force from one /24", 17 * time.Hour, "brute-force-range", ScopeRange, "45.45.1.0/24", func(tr *traffic, s time.Duration) {
		for i := range 30 {
			tr.add(s+time.Duration(i)*2*time.Second, loginFailure(fmt.Sprintf("45.45.1.%d", 10+i), "user0007@example.com", true))
		}
	}},
	{"brute force from one device", 18 * time.Hour, "brute-force-device", ScopeDevice, "c-bot", func(tr *traffic, s time.Duration) {
		for i := range 15 {
			tr.add(s+time.Duration(i)*5*time.Second, withDevice(loginFailure(fmt.Sprintf("45.46.%d.1", i), "user0008@example.com", true), "c-bot"))
		}
	}},
	{"scraping objects as a user", 19 * time.Hour, "scraping-objects", ScopeUser, "u-scraper", func(tr *traffic, s time.Duration) {
		for i := range 400 {
			tr.add(s+time.Duration(i)*300*time.Millisecond, objectAccess("45.47.1.1", "u-scraper", "product", fmt.Sprintf("p-%d", i), ""))
		}
	}},
	{"scraping objects without a user", 20 * time.Hour, "scraping-objects-anonymous", ScopeIP, "45.48.1.1", func(tr *traffic, s time.Duration) {
		for i := range 400 {
			tr.add(s+time.Duration(i)*250*time.Millisecond, objectAccess("45.48.1.1", "", "product", fmt.Sprintf("p-%d", i), ""))
		}
	}},
}

// TestPrecisionOnAGeneratedDay runs a day of benign traffic of 3,000
// users (typos, password managers, forgotten passwords, a NAT'd office,
// mobile users changing address, IPv6 homes, a support user reading many
// accounts, missing favicons, the odd WAF false positive) with the
// campaigns above in it: every campaign must be decided, and no decision
// may name a benign actor. The time from each campaign's first event to
// its decision (event time) is logged.
func TestPrecisionOnAGeneratedDay(t *testing.T) {
	tr := newTraffic(2026)
	benignDay(tr, 3000, 24*time.Hour)
	benignIPs, benignUsers, benignRanges, benignDevices := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, ev := range tr.evs {
		benignIPs[ev.Actor.IP] = true
		benignRanges[ipRange(ev.Actor.IP)] = true
		benignUsers[ev.Actor.User] = true
		benignDevices[ev.Actor.Device] = true
	}
	for _, c := range campaigns {
		c.add(tr, c.start)
	}
	evs := tr.events("day")
	e := mustEngine(t, Config{Scenarios: Builtin()})
	alerts := e.ProcessBatch(nil, evs)
	t.Logf("%d events, %d alerts", len(evs), len(alerts))

	for _, a := range alerts {
		for _, d := range a.Decisions {
			var benign bool
			switch d.Scope {
			case ScopeIP:
				benign = benignIPs[d.Value]
			case ScopeRange:
				benign = benignRanges[d.Value]
			case ScopeUser:
				benign = benignUsers[d.Value]
			case ScopeDevice:
				benign = benignDevices[d.Value]
			}
			if benign {
				t.Errorf("decision against a benign actor: %s %s %s by %s (key %q, evidence %v)",
					d.Action, d.Scope, d.Value, a.Scenario, a.Key, a.Evidence)
			}
		}
	}
	for _, c := range campaigns {
		i := slices.IndexFunc(alerts, func(a Alert) bool {
			return a.Scenario == c.scenario && slices.ContainsFunc(a.Decisions, func(d Decision) bool {
				return d.Scope == c.scope && d.Value == c.value
			})
		})
		if i < 0 {
			t.Errorf("%s: no %s decision against %s %s", c.name, c.scenario, c.scope, c.value)
			continue
		}
		first := slices.IndexFunc(alerts, func(a Alert) bool {
			return a.Scenario == c.scenario && len(a.Decisions) > 0 && !a.Last.Before(t0.Add(c.start))
		})
		t.Logf("%-38s decided by %-32s first decision %6s after its first event, %s %s after %s",
			c.name, c.scenario, alerts[first].Last.Sub(t0.Add(c.start)), c.scope, c.value, alerts[i].Last.Sub(t0.Add(c.start)))
	}
	for _, s := range e.Stats().Scenarios {
		t.Logf("%-32s matched=%d exempted=%d unkeyed=%d alerts=%d keys=%d expired=%d evictions=%d",
			s.Name, s.Matched, s.Exempted, s.Unkeyed, s.Alerts, s.Keys, s.Expired, s.Evictions)
	}
}
