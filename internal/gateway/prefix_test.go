package gateway_test

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPrefixesMatchOnPathSegments is issue 10, item 10: a WAF exclusion
// for /products also applied to /productsXYZ, and a route's prefix caught
// paths that merely begin with the same letters (a route /public with auth
// off took /publicity away from the route that requires it). Both match on
// path-segment boundaries now; the CRS here is the real one.
func TestPrefixesMatchOnPathSegments(t *testing.T) {
	p := newProxyEnv(t)
	key := "k-" + strings.Repeat("9", 40)
	gw := serveGateway(t, p.cp, fmt.Sprintf("auth:\n  api_keys: [{name: ops, sha256: %x}]\nroutes:\n%s%s",
		sha256.Sum256([]byte(key)),
		p.route("shop", "/", "    auth: required\n    waf_exclusions: [{path_prefix: /products, rule_ids: [942100]}]\n"),
		p.route("public", "/public", "    auth: off\n")), time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	get := func(path string, withKey bool) int {
		t.Helper()
		req, _ := http.NewRequest("GET", gw.url+path, nil)
		if withKey {
			req.Header.Set("X-Api-Key", key)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Only 942100 (libinjection) catches this one, so the exclusion decides.
	const q = "?text=1%27+or+%271%27%3D%271"
	if status := get("/api/items"+q, true); status != http.StatusForbidden {
		t.Fatalf("the payload outside the exclusion: %d, want 403 (the CRS must catch it for this test to mean anything)", status)
	}
	for path, want := range map[string]int{
		"/products" + q:           200,
		"/products/1" + q:         200,
		"/products/1/reviews" + q: 200,
		"/productsXYZ" + q:        403,
		"/products-admin/1" + q:   403,
	} {
		if status := get(path, true); status != want {
			t.Errorf("%s with the exclusion for /products: %d, want %d", path, status, want)
		}
	}
	for path, want := range map[string]int{
		"/public":         200,
		"/public/":        200,
		"/public/page":    200,
		"/publicity":      401,
		"/public-admin/x": 401,
	} {
		if status := get(path, false); status != want {
			t.Errorf("%s without credentials (route /public has auth off, / requires it): %d, want %d", path, status, want)
		}
	}
}
