package policy_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/policy/policytest"
)

const ordersPolicy = `
services:
  orders:
    allow:
      - callers: [web, checkout]
        methods: [GET]
        paths: ["/orders/{id}", "/catalog/"]
      - callers: [checkout]
        methods: [POST]
        paths: ["/orders/{id}/pay"]
      - callers: ["*"]
        paths: ["/healthz", "/{$}"]
      - callers: [admin]
        methods: [DELETE]
        paths: ["/orders/{id}"]
      - callers: [backup]
        methods: [GET]
        paths: ["/files/{path...}"]
      - callers: [ops]                  # every method, every path
      - callers: [web]
        methods: [PUT]
        paths: ["/a%20b/{x}", "/carts/{id}/{$}", "/unclean//x"]
    sensitive:
      - methods: [DELETE]
        paths: ["/orders/{id}"]
      - paths: ["/admin/"]
      - methods: [GET]
        paths: ["/exports/{id}"]
  web:
`

func compile(t testing.TB, doc, self string) *policy.Authorizer {
	t.Helper()
	p, err := policy.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	return p.Compile(self)
}

func TestAllow(t *testing.T) {
	a := compile(t, ordersPolicy, "orders")
	for _, tc := range []struct {
		name                 string
		caller, method, path string
		want                 bool
	}{
		{"a named caller calls its route", "web", "GET", "/orders/42", true},
		{"a second named caller calls the same route", "checkout", "GET", "/orders/42", true},
		{"GET allows HEAD, as in ServeMux", "web", "HEAD", "/orders/42", true},
		{"a named caller is refused another method", "web", "POST", "/orders/42", false},
		{"methods are case-sensitive, as in ServeMux", "web", "get", "/orders/42", false},
		{"an unnamed caller is refused", "billing", "GET", "/orders/42", false},
		{"{id} is one segment", "web", "GET", "/orders/42/items", false},
		{"{id} is not empty", "web", "GET", "/orders/", false},
		{"{id} does not match a trailing slash", "web", "GET", "/orders/42/", false},
		{"a prefix matches itself", "web", "GET", "/catalog/", true},
		{"a prefix matches below it", "web", "GET", "/catalog/shoes/42", true},
		{"a prefix does not match without its slash", "web", "GET", "/catalog", false},
		{"a rule for one caller", "checkout", "POST", "/orders/42/pay", true},
		{"is not for another", "web", "POST", "/orders/42/pay", false},
		{"* admits any service", "billing", "GET", "/healthz", true},
		{"* admits any service with any method", "billing", "PROPFIND", "/healthz", true},
		{"* admits named services too", "backup", "POST", "/healthz", true},
		{"{$} matches the root", "billing", "GET", "/", true},
		{"{$} matches only the root", "billing", "GET", "/x", false},
		{"* does not admit an empty caller", "", "GET", "/healthz", false},
		{"* does not admit the caller *", "*", "GET", "/healthz", false},
		{"* does not admit an invalid service name", "Web", "GET", "/healthz", false},
		{"a DELETE rule", "admin", "DELETE", "/orders/42", true},
		{"does not allow GET", "admin", "GET", "/orders/42", false},
		{"{path...} matches an empty rest", "backup", "GET", "/files/", true},
		{"{path...} matches a deep rest", "backup", "GET", "/files/a/b/c.txt", true},
		{"{path...} needs the slash", "backup", "GET", "/files", false},
		{"a rule without methods and paths allows everything", "ops", "PROPFIND", "/any/thing/", true},
		{"and the root", "ops", "GET", "/", true},
		{"literals are unescaped, as in ServeMux", "web", "PUT", "/a b/1", true},
		{"an escape in the path is a literal %", "web", "PUT", "/a%20b/1", false},
		{"{$} after a parameter", "web", "PUT", "/carts/7/", true},
		{"{$} needs the slash", "web", "PUT", "/carts/7", false},
		{"{$} is the end", "web", "PUT", "/carts/7/x", false},
		{"an unclean pattern never matches", "web", "PUT", "/unclean//x", false},
		{"nor its clean form", "web", "PUT", "/unclean/x", false},

		// Paths that are not clean are refused, even to a caller allowed everything.
		{"an empty path", "ops", "GET", "", false},
		{"a relative path", "ops", "GET", "healthz", false},
		{"an asterisk", "ops", "OPTIONS", "*", false},
		{"a double slash", "ops", "GET", "//", false},
		{"a double slash inside", "web", "GET", "/catalog//x", false},
		{"a dot segment", "billing", "GET", "/./healthz", false},
		{"a trailing dot", "billing", "GET", "/healthz/.", false},
		{"a dot-dot segment", "billing", "GET", "/x/../healthz", false},
		{"a dot-dot out of a prefix", "web", "GET", "/catalog/../admin/", false},
		{"a trailing dot-dot", "web", "GET", "/orders/42/..", false},
		{"dots that are not dot segments are fine", "web", "GET", "/orders/..42", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Allow(tc.caller, tc.method, tc.path); got != tc.want {
				t.Errorf("Allow(%q, %q, %q) = %v, want %v", tc.caller, tc.method, tc.path, got, tc.want)
			}
		})
	}
}

