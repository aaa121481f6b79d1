package gateway_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/controltest"
)

// servletPath is the path as a Java servlet container (Tomcat, Jetty, and
// Spring on them) routes it, and as IIS does: ";" parameters dropped from
// each segment, "\" read as "/", trailing dots of a segment dropped (and
// then, as both do, empty segments collapsed).
func servletPath(p string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if k := strings.IndexByte(s, ';'); k >= 0 {
			s = s[:k]
		}
		if s != "." && s != ".." {
			s = strings.TrimRight(s, ".")
		}
		segs[i] = s
	}
	return strings.Join(segs, "/")
}

// TestRoutesAgreeWithServersThatReadPathsDifferently: since routes match on
// segment boundaries (issue 10, item 10), "/api/admin;x/users" no longer
// falls under the route /api/admin (auth required) but under / (auth off),
// as do "/api/admin\users" and "/api/admin./users". A servlet container or
// IIS behind the gateway serves all three as /api/admin/users: the admin
// API was reached without credentials (before item 10, the plain prefix
// match took them to the admin route). A path that such servers would route
// to another route than the gateway chooses is now refused with 400.
func TestRoutesAgreeWithServersThatReadPathsDifferently(t *testing.T) {
	p := newProxyEnv(t)
	key := "k-" + strings.Repeat("8", 40)
	gw := serveGateway(t, p.cp, fmt.Sprintf("auth:\n  api_keys: [{name: ops, sha256: %x}]\nroutes:\n%s%s",
		sha256.Sum256([]byte(key)),
		p.route("public", "/", "    auth: off\n"),
		p.route("admin", "/api/admin", "    auth: required\n")), time.Second, true)

	// The status line of the gateway's answer; 200 means that the shop's
	// echo handler served the path.
	send := func(target string) string {
		t.Helper()
		resp := rawRequest(t, gw.addr, "GET "+target+" HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
		return strings.TrimPrefix(resp, "HTTP/1.1 ")
	}
	for _, target := range []string{"/api/admin/users", "/api/admin;jsessionid=1/users", `/api/admin\users`,
		"/api/admin./users", "/api/admin;/users", "/api/;x/admin/users"} {
		if got := strings.ReplaceAll(servletPath(target), "//", "/"); got != "/api/admin/users" {
			t.Fatalf("servletPath(%q) = %q: the test's model of the upstream is wrong", target, got)
		}
		if status := send(target); strings.HasPrefix(status, "200") {
			t.Errorf("GET %s without credentials: %s; a servlet container serves it as /api/admin/users, which requires them", target, status)
		}
	}
	// Paths that every server routes alike pass as before.
	for target, want := range map[string]string{
		"/api/items;v=1":       "200",
		"/static/app.js":       "200",
		"/api/administrators":  "200",
		"/api/admin/users":     "401",
		"/api/admin;x/users/1": "400",
	} {
		if status := send(target); !strings.HasPrefix(status, want) {
			t.Errorf("GET %s: %s, want %s", target, status, want)
		}
	}
}

// TestSensitiveRoutesAsServletContainersReadThem: a block-sensitive
// decision refuses an actor the sensitive routes only (here POST
// /api/checkout). "/api/checkout;jsessionid=1" is not that route to the
// policy, but is /api/checkout to a servlet container, and the same goes
// for "\" and trailing dots on IIS: the decision let the actor check out.
// Such a path is sensitive when its servlet reading is.
func TestSensitiveRoutesAsServletContainersReadThem(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, policyYAML)
	shop := startUpstream(t, cp, "shop", nil)
	gw := serveGateway(t, cp, "routes:\n  - {name: shop, path_prefix: /, upstream: "+shop.url+", service: shop}\n", time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	var lastBody string
	post := func(path string) int {
		t.Helper()
		resp, err := client.Post(gw.url+path, "application/json", strings.NewReader(`{"cart":1}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		lastBody = string(b)
		return resp.StatusCode
	}
	cp.AddDecision(t, controltest.Decision{Scope: "ip", Value: "127.0.0.1", Action: "block-sensitive"})
	waitGatewayEnforces(t, func() (int, string) { return post("/api/checkout"), lastBody })
	for _, path := range []string{"/api/checkout;jsessionid=1", "/api/checkout.", "/api/checkout;"} {
		if status := post(path); status != http.StatusForbidden {
			t.Errorf("POST %s under block-sensitive: %d, want 403 (a servlet container serves /api/checkout)", path, status)
		}
	}
	if status := post("/api/cart;v=2"); status != http.StatusOK {
		t.Errorf("POST /api/cart;v=2, not sensitive however read: %d, want 200", status)
	}
}

// TestRoutesAgreeWithCaseInsensitiveServers: IIS, and ASP.NET and Spring
// when configured so, route paths without regard to case: "/API/admin/users"
// is /api/admin/users to them, while the gateway took it to the route /
// (auth off) since prefixes match with case. Such a path is refused, and a
// block-sensitive decision covers "/API/Checkout" as it covers
// "/api/checkout".
func TestRoutesAgreeWithCaseInsensitiveServers(t *testing.T) {
	p := newProxyEnv(t)
	p.cp.ApplyPolicy(t, policyYAML)
	key := "k-" + strings.Repeat("7", 40)
	gw := serveGateway(t, p.cp, fmt.Sprintf("auth:\n  api_keys: [{name: ops, sha256: %x}]\nroutes:\n%s%s",
		sha256.Sum256([]byte(key)),
		p.route("public", "/", "    auth: off\n"),
		p.route("admin", "/api/admin", "    auth: required\n")), time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	var lastBody string
	do := func(method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, gw.url+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		lastBody = string(b)
		return resp.StatusCode
	}
	for path, want := range map[string]int{
		"/api/admin/users":    401,
		"/API/admin/users":    400,
		"/api/Admin/users":    400,
		"/API/ADMIN":          400,
		"/Products/42":        200, // the same route however it is read
		"/api/Administrators": 200,
	} {
		if status := do("GET", path); status != want {
			t.Errorf("GET %s without credentials: %d, want %d", path, status, want)
		}
	}
	p.cp.AddDecision(t, controltest.Decision{Scope: "ip", Value: "127.0.0.1", Action: "block-sensitive"})
	waitGatewayEnforces(t, func() (int, string) { return do("POST", "/api/checkout"), lastBody })
	for _, path := range []string{"/API/checkout", "/api/Checkout;x"} {
		if status := do("POST", path); status != http.StatusForbidden {
			t.Errorf("POST %s under block-sensitive: %d, want 403", path, status)
		}
	}
}

// waitGatewayEnforces polls post until the gateway itself refuses it under
// the decision. The upstream service follows the same watch and may refuse
// first (its refusal reaches the client as the gateway's neutral "security
// policy" answer); only the gateway's own "security decision" refusal shows
// that the gateway holds the decision, so that what the test asks next is
// the gateway's answer and not a race between the two.
func waitGatewayEnforces(t *testing.T, post func() (int, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		status, body := post()
		if status == http.StatusForbidden && strings.Contains(body, "security decision") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not enforce the block-sensitive decision on POST /api/checkout after a minute: %d %s", status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
