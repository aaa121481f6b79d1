package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/internal/controltest"
)

// TestTheGatewayStopsCallingARevokedUpstream proxies to two upstreams over
// kept-alive mTLS connections, revokes one through the control plane's API,
// and checks that the gateway stops reaching it — its pooled connection
// closed, new handshakes refused — while the other is unaffected.
func TestTheGatewayStopsCallingARevokedUpstream(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, `
services:
  shop:
    allow:
      - callers: [gateway]
  catalog:
    allow:
      - callers: [gateway]
`)
	shop := startUpstream(t, cp, "shop", nil)
	catalog := startUpstream(t, cp, "catalog", nil)
	gw := serveGateway(t, cp, fmt.Sprintf(`routes:
  - name: shop
    path_prefix: /shop/
    upstream: %s
    service: shop
  - name: catalog
    path_prefix: /catalog/
    upstream: %s
    service: catalog
`, shop.url, catalog.url), time.Second, true)
	c := &http.Client{Timeout: time.Minute}
	status := func(path string) int {
		resp, err := c.Get(gw.url + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/shop/a", "/catalog/a"} {
		if s := status(p); s != http.StatusOK {
			t.Fatalf("before the revocation, %s: %d", p, s)
		}
	}
	cp.MustDo(t, http.MethodPost, "/v1/services/shop/revoke", nil, http.StatusOK, nil)
	// The gateway keeps its connection to shop alive: only closing it,
	// and refusing a new handshake, turns the next call into a 502.
	deadline := time.Now().Add(time.Minute)
	for status("/shop/a") != http.StatusBadGateway {
		if time.Now().After(deadline) {
			t.Fatal("the gateway still reaches shop a minute after shop was revoked")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := status("/catalog/a"); s != http.StatusOK {
		t.Errorf("catalog, not revoked: %d", s)
	}
	cp.MustDo(t, http.MethodPost, "/v1/services/shop/reinstate", nil, http.StatusOK, nil)
	deadline = time.Now().Add(time.Minute)
	for status("/shop/a") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the gateway does not reach shop a minute after it was reinstated")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTheGatewayNamesTheReachableServicesInTheActorToken checks the
// audience of the token the gateway mints for shop: shop, and billing,
// which the policy lets shop call; not catalog, which shop cannot reach.
func TestTheGatewayNamesTheReachableServicesInTheActorToken(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, `
services:
  shop:
    allow:
      - callers: [gateway]
  billing:
    allow:
      - callers: [shop]
  catalog:
    allow:
      - callers: [billing-admin]
`)
	shop := startUpstream(t, cp, "shop", func(mux *http.ServeMux) {
		mux.HandleFunc("/audience", func(w http.ResponseWriter, r *http.Request) {
			a, _ := actor.FromContext(r.Context())
			fmt.Fprint(w, strings.Join(a.Audience, " "))
		})
	})
	gw := serveGateway(t, cp, fmt.Sprintf("routes:\n  - name: shop\n    path_prefix: /\n    upstream: %s\n    service: shop\n", shop.url), time.Second, true)
	resp, err := http.Get(gw.url + "/audience")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := "spiffe://example.org/svc/billing spiffe://example.org/svc/shop"; resp.StatusCode != 200 || string(body) != want {
		t.Errorf("audience at shop: %d %q, want %q", resp.StatusCode, body, want)
	}
}
