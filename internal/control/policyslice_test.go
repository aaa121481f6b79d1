package control_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store"
)

const meshPolicy = `# payments trusts only orders; the refund route is sensitive
edge: [front]
services:
  orders:
    allow:
      - callers: [web, front]
        methods: [GET]
        paths: ["/orders/{id}"]
      - callers: [front]
        methods: [GET]
        paths: ["/orders/{id}/status"]
        actor: optional
    sensitive:
      - methods: [DELETE]
        paths: ["/orders/{id}"]
  payments:
    allow:
      - callers: [orders]
        paths: ["/charge"]
    sensitive:
      - paths: ["/refunds/{id...}"]
`

func TestAServiceReadsOnlyItsSliceOfThePolicyAndTheDecisionsItEnforces(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, meshPolicy)
	block := cp.AddDecision(t, controltest.Decision{Scope: "user", Value: "mallory", Action: "block", Reason: "stolen session"})
	sensitive := cp.AddDecision(t, controltest.Decision{Scope: "ip", Value: "198.51.100.7", Action: "block-sensitive"})
	var limited store.Decision
	cp.MustDo(t, http.MethodPost, "/v1/decisions", control.DecisionRequest{
		Scope: store.ScopeIP, Value: "203.0.113.9", Action: store.ActionRateLimit, RateLimit: 10, Reason: "scraper",
	}, http.StatusCreated, &limited)

	get := func(t *testing.T, c *http.Client, path string, want int, out any) {
		t.Helper()
		status, _, body, err := call(t.Context(), c, http.MethodGet, cp.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if status != want {
			t.Fatalf("GET %s: %d %s, want %d", path, status, body, want)
		}
		if out != nil {
			if err := json.Unmarshal(body, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	whole, err := policy.Parse(meshPolicy)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		service string
		others  []string // what it must not see
	}{
		{"orders", []string{"payments", "/charge", "/refunds", "trusts"}},
		{"payments", []string{"web", "/orders/{id}", "DELETE", "trusts"}},
		{"search", []string{"orders", "payments", "/charge", "web"}}, // named nowhere
	} {
		t.Run(c.service, func(t *testing.T) {
			client := cp.Join(t, c.service).ControlPlaneClient()
			t.Cleanup(client.CloseIdleConnections)
			for _, path := range []string{"/v1/policy", "/v1/policy?version=1"} {
				var p control.PolicyView
				get(t, client, path, http.StatusOK, &p)
				if p.SliceFor != c.service || p.Version != 1 {
					t.Errorf("GET %s: slice_for %q version %d, want %q and 1", path, p.SliceFor, p.Version, c.service)
				}
				for _, other := range c.others {
					if strings.Contains(p.YAML, other) {
						t.Errorf("GET %s as %s shows %q:\n%s", path, c.service, other, p.YAML)
					}
				}
				got, err := policy.Parse(p.YAML)
				if err != nil {
					t.Fatalf("the slice does not parse: %v\n%s", err, p.YAML)
				}
				if _, named := whole.Services[c.service]; named && len(got.Services) != 1 ||
					!named && len(got.Services) != 0 {
					t.Errorf("the slice for %s names %d services:\n%s", c.service, len(got.Services), p.YAML)
				}
				// What the agent compiles from its slice decides as the whole would.
				for _, req := range [][3]string{
					{"web", "GET", "/orders/1"}, {"orders", "POST", "/charge"}, {"web", "POST", "/charge"}, {"orders", "GET", "/orders/1"},
				} {
					if g, w := got.Compile(c.service).Allow(req[0], req[1], req[2]), whole.Compile(c.service).Allow(req[0], req[1], req[2]); g != w {
						t.Errorf("%s's slice decides %v for %v, the whole policy %v", c.service, g, req, w)
					}
				}
				// And requires an actor where the whole would: that depends
				// on edge: and on each rule's actor:.
				for _, route := range [][2]string{
					{"GET", "/orders/1"}, {"GET", "/orders/1/status"}, {"DELETE", "/orders/1"}, {"POST", "/charge"}, {"GET", "/refunds/9"},
				} {
					if g, w := got.Compile(c.service).ActorRequired(route[0], route[1]), whole.Compile(c.service).ActorRequired(route[0], route[1]); g != w {
						t.Errorf("%s's slice requires an actor on %v: %v, the whole policy: %v\n%s", c.service, route, g, w, p.YAML)
					}
				}
			}
			var ds control.DecisionList
			get(t, client, "/v1/decisions", http.StatusOK, &ds)
			var ids []string
			for _, d := range ds.Decisions {
				ids = append(ids, d.ID)
			}
			if len(ids) != 2 || ids[0] != block || ids[1] != sensitive {
				t.Errorf("%s reads decisions %v, want the ones it enforces: %s (block) and %s (block-sensitive), not the rate limit %s",
					c.service, ids, block, sensitive, limited.ID)
			}
			get(t, client, "/v1/decisions/"+limited.ID, http.StatusNotFound, nil)
			get(t, client, "/v1/decisions/"+block, http.StatusOK, nil)
		})
	}
	t.Run("the gateway reads everything", func(t *testing.T) {
		gw := cp.Join(t, control.DefaultGatewayService).ControlPlaneClient()
		t.Cleanup(gw.CloseIdleConnections)
		var p control.PolicyView
		get(t, gw, "/v1/policy", http.StatusOK, &p)
		if p.YAML != meshPolicy || p.SliceFor != "" {
			t.Errorf("the gateway reads %q (slice for %q), want the whole document", p.YAML, p.SliceFor)
		}
		var ds control.DecisionList
		get(t, gw, "/v1/decisions", http.StatusOK, &ds)
		if len(ds.Decisions) != 3 {
			t.Errorf("the gateway reads %d decisions, want all 3", len(ds.Decisions))
		}
	})
}
