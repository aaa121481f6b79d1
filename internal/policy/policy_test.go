package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/policy/policytest"
)

func TestAValidPolicyParses(t *testing.T) {
	p, err := policy.Parse(policytest.Small)
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
			_, err := policy.Parse(tc.doc)
			var pe *policy.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *policy.Error", err)
			}
			if pe.Line != tc.line || pe.Field != tc.field {
				t.Errorf("line %d field %q (%v), want line %d field %q", pe.Line, pe.Field, err, tc.line, tc.field)
			}
		})
	}
}

func TestPathPatternsFollowServeMux(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		reason  string // empty: valid
	}{
		{"/", ""},
		{"/{$}", ""},
		{"/orders/{$}", ""},
		{"/orders/{id}/", ""},
		{"/files/{path...}", ""},
		{"/a%2Fb", ""},
		{"orders", `"orders" does not start with '/'`},
		{"/{$}/x", `"/{$}/x": {$} must be the last segment`},
		{"/a/{x...}/", `"/a/{x...}/": {x...} must be the last segment`},
		{"/a/{x}{y}", `"/a/{x}{y}": a wildcard must be a whole segment, like {id}`},
		{"/a/x{y}", `"/a/x{y}": a wildcard must be a whole segment, like {id}`},
		{"/a/{}", `"/a/{}": wildcard name "" is not an identifier`},
		{"/a/{1x}", `"/a/{1x}": wildcard name "1x" is not an identifier`},
		{"/a/{x}/{x}", `"/a/{x}/{x}": wildcard {x} appears twice`},
		{"/" + strings.Repeat("a", 1024), "pattern of 1025 bytes, at most 1024"},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			doc := "services:\n  orders:\n    sensitive:\n      - paths: [\"" + tc.pattern + "\"]\n"
			_, err := policy.Parse(doc)
			want := ""
			if tc.reason != "" {
				want = "policy: line 4: services.orders.sensitive[0].paths[0]: " + tc.reason
			}
			if got := errorText(err); got != want {
				t.Errorf("got error %q, want %q", got, want)
			}
		})
	}
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{policytest.Small, "", "services:\n  a:\n    allow:\n      - callers: ['*']\n", "services: [", "&a [*a]", "services:\n  x: !!binary AAAA\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := policy.Parse(doc)
		if err != nil {
			var pe *policy.Error
			if !errors.As(err, &pe) || pe.Line < 0 {
				t.Fatalf("error %v is not a *policy.Error with a line", err)
			}
			return
		}
		if p == nil {
			t.Fatal("nil policy without an error")
		}
	})
}
