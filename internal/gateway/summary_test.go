package gateway_test

import (
	"encoding/json"
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
	client := &http.Client{Timeout: 10 * time.Second}
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