func TestSensitive(t *testing.T) {
	a := compile(t, ordersPolicy, "orders")
	for _, tc := range []struct {
		name         string
		method, path string
		want         bool
	}{
		{"a sensitive route", "DELETE", "/orders/42", true},
		{"another method on it", "GET", "/orders/42", false},
		{"a longer path", "DELETE", "/orders/42/x", false},
		{"a sensitive prefix", "GET", "/admin/", true},
		{"below it, any method", "POST", "/admin/users/7", true},
		{"the prefix without its slash", "GET", "/admin", false},
		{"GET covers HEAD", "HEAD", "/exports/1", true},
		{"an ordinary route", "GET", "/catalog/", false},
		{"a dot-dot path is sensitive", "GET", "/catalog/../x", true},
		{"a double slash is sensitive", "GET", "//admin/", true},
		{"an empty path is sensitive", "GET", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Sensitive(tc.method, tc.path); got != tc.want {
				t.Errorf("Sensitive(%q, %q) = %v, want %v", tc.method, tc.path, got, tc.want)
			}
		})
	}
}

func TestAServiceThePolicyDoesNotAllowAcceptsNoCall(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    *policy.Authorizer
	}{
		{"a service the policy does not name", compile(t, ordersPolicy, "nobody")},
		{"a service named without rules", compile(t, ordersPolicy, "web")},
		{"a nil policy", (*policy.Policy)(nil).Compile("orders")},
		{"a nil Authorizer", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, caller := range []string{"web", "ops", "orders"} {
				if tc.a.Allow(caller, "GET", "/") || tc.a.Allow(caller, "GET", "/healthz") {
					t.Errorf("%s accepts a call", caller)
				}
			}
			if tc.a.Sensitive("DELETE", "/orders/1") {
				t.Error("a route is sensitive")
			}
			if !tc.a.Sensitive("GET", "/a/../b") {
				t.Error("an unclean path is not sensitive")
			}
		})
	}
}

func TestWhatParseWouldRefuseMatchesNothing(t *testing.T) {
	p := &policy.Policy{Services: map[string]policy.ServicePolicy{"orders": {
		Allow: []policy.AllowRule{
			{Callers: []string{"web"}, Routes: policy.Routes{Methods: []string{"get"}}},
			{Callers: []string{"web"}, Routes: policy.Routes{Paths: []string{"orders", "/a/{x", "/{x...}/b"}}},
			{Routes: policy.Routes{Paths: []string{"/"}}}, // no callers
		},
		Sensitive: []policy.Routes{{Methods: []string{"Delete"}}},
	}}}
	a := p.Compile("orders")
	for _, m := range []string{"GET", "get", "PROPFIND"} {
		for _, path := range []string{"/", "/orders", "/a/{x", "/a/1", "/c/b"} {
			if a.Allow("web", m, path) {
				t.Errorf("%s %s is allowed", m, path)
			}
			if a.Sensitive(m, path) {
				t.Errorf("%s %s is sensitive", m, path)
			}
		}
	}
}

