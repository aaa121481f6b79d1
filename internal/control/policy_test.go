package control_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

const validPolicy = `# who may call whom
services:
  orders:
    allow:
      - callers: [web, checkout]
        methods: [GET]
        paths: ["/orders/{id}", "/orders/"]
      - callers: ["*"]
        paths: ["/healthz"]
    sensitive:
      - methods: [POST, DELETE]
        paths: ["/orders/{rest...}"]
  web:
`

func TestAValidPolicyParses(t *testing.T) {
	p, err := control.ParsePolicy(validPolicy)
	if err != nil {
		t.Fatal(err)
	}
	orders := p.Services["orders"]
	if len(p.Services) != 2 || len(orders.Allow) != 2 || orders.Allow[0].Callers[1] != "checkout" ||
		orders.Allow[1].Methods != nil || orders.Sensitive[0].Paths[0] != "/orders/{rest...}" {
		t.Errorf("parsed %+v", p)
	}
}

func TestInvalidPoliciesNameTheLineAndField(t *testing.T) {
	for _, tc := range []struct {
		name, doc, field string
		line             int
	}{
		{"an empty document", "", "", 1},
		{"broken YAML", "services:\n  orders: [\n", "", 2},
		{"a top-level list", "- a\n", "", 1},
		{"an unknown top-level field", "servics:\n  orders:\n", "servics", 1},
		{"a bad service name", "services:\n  Orders:\n", "services.Orders", 2},
		{"an unknown service field", "services:\n  orders:\n    alow: []\n", "services.orders.alow", 3},
		{"a rule without callers", "services:\n  orders:\n    allow:\n      - methods: [GET]\n", "services.orders.allow[0].callers", 4},
		{"a lowercase method", "services:\n  orders:\n    allow:\n      - callers: [web]\n        methods: [GET, post]\n", "services.orders.allow[0].methods[1]", 5},
		{"a relative path", "services:\n  orders:\n    sensitive:\n      - paths: [orders]\n", "services.orders.sensitive[0].paths[0]", 4},
		{"a wildcard not last", "services:\n  orders:\n    sensitive:\n      - paths: [\"/a/{x...}/b\"]\n", "services.orders.sensitive[0].paths[0]", 4},
		{"a bad caller", "services:\n  orders:\n    allow:\n      - callers: [\"spiffe://x/y\"]\n", "services.orders.allow[0].callers[0]", 4},
		{"a number for a caller", "services:\n  orders:\n    allow:\n      - callers: [7]\n", "services.orders.allow[0].callers[0]", 4},
		{"an empty method list", "services:\n  orders:\n    allow:\n      - callers: [web]\n        methods: []\n", "services.orders.allow[0].methods", 5},
		{"a repeated field", "services:\n  orders:\n    allow: []\n    allow: []\n", "services.orders.allow", 4},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			_, err := control.ParsePolicy(tc.doc)
			var pe *control.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *PolicyError", err)
			}
			if pe.Line != tc.line || pe.Field != tc.field {
				t.Errorf("line %d field %q (%v), want line %d field %q", pe.Line, pe.Field, err, tc.line, tc.field)
			}
		})
	}
}

func (e *env) putPolicy(t *testing.T, query, doc string) response {
	t.Helper()
	return e.doWith(t, "PUT", "/v1/policy"+query, doc, "Bearer "+e.admin, "application/yaml")
}

func TestPoliciesAreAppliedVersionedAndWatched(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.do(t, "GET", "/v1/policy", nil), http.StatusNotFound, "not_found")
	p1 := decode[store.Policy](t, e.putPolicy(t, "?base=0", validPolicy), http.StatusCreated)
	if p1.Version != 1 || p1.YAML != validPolicy {
		t.Errorf("first version: %+v", p1)
	}
	second := strings.Replace(validPolicy, "[GET]", "[GET, HEAD]", 1)
	p2 := decode[store.Policy](t, e.putPolicy(t, "?base=1", second), http.StatusCreated)
	if p2.Version != 2 {
		t.Errorf("second version: %+v", p2)
	}
	// Applied from version 1 after version 2 was stored: a lost update.
	wantError(t, e.putPolicy(t, "?base=1", validPolicy), http.StatusConflict, "conflict")

	got := decode[store.Policy](t, e.do(t, "GET", "/v1/policy", nil), http.StatusOK)
	if got.Version != 2 || got.YAML != second {
		t.Errorf("latest: %+v", got)
	}
	got = decode[store.Policy](t, e.do(t, "GET", "/v1/policy?version=1", nil), http.StatusOK)
	if got.Version != 1 {
		t.Errorf("version 1: %+v", got)
	}

	eb := wantError(t, e.putPolicy(t, "", "services:\n  orders:\n    allow:\n      - callers: [web]\n        methods: [FETCH]\n"), http.StatusBadRequest, "invalid_policy")
	if eb.Line != 5 || eb.Field != "services.orders.allow[0].methods[0]" {
		t.Errorf("invalid policy error %+v", eb)
	}
	wantError(t, e.doWith(t, "PUT", "/v1/policy", validPolicy, "Bearer "+e.admin, "application/json"), http.StatusUnsupportedMediaType, "unsupported_media_type")
	wantError(t, e.doWith(t, "PUT", "/v1/policy", validPolicy, "", "application/yaml"), http.StatusUnauthorized, "unauthorized")
	wantError(t, e.putPolicy(t, "", "services: {}\n# "+strings.Repeat("x", 2<<20)), http.StatusRequestEntityTooLarge, "too_large")
	if got := decode[store.Policy](t, e.do(t, "GET", "/v1/policy", nil), http.StatusOK); got.Version != 2 {
		t.Errorf("a refused policy was stored: now at version %d", got.Version)
	}

	w := decode[control.WatchResult](t, e.do(t, "GET", "/v1/watch?since=0", nil), http.StatusOK)
	var versions []string
	for _, c := range w.Changes {
		if c.Kind == store.ChangePolicy {
			versions = append(versions, c.Key)
		}
	}
	if strings.Join(versions, ",") != "1,2" {
		t.Errorf("policy changes seen by a watcher: %v, want 1,2", versions)
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, seed := range []string{validPolicy, "", "services:\n  a:\n    allow:\n      - callers: ['*']\n", "services: [", "&a [*a]", "services:\n  x: !!binary AAAA\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := control.ParsePolicy(doc)
		if err != nil {
			var pe *control.PolicyError
			if !errors.As(err, &pe) || pe.Line < 0 {
				t.Fatalf("error %v is not a *PolicyError with a line", err)
			}
			return
		}
		if p == nil {
			t.Fatal("nil policy without an error")
		}
	})
}
