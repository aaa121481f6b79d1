package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
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
	const n = 100 // over 2 windows, one holds more keys than a client may
	for i := range n {
		req, _ := http.NewRequest(fmt.Sprintf("M%03d", i), gw.url+"/users/a", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		total, folded := 0, 0
		for _, raw := range cp.Events(t, "kind=request_summary&service=gateway") {
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
		if total == n {
			if folded == 0 {
				t.Fatal("no request folded: one client held a key per method")
			}
			return
		}
		if total > n || time.Now().After(deadline) {
			t.Fatalf("summaries count %d requests, want %d", total, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
