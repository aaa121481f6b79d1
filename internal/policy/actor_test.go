package policy_test

import (
	"slices"
	"testing"

	"github.com/rampartsec/rampart/internal/policy"
)

const actorPolicy = `
services:
  orders:
    allow:
      - callers: [gateway]
        methods: [GET]
        paths: ["/orders/{id}"]
      - callers: [billing]
        methods: [POST]
        paths: ["/orders/{id}/paid"]
      - callers: [billing]
        methods: [GET]
        paths: ["/orders/{id}/audit"]
        actor: required
      - callers: ["*"]
        paths: ["/healthz"]
        actor: optional
      - callers: [ops, gateway]
        paths: ["/stats"]
        actor: optional
    sensitive:
      - methods: [DELETE]
        paths: ["/orders/{id}"]
  billing:
    allow:
      - callers: [orders]
  ledger:
    allow:
      - callers: [billing]
  mailer:
    allow:
      - callers: [ops]
`

func TestActorRequired(t *testing.T) {
	p, err := policy.Parse(actorPolicy)
	if err != nil {
		t.Fatal(err)
	}
	a := p.Compile("orders")
	for _, c := range []struct {
		method, path string
		want         bool
		why          string
	}{
		{"GET", "/orders/1", true, "the edge may call it"},
		{"HEAD", "/orders/1", true, "GET covers HEAD"},
		{"POST", "/orders/1/paid", false, "only billing calls it"},
		{"GET", "/orders/1/audit", true, "its rule says required"},
		{"GET", "/healthz", false, `"*" with actor: optional`},
		{"GET", "/stats", false, "edge rule with actor: optional"},
		{"DELETE", "/orders/1", true, "sensitive"},
		{"GET", "/nowhere", false, "no rule: Allow refuses it anyway"},
		{"GET", "/orders/../healthz", true, "not clean"},
	} {
		if got := a.ActorRequired(c.method, c.path); got != c.want {
			t.Errorf("ActorRequired(%s %s) = %v, want %v (%s)", c.method, c.path, got, c.want, c.why)
		}
	}
}

func TestEdgeNamesTheServicesThatFaceClients(t *testing.T) {
	p, err := policy.Parse("edge: [web]\n" + actorPolicy)
	if err != nil {
		t.Fatal(err)
	}
	a := p.Compile("orders")
	if a.ActorRequired("GET", "/orders/1") {
		t.Error("gateway is not the edge here, yet its rule requires an actor")
	}
	if !a.ActorRequired("DELETE", "/orders/1") {
		t.Error("a sensitive route must require an actor whatever the edge")
	}
	if _, err := policy.Parse("edge: [Not_A_Name]\nservices: {}\n"); err == nil {
		t.Error("an invalid edge service name parsed")
	}
	if _, err := policy.Parse("services:\n  a:\n    allow:\n      - callers: [b]\n        actor: maybe\n"); err == nil {
		t.Error("actor: maybe parsed")
	}
}

func TestReachFollowsTheAllowRules(t *testing.T) {
	p, err := policy.Parse(actorPolicy)
	if err != nil {
		t.Fatal(err)
	}
	// orders → billing → ledger; "*" on orders' /healthz makes orders
	// reachable from anyone (it is the start anyway); mailer only from ops.
	if got, want := p.Reach("orders"), []string{"billing", "ledger", "orders"}; !slices.Equal(got, want) {
		t.Errorf("Reach(orders) = %v, want %v", got, want)
	}
	if got, want := p.Reach("ops"), []string{"billing", "ledger", "mailer", "ops", "orders"}; !slices.Equal(got, want) {
		t.Errorf("Reach(ops) = %v, want %v", got, want)
	}
	var none *policy.Policy
	if got := none.Reach("web"); !slices.Equal(got, []string{"web"}) {
		t.Errorf("nil policy: Reach = %v", got)
	}
}
