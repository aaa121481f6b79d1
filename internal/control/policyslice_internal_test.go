package control

import (
	"reflect"
	"testing"

	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/policy/policytest"
)

// normal treats an empty list as an absent one, as the policy does.
func normal(sp policy.ServicePolicy) policy.ServicePolicy {
	nz := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	var out policy.ServicePolicy
	for _, r := range sp.Allow {
		out.Allow = append(out.Allow, policy.AllowRule{Callers: nz(r.Callers), Routes: policy.Routes{Methods: nz(r.Methods), Paths: nz(r.Paths)}, Actor: r.Actor})
	}
	for _, r := range sp.Sensitive {
		out.Sensitive = append(out.Sensitive, policy.Routes{Methods: nz(r.Methods), Paths: nz(r.Paths)})
	}
	return out
}

func TestAPolicySliceKeepsExactlyTheServicesEntry(t *testing.T) {
	for name, doc := range map[string]string{"Small": policytest.Small, "Bench": policytest.Bench()} {
		orig, err := policy.Parse(doc)
		if err != nil {
			t.Fatal(err)
		}
		for service, want := range orig.Services {
			text, err := slicePolicy(doc, service, nil)
			if err != nil {
				t.Fatalf("%s: slice for %s: %v", name, service, err)
			}
			got, err := policy.Parse(text)
			if err != nil {
				t.Fatalf("%s: the slice for %s does not parse: %v\n%s", name, service, err, text)
			}
			if len(got.Services) != 1 {
				t.Errorf("%s: the slice for %s names %d services:\n%s", name, service, len(got.Services), text)
			}
			if !reflect.DeepEqual(normal(got.Services[service]), normal(want)) {
				t.Errorf("%s: the slice for %s differs:\n%+v\nwant\n%+v", name, service, got.Services[service], want)
			}
		}
		text, err := slicePolicy(doc, "unnamed", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := policy.Parse(text); err != nil || len(got.Services) != 0 {
			t.Errorf("%s: slice for a service the policy does not name: %v, %v\n%s", name, got, err, text)
		}
	}
}

func TestASliceTakesTheControlPlanesGatewaysAsTheDefaultEdge(t *testing.T) {
	const doc = `services:
  orders:
    allow:
      - callers: [edge-eu]
        paths: ["/orders/{id}"]
      - callers: [billing]
        paths: ["/orders/{id}/paid"]
`
	for _, c := range []struct {
		gateways []string
		want     bool
	}{
		{[]string{"edge-eu"}, true}, // the gateway that faces clients is the edge
		{nil, false},                // no gateway named: "gateway", which calls nothing here
	} {
		text, err := slicePolicy(doc, "orders", c.gateways)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.Parse(text)
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		a := p.Compile("orders")
		if got := a.ActorRequired("GET", "/orders/1"); got != c.want {
			t.Errorf("gateways %v: actor required on GET /orders/1 = %v, want %v\n%s", c.gateways, got, c.want, text)
		}
		if a.ActorRequired("POST", "/orders/1/paid") {
			t.Errorf("gateways %v: a route only billing calls requires an actor\n%s", c.gateways, text)
		}
	}
}
