package control_test

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

const graphPolicy = `
services:
  shop:
    allow:
      - callers: [gateway]
        methods: [GET]
        paths: ["/items/{id}"]
    sensitive:
      - methods: [DELETE]
        paths: ["/items/{id}"]
  stock:
    allow:
      - callers: [shop]
        methods: [GET, POST]
        paths: ["/stock/{id}"]
      - callers: ["*"]
        paths: ["/healthz"]
  ledger:
    allow:
      - callers: [batch]
`

func TestServiceGraphJoinsPolicyCallsAndPeers(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t testing.TB) store.Store) {
		e := newStoreEnv(t, open(t), time.Time{})
		if r := e.putPolicy(t, "", graphPolicy); r.status != http.StatusCreated {
			t.Fatalf("policy: %d %s", r.status, r.body)
		}
		for _, hb := range []control.Heartbeat{
			{Service: "shop", ID: "s1", Exposed: true, Version: "1.0", GoVersion: "go1.26.0",
				Modules: []store.Module{{Path: "example.com/db", Version: "v1.2.0"}},
				Peers:   []string{"spiffe://rampart.test/svc/stock", "spiffe://elsewhere.org/svc/ledger", "api.example.com:443"},
				Callers: []string{"gateway GET /items/{id}"}},
			{Service: "shop", ID: "s2", Version: "1.1", GoVersion: "go1.26.0",
				Modules: []store.Module{{Path: "example.com/db", Version: "v1.3.0"}, {Path: "example.com/log", Version: "v0.1.0"}}},
			{Service: "stock", ID: "k1", Callers: []string{"shop GET /stock/{id}", "reports GET /stock/{id}"}},
		} {
			if r := e.do(t, "POST", "/v1/heartbeat", hb); r.status != http.StatusNoContent {
				t.Fatalf("heartbeat: %d %s", r.status, r.body)
			}
		}
		now := time.Now().UTC()
		var evs []store.Event
		for i := range 7 {
			kind := "sql_injection"
			if i%2 == 1 {
				kind = "ssrf"
			}
			evs = append(evs, store.Event{ID: fmt.Sprintf("g-%d", i), Time: now.Add(-time.Minute), Kind: kind, Action: "blocked", Service: "shop"})
		}
		evs = append(evs, store.Event{ID: "g-waf", Time: now.Add(-time.Minute), Kind: "waf", Action: "blocked", Service: "gateway"},
			store.Event{ID: "g-old", Time: now.Add(-48 * time.Hour), Kind: "waf", Action: "blocked", Service: "gateway"},
			store.Event{ID: "g-obs", Time: now.Add(-time.Minute), Kind: "request_summary", Action: "observed", Service: "stock"})
		e.postAll(t, evs)

		g := decode[control.Graph](t, e.do(t, "GET", "/v1/graph?range=24h", nil), http.StatusOK)
		nodes := map[string]control.GraphNode{}
		var names []string
		for _, n := range g.Nodes {
			nodes[n.ID] = n
			names = append(names, n.ID)
		}
		if want := []string{"batch", "gateway", "ledger", "reports", "shop", "stock"}; !slices.Equal(names, want) {
			t.Errorf("nodes %v, want %v", names, want)
		}
		shop := nodes["shop"]
		if shop.Kind != control.NodeService || !shop.Exposed || !shop.EdgeReachable || shop.Instances != 2 || shop.LiveInstances != 2 ||
			shop.Attacks != 7 || !maps.Equal(shop.AttacksByKind, map[string]int64{"sql_injection": 4, "ssrf": 3}) ||
			!slices.Equal(shop.SensitiveRoutes, []string{"DELETE /items/{id}"}) {
			t.Errorf("shop: %+v", shop)
		}
		if gw := nodes["gateway"]; gw.Kind != control.NodeEdge || gw.Attacks != 1 || gw.EdgeReachable {
			t.Errorf("gateway: %+v, want the edge with the one attack of the day", gw)
		}
		if st := nodes["stock"]; !st.EdgeReachable || st.Exposed || st.Attacks != 0 || !slices.Equal(st.AnyCaller, []string{"* /healthz"}) {
			t.Errorf("stock: %+v, want reachable through shop, open to any caller on /healthz, no attack", st)
		}
		if l := nodes["ledger"]; l.EdgeReachable {
			t.Errorf("ledger: %+v, only batch calls it", l)
		}
		type edge struct {
			from, to         string
			policy, observed bool
			sources          string
			routes           string
		}
		var got []edge
		for _, e := range g.Edges {
			got = append(got, edge{e.From, e.To, e.Policy, e.Observed, fmt.Sprint(e.Sources), fmt.Sprint(e.Routes)})
		}
		want := []edge{
			{"batch", "ledger", true, false, "[policy]", "[* /*]"},
			{"gateway", "shop", true, true, "[calls policy]", "[GET /items/{id}]"},
			{"reports", "stock", false, true, "[calls]", "[GET /stock/{id}]"},
			{"shop", "stock", true, true, "[calls peers policy]", "[GET /stock/{id} POST /stock/{id}]"},
		}
		if !slices.Equal(got, want) {
			t.Errorf("edges\n%v\nwant\n%v\n(the peer of another trust domain and the host are no edge)", got, want)
		}
		if g.PolicyVersion != 1 {
			t.Errorf("policy version %d", g.PolicyVersion)
		}

		inv := decode[control.ServiceInventory](t, e.do(t, "GET", "/v1/services/shop", nil), http.StatusOK)
		if len(inv.Instances) != 2 || !slices.Equal(inv.Versions, []string{"1.0", "1.1"}) || !slices.Equal(inv.GoVersions, []string{"go1.26.0"}) ||
			!slices.Equal(inv.Callers, []string{"gateway"}) || !slices.Equal(inv.Callees, []string{"stock"}) ||
			!slices.Equal(inv.Calls, []string{"gateway GET /items/{id}"}) || !inv.EdgeReachable || inv.AttacksByKind["ssrf"] != 3 {
			t.Errorf("shop's inventory: %+v", inv)
		}
		if want := []control.ModuleVersions{{Path: "example.com/db", Versions: []string{"v1.2.0", "v1.3.0"}}, {Path: "example.com/log", Versions: []string{"v0.1.0"}}}; fmt.Sprint(inv.Modules) != fmt.Sprint(want) {
			t.Errorf("modules %v, want %v", inv.Modules, want)
		}
		wantError(t, e.do(t, "GET", "/v1/services/nobody", nil), http.StatusNotFound, "not_found")
		wantError(t, e.do(t, "GET", "/v1/services/"+url.PathEscape("no body"), nil), http.StatusBadRequest, "invalid")
		wantError(t, e.do(t, "GET", "/v1/graph?range=forever", nil), http.StatusBadRequest, "invalid")
	})
}