func TestCanonicalPath(t *testing.T) {
	for _, tc := range []struct {
		name, target, path string
		ok                 bool
	}{
		{"a plain path", "/orders/42", "/orders/42", true},
		{"escaped digits", "/orders/%34%32", "/orders/42", true},
		{"an escaped space", "/a%20b/1", "/a b/1", true},
		{"an escaped percent", "/a%252Fb", "/a%2Fb", true},
		{"a trailing slash", "/orders/42/", "/orders/42/", true},
		{"dots in the query", "/orders/42?next=/../admin", "/orders/42", true},
		{"the absolute form", "http://orders.internal/orders/42", "/orders/42", true},
		{"an encoded slash", "/orders%2F42", "/orders/42", false},
		{"an encoded slash in lower case", "/catalog%2f..%2fadmin", "/catalog/../admin", false},
		{"a trailing encoded slash", "/orders/42%2F", "/orders/42/", false},
		{"a leading double slash", "//orders/42", "//orders/42", false},
		{"a double slash", "/catalog//x", "/catalog//x", false},
		{"a dot segment", "/./orders/42", "/./orders/42", false},
		{"a dot-dot segment", "/x/../orders/42", "/x/../orders/42", false},
		{"an encoded dot-dot", "/catalog/%2e%2e/admin/", "/catalog/../admin/", false},
		{"an encoded dot", "/orders/%2E/42", "/orders/./42", false},
		{"a trailing dot", "/orders/42/.", "/orders/42/.", false},
		{"an asterisk", "*", "*", false},
		{"the absolute form without a path", "http://orders.internal", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + tc.target + " HTTP/1.1\r\nHost: orders.internal\r\n\r\n")))
			if err != nil {
				t.Fatal(err)
			}
			path, ok := policy.CanonicalPath(r.URL)
			if path != tc.path || ok != tc.ok {
				t.Errorf("CanonicalPath(%q) = %q, %v, want %q, %v", tc.target, path, ok, tc.path, tc.ok)
			}
		})
	}
}

// TestBypassSpellingsDoNotReachAnotherHandler puts an Authorizer in front of
// a ServeMux and sends it spellings of paths meant to make the two disagree:
// whatever handler runs must be one the policy allows the caller.
func TestBypassSpellingsDoNotReachAnotherHandler(t *testing.T) {
	const doc = `
services:
  shop:
    allow:
      - callers: [web]
        methods: [GET]
        paths: ["/t/public/b/c", "/catalog/", "/orders/export"]
`
	a := compile(t, doc, "shop")
	mux := http.NewServeMux()
	for _, pattern := range []string{"GET /t/public/b/c", "GET /t/{tenant}/c", "GET /catalog/", "GET /catalog/{x}/{y}",
		"GET /admin/", "GET /orders/export", "GET /orders/{id}"} {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Pattern)) })
	}
	allowed := map[string]bool{"GET /t/public/b/c": true, "GET /catalog/": true, "GET /catalog/{x}/{y}": true, "GET /orders/export": true}
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, ok := policy.CanonicalPath(r.URL)
		if !ok {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		if !a.Allow("web", r.Method, path) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
	reached := map[string]bool{}
	for _, target := range []string{
		"/t/public/b/c", "/t/public%2Fb/c", "/t/public%2fb/c", "/t/public/b%2Fc", "/t/x/c",
		"/catalog/x", "/catalog/x/y", "/catalog/../admin/", "/catalog/%2e%2e/admin/", "/catalog/%2E%2E/admin/",
		"/catalog/..%2Fadmin/", "/catalog%2F..%2Fadmin/", "//admin/", "/catalog//admin/", "/./admin/",
		"/orders/export", "/orders/%65xport", "/orders/export/", "/orders/export/.", "/orders/export%2F", "/orders/42",
		"/admin", "/admin/", "/%61dmin/",
	} {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: shop\r\n\r\n")))
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		w := httptest.NewRecorder()
		guarded.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			reached[w.Body.String()] = true
			if !allowed[w.Body.String()] {
				t.Errorf("%s reached %q", target, w.Body.String())
			}
		}
	}
	if len(reached) != len(allowed) {
		t.Errorf("reached %v, want every allowed pattern", reached)
	}
}

