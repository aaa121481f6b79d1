package control_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

const dryRunBase = `services:
  shop:
    allow:
      - callers: [gateway]
        methods: [GET]
        paths: ["/items/{id}"]
  stock:
    allow:
      - callers: [shop]
        methods: [GET]
        paths: ["/stock/{id}"]
`

// The proposal lets reports read stock, and takes it from shop.
const dryRunProposal = `services:
  shop:
    allow:
      - callers: [gateway]
        methods: [GET]
        paths: ["/items/{id}"]
  stock:
    allow:
      - callers: [reports]
        methods: [GET]
        paths: ["/stock/{id}"]
`

func TestPolicyHistoryDiffAndDryRun(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t testing.TB) store.Store) {
		e := newStoreEnv(t, open(t), time.Time{})
		wantError(t, e.do(t, "GET", "/v1/policy/diff", nil), http.StatusNotFound, "not_found")
		for _, doc := range []string{"services: {}\n", dryRunBase} {
			if r := e.putPolicy(t, "", doc); r.status != http.StatusCreated {
				t.Fatalf("policy: %d %s", r.status, r.body)
			}
		}
		list := decode[control.PolicyVersionList](t, e.do(t, "GET", "/v1/policy/versions", nil), http.StatusOK)
		if len(list.Versions) != 2 || list.Versions[0].Version != 2 || list.Versions[0].Size != len(dryRunBase) || list.NextBefore != 0 {
			t.Errorf("versions %+v", list)
		}
		list = decode[control.PolicyVersionList](t, e.do(t, "GET", "/v1/policy/versions?limit=1", nil), http.StatusOK)
		if len(list.Versions) != 1 || list.NextBefore != 2 {
			t.Errorf("first page %+v, want version 2 and next_before 2", list)
		}
		d := decode[control.PolicyDiff](t, e.do(t, "GET", "/v1/policy/diff", nil), http.StatusOK)
		if d.From != 1 || d.To != 2 || d.Removed != 1 || d.Added != 11 || !strings.HasPrefix(d.Unified, "--- v1\n+++ v2\n@@ -1,1 +1,11 @@\n-services: {}\n+services:\n") {
			t.Errorf("diff %+v", d)
		}
		if d := decode[control.PolicyDiff](t, e.do(t, "GET", "/v1/policy/diff?from=2&to=2", nil), http.StatusOK); d.Unified != "" {
			t.Errorf("diff of a version with itself: %+v", d)
		}
		wantError(t, e.do(t, "GET", "/v1/policy/diff?from=9", nil), http.StatusNotFound, "not_found")
		wantError(t, e.do(t, "GET", "/v1/policy/diff?from=x", nil), http.StatusBadRequest, "invalid")

		now := time.Now().UTC()
		denied := func(id, caller, service, method, path string, ago time.Duration) store.Event {
			data, _ := json.Marshal(map[string]string{"caller": "spiffe://rampart.test/svc/" + caller, "method": method, "path": path})
			return store.Event{ID: id, Time: now.Add(-ago), Kind: "authz_denied", Action: "blocked", Service: service, Data: data}
		}
		e.postAll(t, []store.Event{
			denied("d1", "reports", "stock", "GET", "/stock/7", time.Minute),
			denied("d2", "reports", "stock", "GET", "/stock/7", 2*time.Minute),
			denied("d3", "reports", "stock", "GET", "/stock/7", 3*time.Minute),
			denied("d4", "reports", "stock", "DELETE", "/stock/7", time.Minute),              // still denied
			denied("d5", "batch", "ledger", "POST", "/ledger", time.Minute),                  // still denied
			denied("d6", "reports", "stock", "GET", "/stock/8", 48*time.Hour),                // before the window
			{ID: "d7", Time: now, Kind: "authz_denied", Action: "blocked", Service: "stock"}, // no caller: not evaluated
		})
		for _, hb := range []control.Heartbeat{
			{Service: "stock", ID: "k1", Callers: []string{"shop GET /stock/{id}"}},
			{Service: "shop", ID: "s1", Callers: []string{"gateway GET /items/{id}"}},
		} {
			if r := e.do(t, "POST", "/v1/heartbeat", hb); r.status != http.StatusNoContent {
				t.Fatal(r.status)
			}
		}
		r := e.doWith(t, "POST", "/v1/policy/dryrun?range=24h", dryRunProposal, "Bearer "+e.admin, "application/yaml")
		run := decode[control.DryRun](t, r, http.StatusOK)
		if run.BaseVersion != 2 || run.Observed.Denied != 3 || run.Observed.Allowed != 2 || run.Truncated {
			t.Errorf("dry run %+v, want base 2, 3 distinct denied calls and 2 served", run)
		}
		var got []string
		for _, c := range run.Changes {
			got = append(got, fmt.Sprintf("%s→%s %s %s %s→%s n=%d %s", c.Caller, c.Service, c.Method, c.Path, c.Before, c.After, c.Count, c.Source))
		}
		want := []string{
			"reports→stock GET /stock/7 denied→allowed n=3 authz_denied",
			"shop→stock GET /stock/x allowed→denied n=0 calls",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("changes\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// The current policy is left as it was.
		if p := decode[store.Policy](t, e.do(t, "GET", "/v1/policy", nil), http.StatusOK); p.Version != 2 {
			t.Errorf("a dry run stored version %d", p.Version)
		}
		eb := wantError(t, e.doWith(t, "POST", "/v1/policy/dryrun", "services:\n  a:\n    allow:\n      - callers: [b]\n        methods: [FETCH]\n",
			"Bearer "+e.admin, "application/yaml"), http.StatusBadRequest, "invalid_policy")
		if eb.Line != 5 {
			t.Errorf("invalid proposal: %+v, want line 5", eb)
		}
		wantError(t, e.doWith(t, "POST", "/v1/policy/dryrun", dryRunProposal, "Bearer "+e.admin, "application/json"), http.StatusUnsupportedMediaType, "unsupported_media_type")
		wantError(t, e.doWith(t, "POST", "/v1/policy/dryrun", dryRunProposal, "", "application/yaml"), http.StatusUnauthorized, "unauthorized")
	})
}
