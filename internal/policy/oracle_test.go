package policy_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/policy"
)

// An oracle decides as the policy means, with http.ServeMux doing the
// matching: a rule admits a request when a ServeMux holding one of the
// rule's patterns, with the rule's method, would run its handler. It is
// slow and obviously right, which the Authorizer must agree with.
type oracle struct {
	allow     []oracleRule
	sensitive []oracleRule
}

type oracleRule struct {
	anyCaller bool
	callers   map[string]bool
	muxes     []*http.ServeMux // one per method and pattern
}

const served = 299 // the status of the marker handler

func newOracle(p *policy.Policy, self string) *oracle {
	o := &oracle{}
	sp := p.Services[self]
	for _, r := range sp.Allow {
		rule := oracleRule{callers: map[string]bool{}, muxes: muxes(r.Routes)}
		for _, c := range r.Callers {
			if c == "*" {
				rule.anyCaller = true
			}
			rule.callers[c] = true
		}
		o.allow = append(o.allow, rule)
	}
	for _, r := range sp.Sensitive {
		o.sensitive = append(o.sensitive, oracleRule{anyCaller: true, muxes: muxes(r)})
	}
	return o
}

func muxes(r policy.Routes) []*http.ServeMux {
	methods, paths := r.Methods, r.Paths
	if len(methods) == 0 {
		methods = []string{""}
	}
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	var out []*http.ServeMux
	for _, m := range methods {
		for _, p := range paths {
			mux := http.NewServeMux()
			pattern := p
			if m != "" {
				pattern = m + " " + p
			}
			if register(mux, pattern) {
				out = append(out, mux)
			}
		}
	}
	return out
}

// register registers a marker handler for pattern, or reports false if
// ServeMux refuses the pattern because it can never match.
func register(mux *http.ServeMux, pattern string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(served) })
	return true
}

func (r oracleRule) serves(req *http.Request) bool {
	for _, mux := range r.muxes {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code == served {
			return true
		}
	}
	return false
}

// Allow decides req from caller.
func (o *oracle) Allow(caller string, req *http.Request) bool {
	if ca.ValidateServiceName(caller) != nil {
		return false
	}
	for _, r := range o.allow {
		if (r.anyCaller || r.callers[caller]) && r.serves(req) {
			return true
		}
	}
	return false
}

// Sensitive reports whether req is for a sensitive route.
func (o *oracle) Sensitive(req *http.Request) bool {
	for _, r := range o.sensitive {
		if r.serves(req) {
			return true
		}
	}
	return false
}

// serverRequest returns the request a server makes of a request line with
// method and target, or nil if the server would refuse the target.
func serverRequest(method, target string) *http.Request {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil
	}
	return &http.Request{Method: method, URL: u, RequestURI: target, Host: "example.com", Header: http.Header{}}
}

// pathRequest returns the request a server makes when a client asks for
// path, escaped as net/url escapes it.
func pathRequest(t testing.TB, method, path string) *http.Request {
	t.Helper()
	target := (&url.URL{Path: path}).EscapedPath()
	r := serverRequest(method, target)
	if r == nil || r.URL.Path != path {
		t.Fatalf("path %q escaped as %q reads back as %+v", path, target, r)
	}
	return r
}
