package opa_test

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/policy/policytest"
)

var (
	//go:embed common.rego
	commonRego string
	//go:embed rules.rego
	rulesRego string
	//go:embed indexed.rego
	indexedRego string
)

var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

// An engine decides whether a caller may call a method on a path.
type engine struct {
	name  string
	allow func(caller, method, path string) bool
}

// engines returns the Authorizer and the two OPA policies for the service
// self of p.
func engines(tb testing.TB, p *policy.Policy, self string) []engine {
	a := p.Compile(self)
	return []engine{
		{"rampart", a.Allow},
		{"opa-rules", prepare(tb, rulesRego, rulesData(p, self))},
		{"opa-indexed", prepare(tb, indexedRego, indexedData(p, self))},
		{"opa-generated", prepare(tb, generatedRego(p, self), map[string]any{})},
	}
}

// prepare returns a decision through a query OPA has prepared once, as a
// service would hold it.
func prepare(tb testing.TB, module string, data map[string]any) func(caller, method, path string) bool {
	tb.Helper()
	ctx := context.Background()
	pq, err := rego.New(
		rego.Query("data.rampart.allow"),
		rego.Module("common.rego", commonRego),
		rego.Module("policy.rego", module),
		// AST values in the store, as OPA's server can keep them: without
		// this option every decision converts the data it reads.
		rego.Store(inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))),
	).PrepareForEval(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return func(caller, method, path string) bool {
		rs, err := pq.Eval(ctx, rego.EvalInput(map[string]any{"caller": caller, "method": method, "path": path}))
		if err != nil {
			tb.Fatal(err)
		}
		return rs.Allowed()
	}
}

// globs translates the path patterns of r (none: every path) into globs
// over "/"-separated segments, as common.rego matches them.
func globs(r policy.Routes) []string {
	paths := r.Paths
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	out := []string{} // [], not null
patterns:
	for _, p := range paths {
		segs := strings.Split(p[1:], "/")
		for i, s := range segs {
			switch {
			case i == len(segs)-1 && (s == "" || strings.HasSuffix(s, "...}")):
				segs[i] = "**"
			case s == "{$}":
				segs[i] = ""
			case strings.HasPrefix(s, "{"):
				segs[i] = "?*"
			default:
				if u, err := url.PathUnescape(s); err == nil {
					s = u
				}
				if strings.Contains(s, "/") {
					continue patterns // a literal "/" in a segment never matches
				}
				segs[i] = globEscaper.Replace(s)
			}
		}
		out = append(out, "/"+strings.Join(segs, "/"))
	}
	return out
}

var globEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`, "{", `\{`, "}", `\}`)

// ruleMethods lists the methods a rule covers, HEAD with GET; nil is all.
func ruleMethods(r policy.Routes) []string {
	var out []string
	for _, m := range r.Methods {
		out = append(out, m)
		if m == "GET" {
			out = append(out, "HEAD")
		}
	}
	return out
}

// set returns keys as a set, or {"*"} if there are none.
func set(keys []string) map[string]bool {
	if len(keys) == 0 {
		keys = []string{"*"}
	}
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// rulesData is the data of rules.rego: the allow rules of self, in order.
func rulesData(p *policy.Policy, self string) map[string]any {
	var rules []any
	for _, r := range p.Services[self].Allow {
		rules = append(rules, map[string]any{
			"callers": set(r.Callers), "methods": set(ruleMethods(r.Routes)), "globs": globs(r.Routes),
		})
	}
	return jsonData(map[string]any{"rules": rules})
}

// indexedData is the data of indexed.rego: for each method and caller, the
// globs of the rules that admit them.
func indexedData(p *policy.Policy, self string) map[string]any {
	index := map[string]map[string][]string{"*other": {}}
	for _, m := range methods {
		index[m] = map[string][]string{}
	}
	for _, r := range p.Services[self].Allow {
		ms := ruleMethods(r.Routes)
		if ms == nil {
			ms = append(methods, "*other")
		}
		for _, m := range ms {
			for _, c := range r.Callers {
				index[m][c] = append(index[m][c], globs(r.Routes)...)
			}
		}
	}
	return jsonData(map[string]any{"index": index})
}

// generatedRego is the policy as Rego rules, one per caller, method and
// glob of each allow rule, with constants where OPA's rule index can use
// them (input.caller ==, input.method ==, glob.match with a constant
// pattern), so that OPA picks the candidate rules before it evaluates one.
func generatedRego(p *policy.Policy, self string) string {
	var b strings.Builder
	b.WriteString("package rampart\n\ndefault allow := false\n")
	for _, r := range p.Services[self].Allow {
		ms := ruleMethods(r.Routes)
		if ms == nil {
			ms = []string{""}
		}
		for _, c := range r.Callers {
			for _, m := range ms {
				for _, g := range globs(r.Routes) {
					gs, err := json.Marshal(g)
					if err != nil {
						panic(err)
					}
					b.WriteString("\nallow if {\n")
					if c != "*" {
						fmt.Fprintf(&b, "\tinput.caller == %q\n", c)
					}
					if m != "" {
						fmt.Fprintf(&b, "\tinput.method == %q\n", m)
					}
					fmt.Fprintf(&b, "\tglob.match(%s, [\"/\"], input.path)\n\tvalid_caller\n\tclean_path\n}\n", gs)
				}
			}
		}
	}
	return b.String()
}

// jsonData turns v into the plain JSON values OPA's store holds.
func jsonData(v map[string]any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func benchPolicy(tb testing.TB) *policy.Policy {
	tb.Helper()
	p, err := policy.Parse(policytest.Bench())
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestOPAAgreesWithTheAuthorizer is what makes the benchmark a fair
// comparison: on random requests, the two Rego policies decide as the
// Authorizer does.
func TestOPAAgreesWithTheAuthorizer(t *testing.T) {
	p := benchPolicy(t)
	es := engines(t, p, policytest.Service)
	reqs := policytest.Random(p, policytest.Service, 7, 5000)
	reqs = append(reqs, policytest.LastRule(), policytest.NoRule())
	allowed := 0
	for _, r := range reqs {
		want := es[0].allow(r.Caller, r.Method, r.Path)
		if want {
			allowed++
		}
		for _, e := range es[1:] {
			if got := e.allow(r.Caller, r.Method, r.Path); got != want {
				t.Errorf("%s: Allow(%q, %q, %q) = %v, the Authorizer says %v", e.name, r.Caller, r.Method, r.Path, got, want)
			}
		}
	}
	if allowed < len(reqs)/20 || allowed > len(reqs)-len(reqs)/20 {
		t.Errorf("%d of %d requests allowed: too few of one answer to compare", allowed, len(reqs))
	}
	t.Logf("%d requests, %d allowed", len(reqs), allowed)
}

// BenchmarkDecision makes the decisions of policy.BenchmarkAuthorizer
// through the Authorizer and through OPA, in the same run.
func BenchmarkDecision(b *testing.B) {
	p := benchPolicy(b)
	es := engines(b, p, policytest.Service)
	for _, bc := range []struct {
		name string
		reqs []policytest.Request
	}{
		{"case=last-rule", []policytest.Request{policytest.LastRule()}},
		{"case=no-rule", []policytest.Request{policytest.NoRule()}},
		{"case=random", policytest.Random(p, policytest.Service, 1, 1024)},
	} {
		for _, e := range es {
			b.Run(bc.name+"/engine="+e.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					r := bc.reqs[i%len(bc.reqs)]
					e.allow(r.Caller, r.Method, r.Path)
					i++
				}
			})
		}
	}
}

// BenchmarkOPAOverhead is the floor under the OPA figures: one prepared
// evaluation of a policy with one comparison.
func BenchmarkOPAOverhead(b *testing.B) {
	allow := prepare(b, "package rampart\n\ndefault allow := false\n\nallow if input.caller == \"web\"\n", map[string]any{})
	b.ReportAllocs()
	for b.Loop() {
		allow("web", "GET", "/")
	}
}
