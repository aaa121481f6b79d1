package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/controltest"
)

// TestTheGatewaySummarisesItsTrafficForTheControlPlane sends requests
// through a gateway and waits until the control plane has summaries that
// count every one of them, attributed to the client, verified.
func TestTheGatewaySummarisesItsTrafficForTheControlPlane(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, `
services:
  users:
    allow:
      - callers: [gateway]
`)
	users := startUpstream(t, cp, "users", nil)
	gw := serveGateway(t, cp, "routes:\n  - {name: users, path_prefix: /, upstream: "+users.url+", service: users}\n", time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	const n = 12
	for i := range n {
		resp, err := client.Get(gw.url + "/users/" + string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// The gateway reports a window every 5 seconds.
	deadline := time.Now().Add(60 * time.Second)
	for {
		total, bad := 0, ""
		for _, raw := range cp.Events(t, "kind=request_summary&service=gateway") {
			var e struct {
				ActorIP       string          `json:"actor_ip"`
				ActorVerified bool            `json:"actor_verified"`
				Route         string          `json:"route"`
				Data          json.RawMessage `json:"data"`
			}
			json.Unmarshal(raw, &e)
			var d struct {
				Count  int      `json:"count"`
				Status int      `json:"status"`
				Method string   `json:"method"`
				Paths  []string `json:"paths"`
				Action string   `json:"action"`
			}
			json.Unmarshal(e.Data, &d)
			total += d.Count
			if e.ActorIP != "127.0.0.1" || !e.ActorVerified || e.Route != "users" || d.Status != 200 || d.Method != "GET" || d.Action != "observed" || len(d.Paths) == 0 {
				bad = string(raw)
			}
		}
		if bad != "" {
			t.Fatalf("summary %s: want 127.0.0.1 verified, route users, GET 200, observed, with paths", bad)
		}
		if total == n {
			return
		}
		if total > n || time.Now().After(deadline) {
			t.Fatalf("summaries count %d requests, want %d", total, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAClientVaryingItsMethodIsFoldedNotLost sends requests of many
// methods, each a key of its own, through a gateway: past the bound of
// keys one client may hold, they reach the control plane folded into a
// summary of the client's, verified, every request counted.
func TestAClientVaryingItsMethodIsFoldedNotLost(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, `
services:
  users:
    allow:
      - callers: [gateway]
`)
	users := startUpstream(t, cp, "users", nil)
	gw := serveGateway(t, cp, "routes:\n  - {name: users, path_prefix: /, upstream: "+users.url+", service: users}\n", time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	// Folding needs more than summary.MaxClientKeys keys of the client in
	// one 5 s window. The requests of a round are sent 10 at a time so
	// that most land in one window; a machine so busy that a round spreads
	// over windows of fewer keys each sends another round, counted too.
	const n, rounds = 100, 5
	sent := 0
	for round := 1; ; round++ {
		var wg sync.WaitGroup
		methods := make(chan string, n)
		for i := range n {
			methods <- fmt.Sprintf("M%03d", i)
		}
		close(methods)
		errs := make(chan error, n)
		for range 10 {
			wg.Go(func() {
				for m := range methods {
					req, _ := http.NewRequest(m, gw.url+"/users/a", nil)
					resp, err := client.Do(req)
					if err != nil {
						errs <- err
						return
					}
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		sent += n
		total, folded := summarized(t, cp, sent)
		if total != sent {
			t.Fatalf("summaries count %d requests, want %d", total, sent)
		}
		if folded > 0 {
			t.Logf("%d requests folded of %d, in round %d", folded, sent, round)
			return
		}
		if round == rounds {
			t.Fatalf("no request folded in %d rounds of %d methods: one client held a key per method", rounds, n)
		}
	}
}

// summarized waits until the gateway's summaries count want requests (or
// a minute passed, or they count more), and returns how many they count
// and how many of those were folded.
func summarized(t *testing.T, cp *controltest.ControlPlane, want int) (total, folded int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		total, folded = 0, 0
		for _, raw := range cp.Events(t, "kind=request_summary&service=gateway&limit=1000") {
			var e struct {
				ActorIP       string `json:"actor_ip"`
				ActorVerified bool   `json:"actor_verified"`
				Data          struct {
					Count int               `json:"count"`
					Attrs map[string]string `json:"attrs"`
				} `json:"data"`
			}
			json.Unmarshal(raw, &e)
			if e.ActorIP != "127.0.0.1" || !e.ActorVerified {
				t.Fatalf("summary %s: want 127.0.0.1, verified", raw)
			}
			total += e.Data.Count
			if e.Data.Attrs["folded"] == "true" {
				folded += e.Data.Count
			}
		}
		if total >= want || time.Now().After(deadline) {
			return total, folded
		}
		time.Sleep(100 * time.Millisecond)
	}
}
