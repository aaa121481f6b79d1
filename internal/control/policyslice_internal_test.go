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
		out.Allow = append(out.Allow, policy.AllowRule{Callers: nz(r.Callers), Routes: policy.Routes{Methods: nz(r.Methods), Paths: nz(r.Paths)}})
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
			text, err := slicePolicy(doc, service)
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
		text, err := slicePolicy(doc, "unnamed")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := policy.Parse(text); err != nil || len(got.Services) != 0 {
			t.Errorf("%s: slice for a service the policy does not name: %v, %v\n%s", name, got, err, text)
		}
	}
}
