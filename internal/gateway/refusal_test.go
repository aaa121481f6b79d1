package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/controltest"
)

// TestUpstreamRefusalsReachClientsAsTheGatewaysOwn is issue 10, item 14: the
// 403 bodies that Rampart in a service writes ("spiffe://…/svc/gateway may
// not call POST /users") reached external clients through the gateway,
// telling them the mesh's identities, routes and policy. The gateway now
// answers such a refusal (marked by rampart.RefusalHeader) with its own
// neutral body, same status, its request id, and keeps the service's answer
// in its event; the service's own error responses pass unchanged.
func TestUpstreamRefusalsReachClientsAsTheGatewaysOwn(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, `
services:
  users:
    allow:
      - callers: [gateway]
        methods: [GET]
`)
	var users *upstream
	users = startUpstream(t, cp, "users", func(mux *http.ServeMux) {
		mux.HandleFunc("GET /search", func(w http.ResponseWriter, r *http.Request) {
			// What a guard does when a sink receives an injection: the
			// SDK answers 403 for the handler.
			err := users.agent.Report(r.Context(), rampart.Finding{Kind: "sql_injection", Sink: "test",
				Input: rampart.Input{Source: rampart.SourceQuery, Name: "q", Value: r.URL.Query().Get("q")}})
			if err != nil {
				http.Error(w, "database error: "+err.Error(), http.StatusInternalServerError)
			}
		})
		mux.HandleFunc("GET /orders/7", func(w http.ResponseWriter, r *http.Request) {
			// The application's own refusal, in the same JSON shape.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"order 7 belongs to another customer","request_id":"app-1"}`+"\n")
		})
	})
	gw := serveGateway(t, cp, "routes:\n  - {name: users, path_prefix: /, upstream: "+users.url+", service: users}\n", time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	do := func(method, path string) (*http.Response, string) {
		t.Helper()
		var b io.Reader
		if method == "POST" {
			b = strings.NewReader(`{"name":"eve"}`)
		}
		req, _ := http.NewRequest(method, gw.url+path, b)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp, string(data)
	}

	for _, c := range []struct {
		name, method, path string
		kind, detail       string // of the refusal in the service, and what its answer said
	}{
		{"a call the policy does not allow", "POST", "/users", "authz_denied", "spiffe://example.org/svc/gateway may not call POST /users"},
		{"a call a guard blocked", "GET", "/search?q=lamp", "sql_injection", "request blocked by Rampart"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(c.method, c.path)
			var e struct {
				Error     string `json:"error"`
				RequestID string `json:"request_id"`
			}
			if resp.StatusCode != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil {
				t.Fatalf("%s %s", resp.Status, body)
			}
			if e.Error != "request refused by a security policy" || len(e.RequestID) != 32 || resp.Header.Get("X-Request-Id") != e.RequestID {
				t.Errorf("body %q, X-Request-Id %q: want the gateway's neutral refusal with its request id", body, resp.Header.Get("X-Request-Id"))
			}
			if strings.Contains(body, "spiffe") || strings.Contains(body, "Rampart") {
				t.Errorf("the service's refusal reached the client: %q", body)
			}
			if v, ok := resp.Header[rampart.RefusalHeader]; ok {
				t.Errorf("%s reached the client: %q", rampart.RefusalHeader, v)
			}
			// The gateway's event for the request keeps the service's answer.
			deadline := time.Now().Add(time.Minute)
			for {
				var found bool
				for _, raw := range cp.Events(t, "kind=upstream_refused&service=gateway") {
					var stored struct{ Data rampart.Event }
					json.Unmarshal(raw, &stored)
					if ev := stored.Data; ev.RequestID == e.RequestID {
						found = true
						if ev.Action != rampart.ActionBlocked || ev.Route != "users" || !strings.Contains(ev.Reason, c.kind) ||
							!strings.Contains(ev.Detail, c.detail) || ev.Method != c.method || ev.ActorIP != "127.0.0.1" {
							t.Errorf("event %+v", ev)
						}
					}
				}
				if found {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no upstream_refused event for request %s after a minute", e.RequestID)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}

	t.Run("the application's own 403 passes unchanged", func(t *testing.T) {
		resp, body := do("GET", "/orders/7")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "order 7 belongs to another customer") {
			t.Errorf("%s %q", resp.Status, body)
		}
	})
	t.Run("an allowed call passes", func(t *testing.T) {
		if resp, body := do("GET", "/users/me"); resp.StatusCode != http.StatusOK {
			t.Errorf("%s %q", resp.Status, body)
		}
	})
}
