// Package policytest holds the policy and requests that the tests and
// benchmarks of package policy share with the OPA comparison in bench/opa,
// so that both measure the same decisions.
package policytest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/rampartsec/rampart/internal/policy"
)

// Service is the service whose part of Bench the benchmarks decide.
const Service = "api"

// A Request is one decision to make: a caller's service name, a method and
// a path as in r.URL.Path.
type Request struct {
	Caller, Method, Path string
}

var (
	resources = []string{"orders", "users", "carts", "invoices", "payments", "products", "reviews",
		"shipments", "accounts", "reports", "coupons", "refunds", "subscriptions", "addresses",
		"wishlists", "returns", "inventory", "suppliers", "warehouses", "notifications"}
	callers = []string{"web", "mobile-bff", "checkout", "billing", "search", "admin", "reporting",
		"fulfilment", "pricing", "recommendations", "support", "fraud", "ledger", "mailer",
		"scheduler", "catalog", "partner-gw", "analytics", "loyalty", "tax", "shipping-gw", "audit",
		"identity", "ops"}
)

// Bench returns a policy document in which Service has 200 allow rules and
// 20 sensitive routes, in the shape of a REST API: for each of 20
// resources, ten rules that mix callers (one to three named, or "*"),
// methods, {id} parameters, prefixes ("/history/"), a {path...} remainder
// and {$}. A few other services have rules too. The same document every
// time.
func Bench() string {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string {
		n := 1 + rng.IntN(3)
		var cs []string
		for len(cs) < n {
			if c := callers[rng.IntN(len(callers)-1)]; !slices.Contains(cs, c) { // never ops: its rule is the first
				cs = append(cs, c)
			}
		}
		return strings.Join(cs, ", ")
	}
	var b strings.Builder
	b.WriteString("services:\n  " + Service + ":\n    allow:\n")
	rule := func(callers, methods string, paths ...string) {
		fmt.Fprintf(&b, "      - callers: [%s]\n", callers)
		if methods != "" {
			fmt.Fprintf(&b, "        methods: [%s]\n", methods)
		}
		fmt.Fprintf(&b, "        paths: [\"%s\"]\n", strings.Join(paths, `", "`))
	}
	for i, r := range resources {
		v1 := "/v1/" + r
		if i == 0 {
			b.WriteString("      - callers: [ops]\n        methods: [GET]\n") // every path
		} else {
			rule(pick(), "GET", v1)
		}
		rule(pick(), "POST", v1)
		rule(pick(), "GET", v1+"/{id}", v1+"/by-name/{name}")
		rule(pick(), "PUT, PATCH", v1+"/{id}")
		rule(pick(), "DELETE", v1+"/{id}")
		rule(pick(), "GET", v1+"/{id}/history/")
		rule(pick(), "GET, POST", v1+"/{id}/notes/{note}")
		rule(pick(), "GET", "/v2/"+r+"/{id}/files/{path...}")
		rule(`"*"`, "", "/internal/"+r+"/{$}", "/internal/"+r+"/healthz")
		rule(pick(), "POST", v1+"/{id}/actions/{action}")
	}
	b.WriteString("    sensitive:\n")
	for _, r := range resources {
		fmt.Fprintf(&b, "      - methods: [DELETE, POST]\n        paths: [\"/v1/%s/{id}\", \"/v1/%s/{id}/actions/{action}\"]\n", r, r)
	}
	b.WriteString("  web:\n    allow:\n      - callers: [api]\n        paths: [\"/\"]\n  audit:\n")
	return b.String()
}

// LastRule is a request that only the last allow rule of Bench admits.
func LastRule() Request {
	p, err := policy.Parse(Bench())
	if err != nil {
		panic(err)
	}
	rules := p.Services[Service].Allow
	last := rules[len(rules)-1]
	return Request{Caller: last.Callers[len(last.Callers)-1], Method: "POST",
		Path: "/v1/notifications/80417/actions/resend"}
}

