package detect

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// -update rewrites the generated fixtures' input.jsonl and expected.jsonl
// from the generators below. Review the expected alerts before committing
// them: the golden file is only as good as that reading.
var update = flag.Bool("update", false, "rewrite generated fixtures under testdata/fixtures")

// t0 is the generated traffic's start: a Monday morning.
var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// traffic builds a stream of events with a seeded generator, so that a
// fixture is the same on every run and machine.
type traffic struct {
	r   *rand.Rand
	evs []Event
}

func newTraffic(seed uint64) *traffic {
	return &traffic{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (tr *traffic) add(at time.Duration, ev Event) {
	ev.Time = t0.Add(at)
	if ev.Service == "" {
		ev.Service = "shop"
	}
	tr.evs = append(tr.evs, ev)
}

func (tr *traffic) jitter(d time.Duration) time.Duration {
	return time.Duration(tr.r.Int64N(int64(d)))
}

// events returns the events in time order, with ids given in that order.
func (tr *traffic) events(prefix string) []Event {
	evs := slices.Clone(tr.evs)
	slices.SortStableFunc(evs, func(a, b Event) int { return a.Time.Compare(b.Time) })
	for i := range evs {
		evs[i].ID = fmt.Sprintf("%s-%05d", prefix, i+1)
	}
	return evs
}

func loginFailure(ip, name string, exists bool) Event {
	return Event{Kind: KindLoginFailure, Route: "POST /login", Method: "POST", Status: 401,
		Actor: Actor{IP: ip}, Login: Login{Name: name, Exists: exists}}
}

func loginSuccess(ip, name, user string, mfa bool) Event {
	return Event{Kind: KindLoginSuccess, Route: "POST /login", Method: "POST", Status: 200,
		Actor: Actor{IP: ip, User: user}, ActorVerified: true, Login: Login{Name: name, User: user, Exists: true, MFA: mfa}}
}

// withDevice gives ev a verified device fingerprint, as a gateway that
// fingerprints devices reports.
func withDevice(ev Event, device string) Event {
	ev.Actor.Device, ev.ActorVerified = device, true
	return ev
}

func request(ip, user, route, path string, status int) Event {
	return Event{Kind: KindRequest, Route: route, Method: "GET", Path: path, Status: status,
		Actor: Actor{IP: ip, User: user}, ActorVerified: user != ""}
}

func objectAccess(ip, user, kind, id, owner string) Event {
	return Event{Kind: KindObjectAccess, Route: "GET /" + kind + "s/{id}", Method: "GET", Path: "/" + kind + "s/" + id, Status: 200,
		Actor: Actor{IP: ip, User: user}, ActorVerified: user != "", Object: Object{Kind: kind, ID: id, Owner: owner}}
}

// benignDay is ordinary traffic of users over span: logins with typos and
// password managers, a NAT'd office sharing one address, mobile users
// changing address, a support user reading many accounts, missing
// favicons and stale links, the odd WAF false positive.
func benignDay(tr *traffic, users int, span time.Duration) {
	office := "198.51.100.10"
	for u := range users {
		name := fmt.Sprintf("user%04d@example.com", u)
		id := fmt.Sprintf("u%04d", u)
		ip := fmt.Sprintf("203.0.%d.%d", 113+u%8, u%250+1)
		switch {
		case u%5 == 0:
			ip = office // a fifth of the users work behind one NAT address
		case u%7 == 0:
			ip = fmt.Sprintf("2001:db8:%x::%x", u, u) // IPv6 home users
		}
		sessions := 1 + tr.r.IntN(3)
		for range sessions {
			at := tr.jitter(span)
			if u%11 == 0 {
				// A mobile user: a new address each session.
				ip = fmt.Sprintf("192.0.2.%d", tr.r.IntN(250)+1)
			}
			switch r := tr.r.IntN(100); {
			case r < 60: // a password manager: right the first time
			case r < 85: // a typo or two
				for range 1 + tr.r.IntN(2) {
					tr.add(at, loginFailure(ip, name, true))
					at += 3*time.Second + tr.jitter(10*time.Second)
				}
			case r < 92: // a mistyped login name, then the right one
				tr.add(at, loginFailure(ip, name[:len(name)-4]+".con", false))
				at += 5*time.Second + tr.jitter(10*time.Second)
			case r < 97: // a forgotten password, then found
				for range 3 + tr.r.IntN(2) {
					tr.add(at, loginFailure(ip, name, true))
					at += 20*time.Second + tr.jitter(40*time.Second)
				}
			default: // several tries, then a second factor
				for range 6 {
					tr.add(at, loginFailure(ip, name, true))
					at += 5*time.Second + tr.jitter(10*time.Second)
				}
				tr.add(at, loginSuccess(ip, name, id, true))
				continue
			}
			tr.add(at, loginSuccess(ip, name, id, false))
			for range 5 + tr.r.IntN(20) {
				at += 2*time.Second + tr.jitter(30*time.Second)
				switch r := tr.r.IntN(100); {
				case r < 70:
					tr.add(at, request(ip, id, "GET /products/{id}", fmt.Sprintf("/products/%d", tr.r.IntN(500)), 200))
				case r < 90:
					tr.add(at, objectAccess(ip, id, "order", fmt.Sprintf("o-%d-%d", u, tr.r.IntN(5)), id))
				case r < 97:
					tr.add(at, request(ip, id, "", "/favicon.ico", 404))
				case r < 99:
					tr.add(at, request(ip, id, "", fmt.Sprintf("/old/page%d", tr.r.IntN(3)), 404))
				default:
					// A review with text the WAF mistakes for SQL.
					tr.add(at, Event{Kind: KindWAF, Action: "monitored", Route: "POST /reviews", Method: "POST",
						Actor: Actor{IP: ip, User: id}, ActorVerified: true})
				}
			}
		}
	}
	// The support user reads many customers' orders, all day.
	for i := range 400 {
		owner := fmt.Sprintf("u%04d", tr.r.IntN(users))
		ev := objectAccess("198.51.100.10", "support-1", "order", fmt.Sprintf("o-%s-%d", owner, i%5), owner)
		ev.Attrs = map[string]string{"role": "support"}
		tr.add(time.Duration(i)*span/400, ev)
	}
}

// generated lists the fixtures written by -update, each from its
// generator.
var generated = map[string]func() []Event{
	"benign": func() []Event {
		tr := newTraffic(1)
		benignDay(tr, 40, time.Hour)
		return tr.events("benign")
	},
	"injection-escalation": func() []Event {
		tr := newTraffic(2)
		attacker := "203.0.113.66"
		// One SQL injection the SDK blocked: blocked at the edge for 1h.
		tr.add(0, Event{Kind: KindSQLInjection, Action: "blocked", Route: "GET /search", Method: "GET", Actor: Actor{IP: attacker}})
		// Back after the block: 2h, then 4h.
		tr.add(70*time.Minute, Event{Kind: KindSQLInjection, Action: "blocked", Route: "GET /search", Method: "GET", Actor: Actor{IP: attacker}})
		tr.add(70*time.Minute+10*time.Second, Event{Kind: KindSQLInjection, Action: "blocked", Route: "GET /search", Method: "GET", Actor: Actor{IP: attacker}})
		tr.add(4*time.Hour, Event{Kind: KindCommandInjection, Action: "blocked", Route: "POST /export", Method: "POST", Actor: Actor{IP: attacker}})
		// A scanner the WAF matches 8 times in a minute.
		for i := range 8 {
			tr.add(10*time.Minute+time.Duration(i)*7*time.Second, Event{Kind: KindWAF, Action: "blocked", Route: "GET /", Method: "GET", Actor: Actor{IP: "198.51.100.77"}})
		}
		// A user whose review the WAF mistook twice: nothing.
		tr.add(20*time.Minute, Event{Kind: KindWAF, Action: "monitored", Route: "POST /reviews", Actor: Actor{IP: "203.0.113.5"}})
		tr.add(21*time.Minute, Event{Kind: KindWAF, Action: "monitored", Route: "POST /reviews", Actor: Actor{IP: "203.0.113.5"}})
		return tr.events("inj")
	},
	"brute-force": func() []Event {
		tr := newTraffic(3)
		for i := range 40 {
			tr.add(time.Duration(i)*1500*time.Millisecond, loginFailure("203.0.113.66", "alice@example.com", true))
		}
		// A user who mistypes three times, then gets it.
		for i := range 3 {
			tr.add(time.Duration(i)*8*time.Second, loginFailure("198.51.100.10", "bob@example.com", true))
		}
		tr.add(30*time.Second, loginSuccess("198.51.100.10", "bob@example.com", "u-bob", false))
		return tr.events("bf")
	},
	"credential-stuffing-ip": func() []Event {
		tr := newTraffic(4)
		for i := range 60 {
			tr.add(time.Duration(i)*500*time.Millisecond, loginFailure("203.0.113.66", fmt.Sprintf("victim%03d@example.com", i), i%3 != 0))
		}
		return tr.events("csi")
	},
	"credential-stuffing-range": func() []Event {
		tr := newTraffic(5)
		// 30 addresses of one /24, 3 names each: no address alone is loud.
		for i := range 90 {
			ip := fmt.Sprintf("192.0.2.%d", 10+i%30)
			tr.add(time.Duration(i)*time.Second, loginFailure(ip, fmt.Sprintf("victim%03d@example.com", i), true))
		}
		return tr.events("csr")
	},
	"credential-stuffing-device": func() []Event {
		tr := newTraffic(6)
		for i := range 12 {
			ev := loginFailure(fmt.Sprintf("203.0.113.%d", 100+i), fmt.Sprintf("victim%03d@example.com", i), true)
			ev.Actor.Device, ev.ActorVerified = "dev-7f3a", true
			tr.add(time.Duration(i)*10*time.Second, ev)
		}
		// The same device claimed on events nobody verified: not counted.
		for i := range 12 {
			ev := loginFailure(fmt.Sprintf("198.51.100.%d", 100+i), fmt.Sprintf("other%03d@example.com", i), true)
			ev.Actor.Device = "dev-0000"
			tr.add(time.Duration(i)*10*time.Second, ev)
		}
		return tr.events("csd")
	},
	"credential-stuffing-distributed": func() []Event {
		tr := newTraffic(7)
		// 120 addresses across networks, 3 unknown names each, interleaved
		// over 4 minutes.
		for i := range 360 {
			ip := fmt.Sprintf("%d.%d.%d.%d", 11+i%120/40, 20+i%40, i%120, 7)
			tr.add(time.Duration(i)*650*time.Millisecond, loginFailure(ip, fmt.Sprintf("stale%04d@example.com", i), false))
		}
		// Meanwhile one user mistypes their name once: not a member.
		tr.add(time.Minute, loginFailure("198.51.100.10", "bob@example.con", false))
		return tr.events("csx")
	},
	"account-takeover": func() []Event {
		tr := newTraffic(8)
		// Guessed: six failures, then in, from the same address.
		for i := range 6 {
			tr.add(time.Duration(i)*10*time.Second, loginFailure("203.0.113.66", "dave@example.com", true))
		}
		tr.add(70*time.Second, loginSuccess("203.0.113.66", "dave@example.com", "u-dave", false))
		// Someone fails six times with carol's name; carol logs in from
		// her own address: not a takeover.
		for i := range 6 {
			tr.add(time.Duration(i)*10*time.Second, loginFailure("203.0.113.77", "carol@example.com", true))
		}
		tr.add(90*time.Second, loginSuccess("198.51.100.20", "carol@example.com", "u-carol", false))
		// Six failures then a second factor: the real user.
		for i := range 6 {
			tr.add(time.Duration(i)*10*time.Second, loginFailure("198.51.100.30", "erin@example.com", true))
		}
		tr.add(80*time.Second, loginSuccess("198.51.100.30", "erin@example.com", "u-erin", true))
		// Two typos then in.
		tr.add(0, loginFailure("198.51.100.40", "frank@example.com", true))
		tr.add(5*time.Second, loginFailure("198.51.100.40", "frank@example.com", true))
		tr.add(10*time.Second, loginSuccess("198.51.100.40", "frank@example.com", "u-frank", false))
		// Behind one NAT: an attacker's device fails six times with
		// grace's name, then grace logs in from her own browser: not a
		// takeover.
		for i := range 6 {
			tr.add(time.Duration(i)*10*time.Second, withDevice(loginFailure("192.0.2.50", "grace@example.com", true), "dev-attacker"))
		}
		tr.add(75*time.Second, withDevice(loginSuccess("192.0.2.50", "grace@example.com", "u-grace", false), "dev-grace"))
		// The same attacker device guessing heidi's password: a takeover.
		for i := range 6 {
			tr.add(time.Duration(i)*10*time.Second, withDevice(loginFailure("192.0.2.50", "heidi@example.com", true), "dev-attacker"))
		}
		tr.add(85*time.Second, withDevice(loginSuccess("192.0.2.50", "heidi@example.com", "u-heidi", false), "dev-attacker"))
		return tr.events("ato")
	},
	"user-enumeration": func() []Event {
		tr := newTraffic(9)
		for i := range 25 {
			tr.add(time.Duration(i)*2*time.Second, loginFailure("203.0.113.66", fmt.Sprintf("guess%02d", i), false))
		}
		return tr.events("enum")
	},
	"probing": func() []Event {
		tr := newTraffic(10)
		paths := []string{"/.env", "/.git/config", "/wp-admin", "/wp-login.php", "/phpmyadmin", "/admin", "/backup.zip",
			"/config.json", "/server-status", "/.aws/credentials", "/actuator/env", "/debug/pprof", "/api/v1/users",
			"/console", "/.DS_Store", "/db.sql", "/test.php", "/info.php", "/shell.php", "/cgi-bin/test", "/vendor/phpunit",
			"/.svn/entries", "/owa", "/solr", "/jenkins", "/manager/html"}
		for i, p := range paths {
			tr.add(time.Duration(i)*time.Second, request("203.0.113.66", "", "", p, 404))
		}
		// Missing favicons, over and over: one distinct path.
		for i := range 50 {
			tr.add(time.Duration(i)*time.Second, request("198.51.100.10", "", "", "/favicon.ico", 404))
		}
		return tr.events("probe")
	},
	"scraping": func() []Event {
		tr := newTraffic(12)
		// 50 pages a second for 35 seconds, and some images.
		for i := range 1750 {
			tr.add(time.Duration(i)*20*time.Millisecond, request("203.0.113.66", "", "GET /products/{id}", fmt.Sprintf("/products/%d", i), 200))
			if i%10 == 0 {
				tr.add(time.Duration(i)*20*time.Millisecond, request("203.0.113.66", "", "", fmt.Sprintf("/img/%d.jpg", i), 200))
			}
		}
		// A gateway summary: 300 requests of one address in one event, then
		// a quiet browser.
		summary := request("198.51.100.99", "", "GET /products/{id}", "/products/1", 200)
		summary.Count = 300
		tr.add(time.Minute, summary)
		for i := range 100 {
			tr.add(time.Duration(i)*2*time.Second, request("198.51.100.10", "", "GET /products/{id}", fmt.Sprintf("/products/%d", i), 200))
		}
		return tr.events("scrape")
	},
	"admin-route-abuse": func() []Event {
		tr := newTraffic(13)
		admin := func(user, expected string, status int) Event {
			ev := request("198.51.100.10", user, "POST /admin/refunds", "/admin/refunds", status)
			ev.Attrs = map[string]string{"sensitive": "true", "expected": expected}
			return ev
		}
		tr.add(0, admin("u-ops", "true", 200))            // expected there
		tr.add(time.Second, admin("u-eve", "false", 403)) // refused: the policy did its job
		tr.add(2*time.Second, admin("u-eve", "false", 200))
		tr.add(3*time.Second, admin("u-eve", "false", 200)) // the same key, silent
		return tr.events("admin")
	},
	"bola": func() []Event {
		tr := newTraffic(11)
		for i := range 20 {
			tr.add(time.Duration(i)*3*time.Second, objectAccess("203.0.113.66", "u-mallory", "order", fmt.Sprintf("o-%d", 1000+i), fmt.Sprintf("u%04d", i)))
		}
		// The same walk by a user nobody verified: no key.
		for i := range 20 {
			ev := objectAccess("203.0.113.67", "u-claimed", "order", fmt.Sprintf("o-%d", 2000+i), fmt.Sprintf("u%04d", i))
			ev.ActorVerified = false
			tr.add(time.Duration(i)*3*time.Second, ev)
		}
		// Support staff reading customers' orders.
		for i := range 30 {
			ev := objectAccess("198.51.100.10", "support-1", "order", fmt.Sprintf("o-%d", 3000+i), fmt.Sprintf("u%04d", i))
			ev.Attrs = map[string]string{"role": "support"}
			tr.add(time.Duration(i)*3*time.Second, ev)
		}
		return tr.events("bola")
	},
}

func writeJSONL(t *testing.T, path string, v any) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	switch v := v.(type) {
	case []Event:
		for _, x := range v {
			enc.Encode(x)
		}
	case []Alert:
		for _, x := range v {
			enc.Encode(x)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGeneratedFixturesAreCurrent checks that each generated fixture's
// input is what its generator makes (so that a change to a generator is
// seen), and with -update rewrites them.
func TestGeneratedFixturesAreCurrent(t *testing.T) {
	for name, gen := range generated {
		dir := filepath.Join("testdata", "fixtures", name)
		evs := gen()
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		for _, ev := range evs {
			enc.Encode(ev)
		}
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			writeJSONL(t, filepath.Join(dir, "input.jsonl"), evs)
			alerts, err := FixtureAlerts(dir)
			if err != nil {
				t.Fatal(err)
			}
			writeJSONL(t, filepath.Join(dir, "expected.jsonl"), alerts)
			continue
		}
		have, err := os.ReadFile(filepath.Join(dir, "input.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, b.Bytes()) {
			t.Errorf("%s: input.jsonl is not what its generator makes: run go test -run TestGeneratedFixturesAreCurrent -update and review expected.jsonl", name)
		}
	}
}