// TestAuthorizerAgreesWithServeMux compares Allow and Sensitive with the
// oracle, which lets ServeMux match, on thousands of random requests.
func TestAuthorizerAgreesWithServeMux(t *testing.T) {
	for _, tc := range []struct {
		name, doc, self string
	}{
		{"the orders policy", ordersPolicy, "orders"},
		{"the benchmark policy", policytest.Bench(), policytest.Service},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Parse(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			a, o := p.Compile(tc.self), newOracle(p, tc.self)
			n, allowed, sensitive := 3000, 0, 0
			if testing.Short() {
				n = 300
			}
			for _, req := range policytest.Random(p, tc.self, 1, n) {
				r := pathRequest(t, req.Method, req.Path)
				path, ok := policy.CanonicalPath(r.URL)
				got, gotSensitive := a.Allow(req.Caller, req.Method, path), a.Sensitive(req.Method, path)
				if !ok {
					if got || !gotSensitive {
						t.Errorf("%+v: unclean, Allow %v Sensitive %v", req, got, gotSensitive)
					}
					continue
				}
				if want := o.Allow(req.Caller, r); got != want {
					t.Errorf("Allow(%q, %q, %q) = %v, ServeMux says %v", req.Caller, req.Method, req.Path, got, want)
				}
				if want := o.Sensitive(r); gotSensitive != want {
					t.Errorf("Sensitive(%q, %q) = %v, ServeMux says %v", req.Method, req.Path, gotSensitive, want)
				}
				if got {
					allowed++
				}
				if gotSensitive {
					sensitive++
				}
			}
			// The random requests must exercise both answers, or the test proves little.
			if allowed < n/20 || allowed > n-n/20 || sensitive < n/100 {
				t.Errorf("%d requests: %d allowed, %d sensitive", n, allowed, sensitive)
			}
			t.Logf("%d requests: %d allowed, %d sensitive", n, allowed, sensitive)
		})
	}
}

func TestBenchRequestsAreWhatTheySay(t *testing.T) {
	p, err := policy.Parse(policytest.Bench())
	if err != nil {
		t.Fatal(err)
	}
	sp := p.Services[policytest.Service]
	if len(sp.Allow) != 200 {
		t.Fatalf("%d allow rules, want 200", len(sp.Allow))
	}
	a := p.Compile(policytest.Service)
	last, none := policytest.LastRule(), policytest.NoRule()
	if !a.Allow(last.Caller, last.Method, last.Path) {
		t.Errorf("%+v is refused", last)
	}
	if a.Allow(none.Caller, none.Method, none.Path) {
		t.Errorf("%+v is allowed", none)
	}
	// Only the last rule admits the last-rule request.
	for i, rule := range sp.Allow[:len(sp.Allow)-1] {
		one := &policy.Policy{Services: map[string]policy.ServicePolicy{"x": {Allow: []policy.AllowRule{rule}}}}
		if one.Compile("x").Allow(last.Caller, last.Method, last.Path) {
			t.Errorf("rule %d admits %+v", i, last)
		}
	}
}

// cleanPath is ServeMux's notion of a clean path: path.Clean, keeping a
// trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// FuzzAuthorizerPath sends any request target through CanonicalPath and
// the Authorizer of the orders policy. It checks that nothing panics; that
// a path that is not clean is never allowed and always sensitive; and that
// on every path CanonicalPath accepts, Allow and Sensitive agree with
// ServeMux matching the request as the server parsed it, so that no
// spelling of a path reaches a handler the policy does not allow.
func FuzzAuthorizerPath(f *testing.F) {
	p, err := policy.Parse(ordersPolicy)
	if err != nil {
		f.Fatal(err)
	}
	a, o := p.Compile("orders"), newOracle(p, "orders")
	for _, target := range []string{"/orders/42", "/orders%2F42", "/catalog/%2e%2e/admin/", "//", "/a%20b/1", "/carts/7/", "/files/", "*"} {
		f.Add("web", "GET", target)
	}
	f.Fuzz(func(t *testing.T, caller, method, target string) {
		a.Allow(caller, method, target) // any string at all
		a.Sensitive(method, target)
		r := serverRequest(method, target)
		if r == nil {
			return
		}
		path, ok := policy.CanonicalPath(r.URL)
		allowed, sensitive := a.Allow(caller, method, path), a.Sensitive(method, path)
		if path == "" || path != cleanPath(path) {
			if ok || allowed || !sensitive {
				t.Fatalf("unclean %q: canonical %v, allowed %v, sensitive %v", path, ok, allowed, sensitive)
			}
		}
		if !ok {
			return
		}
		if want := o.Allow(caller, r); allowed != want {
			t.Fatalf("Allow(%q, %q, %q) = %v, ServeMux says %v", caller, method, target, allowed, want)
		}
		if want := o.Sensitive(r); sensitive != want {
			t.Fatalf("Sensitive(%q, %q) = %v, ServeMux says %v", method, target, sensitive, want)
		}
	})
}