// NoRule is a request that no rule of Bench admits, whose path follows the
// policy's patterns as far as it can before it fails.
func NoRule() Request {
	return Request{Caller: "web", Method: "POST", Path: "/v1/notifications/80417/actions/resend/now"}
}

// Random returns n requests for the service self of p, from seed. Each
// starts from a rule of self: half the time with one of the rule's callers
// and methods, otherwise with any caller or method that p names, or
// another. The path is one of the rule's patterns with its wildcards
// filled, half the time altered: a segment swapped, dropped or added, a
// trailing slash added or removed, or a spelling that is not clean ("//",
// "/./", "/../").
func Random(p *policy.Policy, self string, seed uint64, n int) []Request {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	sp := p.Services[self]
	names := []string{"stranger", "a", "web", "ops", "", "Web", "*"}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "get", "PROPFIND"}
	var rules []policy.AllowRule
	for _, r := range sp.Allow {
		for _, c := range r.Callers {
			if !slices.Contains(names, c) {
				names = append(names, c)
			}
		}
		rules = append(rules, r)
	}
	for _, r := range sp.Sensitive {
		rules = append(rules, policy.AllowRule{Routes: r})
	}
	if len(rules) == 0 {
		rules = []policy.AllowRule{{}}
	}
	var literals []string
	for _, r := range rules {
		for _, pat := range r.Paths {
			for s := range strings.SplitSeq(pat[1:], "/") {
				if !strings.Contains(s, "{") && !slices.Contains(literals, s) {
					literals = append(literals, s)
				}
			}
		}
	}
	if len(literals) == 0 {
		literals = []string{"x"}
	}
	fill := []string{"1", "80417", "a b", "x-y", "%41", "é", "{id}", "..x", ".x"}
	out := make([]Request, n)
	for i := range out {
		rule := rules[rng.IntN(len(rules))]
		caller, method := names[rng.IntN(len(names))], methods[rng.IntN(len(methods))]
		if len(rule.Callers) > 0 && rng.IntN(2) == 0 {
			caller = rule.Callers[rng.IntN(len(rule.Callers))]
			if caller == "*" {
				caller = names[rng.IntN(len(names))]
			}
		}
		if len(rule.Methods) > 0 && rng.IntN(2) == 0 {
			method = rule.Methods[rng.IntN(len(rule.Methods))]
		}
		pattern := "/"
		if len(rule.Paths) > 0 {
			pattern = rule.Paths[rng.IntN(len(rule.Paths))]
		}
		segs := strings.Split(pattern[1:], "/")
		var path []string
		for j, s := range segs {
			switch {
			case s == "{$}":
				path = append(path, "")
			case strings.HasSuffix(s, "...}") || s == "" && j == len(segs)-1: // a rest, maybe empty

				for range rng.IntN(3) {
					path = append(path, fill[rng.IntN(len(fill))])
				}
				if rng.IntN(3) == 0 {
					path = append(path, "")
				}
			case strings.HasPrefix(s, "{"):
				path = append(path, fill[rng.IntN(len(fill))])
			default:
				path = append(path, s)
			}
		}
		if rng.IntN(2) == 0 { // alter it
			k := rng.IntN(len(path) + 1)
			switch rng.IntN(7) {
			case 0:
				if k < len(path) {
					path[k] = literals[rng.IntN(len(literals))]
				}
			case 1:
				if k < len(path) {
					path = slices.Delete(path, k, k+1)
				}
			case 2:
				path = slices.Insert(path, k, literals[rng.IntN(len(literals))])
			case 3:
				if len(path) > 0 && path[len(path)-1] == "" {
					path = path[:len(path)-1]
				} else {
					path = append(path, "")
				}
			case 4:
				path = slices.Insert(path, k, "")
			case 5:
				path = slices.Insert(path, k, ".")
			case 6:
				path = slices.Insert(path, k, "..")
			}
		}
		out[i] = Request{Caller: caller, Method: method, Path: "/" + strings.Join(path, "/")}
	}
	return out
}

// Small is a short valid policy document, with comments, a wildcard caller,
// a prefix, a rest wildcard and a service that allows nothing.
const Small = `# who may call whom
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
