package control_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/policy/policytest"
	"github.com/rampartsec/rampart/internal/store"
)

func (e *env) putPolicy(t *testing.T, query, doc string) response {
	t.Helper()
	return e.doWith(t, "PUT", "/v1/policy"+query, doc, "Bearer "+e.admin, "application/yaml")
}

func TestPoliciesAreAppliedVersionedAndWatched(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.do(t, "GET", "/v1/policy", nil), http.StatusNotFound, "not_found")
	p1 := decode[store.Policy](t, e.putPolicy(t, "?base=0", policytest.Small), http.StatusCreated)
	if p1.Version != 1 || p1.YAML != policytest.Small {
		t.Errorf("first version: %+v", p1)
	}
	second := strings.Replace(policytest.Small, "[GET]", "[GET, HEAD]", 1)
	p2 := decode[store.Policy](t, e.putPolicy(t, "?base=1", second), http.StatusCreated)
	if p2.Version != 2 {
		t.Errorf("second version: %+v", p2)
	}
	// Applied from version 1 after version 2 was stored: a lost update.
	wantError(t, e.putPolicy(t, "?base=1", policytest.Small), http.StatusConflict, "conflict")

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
	wantError(t, e.doWith(t, "PUT", "/v1/policy", policytest.Small, "Bearer "+e.admin, "application/json"), http.StatusUnsupportedMediaType, "unsupported_media_type")
	wantError(t, e.doWith(t, "PUT", "/v1/policy", policytest.Small, "", "application/yaml"), http.StatusUnauthorized, "unauthorized")
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
