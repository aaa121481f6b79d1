package detect

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func fired(alerts []Alert, scenario string) bool {
	return slices.ContainsFunc(alerts, func(a Alert) bool { return a.Scenario == scenario })
}

// A login name typed in another case or with spaces is the same account:
// spelled apart, twelve failures split into twelve brute-force buckets and
// a success in another case escaped account takeover.
func TestLoginNameVariantsAreOneAccount(t *testing.T) {
	login := func(i int, kind, name, user string) Event {
		return Event{ID: fmt.Sprintf("l%d", i), Time: t0.Add(time.Duration(i) * time.Second), Kind: kind,
			Actor: Actor{IP: "203.0.113.9"}, Login: Login{Name: name, User: user, Exists: true}}
	}
	t.Run("a success typed in another case after failures is a takeover", func(t *testing.T) {
		e := mustEngine(t, Config{Scenarios: Builtin()})
		var evs []Event
		for i := range 6 {
			evs = append(evs, login(i, KindLoginFailure, "Alice@Example.com", ""))
		}
		evs = append(evs, login(6, KindLoginSuccess, "alice@example.com", "u-alice"))
		if !fired(processAll(e, evs...), "account-takeover") {
			t.Error("no account-takeover alert")
		}
	})
	t.Run("twelve failures on one account in twelve spellings are brute force", func(t *testing.T) {
		e := mustEngine(t, Config{Scenarios: Builtin()})
		var evs []Event
		for i, v := range []string{"alice@example.com", "Alice@example.com", "ALICE@example.com", "alice@Example.com", "alice@EXAMPLE.com",
			"aLice@example.com", "alIce@example.com", "aliCe@example.com", "alicE@example.com", "Alice@Example.com", "ALICE@EXAMPLE.COM", " alice@example.com"} {
			evs = append(evs, login(i, KindLoginFailure, v, ""))
		}
		if !fired(processAll(e, evs...), "brute-force") {
			t.Error("no brute-force alert")
		}
	})
	t.Run("distinct names stay distinct", func(t *testing.T) {
		if a, b := foldLoginName("Bob@x"), foldLoginName("bob2@x"); a == b {
			t.Errorf("%q and %q folded together", a, b)
		}
		if n := testing.AllocsPerRun(100, func() { foldLoginName("alice@example.com") }); n != 0 {
			t.Errorf("a name already folded costs %v allocations", n)
		}
	})
}

// Scraping leaves static files out by extension; a servlet container drops
// ";" parameters before routing, so /users/42;.css is user 42, not a style
// sheet. And a service's own summary of a request the gateway already
// counted is not counted again.
func TestScrapingCannotBeHiddenAsStaticFilesOrCountedTwice(t *testing.T) {
	scrape := func(path string, attrs map[string]string) bool {
		e := mustEngine(t, Config{Scenarios: Builtin()})
		var evs []Event
		for i := range 1500 {
			evs = append(evs, Event{ID: fmt.Sprintf("r%d", i), Time: t0.Add(time.Duration(i) * 20 * time.Millisecond),
				Kind: KindRequest, Route: "GET /users/{id}", Method: "GET", Path: fmt.Sprintf(path, i), Status: 200,
				Actor: Actor{IP: "198.51.100.7"}, Attrs: attrs})
		}
		return fired(processAll(e, evs...), "scraping")
	}
	if !scrape("/users/%d", nil) {
		t.Fatal("1,500 pages in 30 s are not scraping: the test measures nothing")
	}
	if !scrape("/users/%d;.css", nil) {
		t.Error(`"/users/N;.css" was taken for a style sheet`)
	}
	if !scrape("/users/%d;jsessionid=1", nil) {
		t.Error(`"/users/N;jsessionid=1" was not counted`)
	}
	if scrape("/static/app%d.css", nil) || scrape("/img/%d.png;v=2", nil) {
		t.Error("static files were counted")
	}
	if scrape("/users/%d", map[string]string{"behind": "gateway"}) {
		t.Error("a service's summary of requests the gateway counted was counted again")
	}
}

// An attacker behind the victim's NAT fails five times with the victim's
// name: the victim's own login, from another device, is no takeover;
// the attacker's device getting in is.
func TestAccountTakeoverBehindSharedAddress(t *testing.T) {
	run := func(successDevice string) bool {
		e := mustEngine(t, Config{Scenarios: Builtin()})
		var evs []Event
		for i := range 6 {
			ev := withDevice(loginFailure("192.0.2.50", "grace@example.com", true), "dev-attacker")
			ev.ID, ev.Time = fmt.Sprintf("f%d", i), t0.Add(time.Duration(i)*10*time.Second)
			evs = append(evs, ev)
		}
		ok := withDevice(loginSuccess("192.0.2.50", "grace@example.com", "u-grace", false), successDevice)
		ok.ID, ok.Time = "s", t0.Add(time.Minute)
		return fired(processAll(e, append(evs, ok)...), "account-takeover")
	}
	if run("dev-grace") {
		t.Error("the victim's own login behind the attacker's NAT made an account-takeover alert")
	}
	if !run("dev-attacker") {
		t.Error("no account-takeover alert for the attacker's device getting in")
	}
}
