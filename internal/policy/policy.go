// Package policy is the service authorization policy: the YAML document the
// control plane stores and every service enforces, its parser, and the
// [Authorizer] a service compiles from it to decide each request.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rampartsec/rampart/internal/ca"
)

// Policy is the service authorization policy: for each service, which
// callers may call which routes, which routes are sensitive, and on which
// routes a call must carry an actor token. It is applied as a YAML
// document:
//
//	edge: [gateway]                     # the services that face external clients; omitted: see Policy.Edge
//	services:
//	  orders:
//	    allow:
//	      - callers: [web, checkout]      # service names, or "*" for any service of the trust domain
//	        methods: [GET]                # omitted: every method
//	        paths: ["/orders/{id}"]       # ServeMux-style patterns; omitted: every path
//	        actor: required               # required or optional; omitted: see below
//	    sensitive:                        # routes refused to actors under a block-sensitive decision
//	      - methods: [POST, DELETE]
//	        paths: ["/orders/{id...}"]
//
// A service the policy does not name accepts no calls from other services.
//
// # Actor required
//
// A route requires an actor token (a call without one is refused with 401)
// when it is sensitive, or when an allow rule that covers it says
// "actor: required", or when an allow rule that covers it admits an edge
// service (named in edge:, or "*") and does not say "actor: optional". So by
// default every route reachable from the edge and every sensitive route
// requires an actor, and routes that only other services call (jobs,
// health checks) do not. The requirement belongs to the route, not to the
// caller: a route the edge may call requires an actor from every caller,
// so that a compromised internal service cannot call it as no one.
// Path patterns have the syntax and meaning of http.ServeMux patterns
// without a method or host: "/orders/{id}", "/files/{path...}", "/static/"
// (a prefix), "/{$}" (only "/"). [Policy.Compile] turns a policy into the
// [Authorizer] that decides requests.
type Policy struct {
	// Edge names the services that face external clients; nil means
	// DefaultEdge. The control plane spells it out in the slice it gives
	// each service, defaulting to the gateways it serves, whatever their
	// names.
	Edge     []string
	Services map[string]ServicePolicy
}

// DefaultEdge is the edge when a policy does not say: the gateway's
// default service name.
var DefaultEdge = []string{"gateway"}

// ActorRule says whether the routes of an allow rule require an actor.
type ActorRule string

// Values of AllowRule.Actor.
const (
	ActorDefault  ActorRule = ""         // required if the rule admits an edge service or "*"
	ActorRequired ActorRule = "required" // a call without an actor token is refused
	ActorOptional ActorRule = "optional" // this rule requires none (a sensitive route still does)
)

// ServicePolicy is one service's part of a Policy.
type ServicePolicy struct {
	Allow     []AllowRule
	Sensitive []Routes
}

// AllowRule lets Callers call Routes.
type AllowRule struct {
	Callers []string // service names; "*" is any service
	Routes
	Actor ActorRule
}

// Routes is a set of methods and path patterns; empty means all of them.
type Routes struct {
	Methods []string
	Paths   []string
}

// Error is a mistake in a policy document, at a line and a field such
// as "services.orders.allow[0].methods[1]".
type Error struct {
	Line   int
	Field  string
	Reason string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("policy: line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("policy: line %d: %s: %s", e.Line, e.Field, e.Reason)
}

// MaxServices bounds the services of one policy document.
const MaxServices = 10000

var httpMethods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

// Parse parses and validates a policy document. Every error is a
// *Error.
func Parse(text string) (*Policy, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, yamlError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{Line: 1, Reason: "empty document; want a mapping with services:"}
	}
	p := &Policy{Services: map[string]ServicePolicy{}}
	root := doc.Content[0]
	err := eachKey(root, "", map[string]func(key, value *yaml.Node, field string) error{
		"edge": func(_, v *yaml.Node, field string) error {
			var err error
			p.Edge, err = stringList(v, field, ca.ValidateServiceName)
			return err
		},
		"services": func(_, v *yaml.Node, field string) error {
			if v.Kind != yaml.MappingNode {
				return perr(v, field, "want a mapping of service names")
			}
			if len(v.Content)/2 > MaxServices {
				return perr(v, field, fmt.Sprintf("%d services, at most %d", len(v.Content)/2, MaxServices))
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k, sv := v.Content[i], v.Content[i+1]
				name := k.Value
				f := field + "." + name
				if k.Kind != yaml.ScalarNode {
					return perr(k, field, "service names must be strings")
				}
				if err := ca.ValidateServiceName(name); err != nil {
					return perr(k, f, strings.TrimPrefix(err.Error(), "ca: "))
				}
				if _, dup := p.Services[name]; dup {
					return perr(k, f, "service named twice")
				}
				sp, err := parseServicePolicy(sv, f)
				if err != nil {
					return err
				}
				p.Services[name] = sp
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func parseServicePolicy(n *yaml.Node, field string) (ServicePolicy, error) {
	var sp ServicePolicy
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return sp, nil // a service that allows nothing
	}
	err := eachKey(n, field, map[string]func(key, value *yaml.Node, field string) error{
		"allow": func(_, v *yaml.Node, f string) error {
			return eachItem(v, f, func(item *yaml.Node, f string) error {
				var r AllowRule
				err := eachKey(item, f, map[string]func(key, value *yaml.Node, field string) error{
					"callers": func(_, v *yaml.Node, f string) error {
						var err error
						r.Callers, err = stringList(v, f, func(s string) error {
							if s == "*" {
								return nil
							}
							return ca.ValidateServiceName(s)
						})
						return err
					},
					"methods": routeMethods(&r.Routes),
					"paths":   routePaths(&r.Routes),
					"actor": func(_, v *yaml.Node, f string) error {
						if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || (v.Value != string(ActorRequired) && v.Value != string(ActorOptional)) {
							return perr(v, f, "want required or optional")
						}
						r.Actor = ActorRule(v.Value)
						return nil
					},
				})
				if err != nil {
					return err
				}
				if len(r.Callers) == 0 {
					return perr(item, f+".callers", `missing: name the calling services, or "*"`)
				}
				sp.Allow = append(sp.Allow, r)
				return nil
			})
		},
		"sensitive": func(_, v *yaml.Node, f string) error {
			return eachItem(v, f, func(item *yaml.Node, f string) error {
				var r Routes
				err := eachKey(item, f, map[string]func(key, value *yaml.Node, field string) error{
					"methods": routeMethods(&r),
					"paths":   routePaths(&r),
				})
				if err != nil {
					return err
				}
				sp.Sensitive = append(sp.Sensitive, r)
				return nil
			})
		},
	})
	return sp, err
}

func routeMethods(r *Routes) func(key, value *yaml.Node, field string) error {
	return func(_, v *yaml.Node, f string) error {
		var err error
		r.Methods, err = stringList(v, f, func(s string) error {
			if !slices.Contains(httpMethods[:], s) {
				return fmt.Errorf("%q is not an HTTP method (want one of %s, in capitals)", s, strings.Join(httpMethods[:], ", "))
			}
			return nil
		})
		return err
	}
}

func routePaths(r *Routes) func(key, value *yaml.Node, field string) error {
	return func(_, v *yaml.Node, f string) error {
		var err error
		r.Paths, err = stringList(v, f, validatePathPattern)
		return err
	}
}

// validatePathPattern checks a path pattern in the syntax of http.ServeMux:
// "/orders/{id}", "/files/{path...}", "/static/" (a prefix), "/{$}" (only
// "/"). It is stricter than ServeMux on names (ASCII identifiers) and on
// braces (a segment with either brace must be a wildcard).
func validatePathPattern(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q does not start with '/'", p)
	}
	if len(p) > 1024 {
		return fmt.Errorf("pattern of %d bytes, at most 1024", len(p))
	}
	segs := strings.Split(p[1:], "/")
	seen := map[string]bool{}
	for i, seg := range segs {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		name, ok := strings.CutPrefix(seg, "{")
		if ok {
			name, ok = strings.CutSuffix(name, "}")
		}
		if !ok || strings.ContainsAny(name, "{}") {
			return fmt.Errorf("%q: a wildcard must be a whole segment, like {id}", p)
		}
		if name == "$" {
			if i != len(segs)-1 {
				return fmt.Errorf("%q: {$} must be the last segment", p)
			}
			continue
		}
		if rest, multi := strings.CutSuffix(name, "..."); multi {
			if i != len(segs)-1 {
				return fmt.Errorf("%q: {%s} must be the last segment", p, name)
			}
			name = rest
		}
		if name == "" || !isIdent(name) {
			return fmt.Errorf("%q: wildcard name %q is not an identifier", p, name)
		}
		if seen[name] {
			return fmt.Errorf("%q: wildcard {%s} appears twice", p, name)
		}
		seen[name] = true
	}
	return nil
}

func isIdent(s string) bool {
	for i, r := range s {
		if !(r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// eachKey walks a mapping, calling the function for each known key; an
// unknown or repeated key is an error.
func eachKey(n *yaml.Node, field string, fns map[string]func(key, value *yaml.Node, field string) error) error {
	if n.Kind != yaml.MappingNode {
		keys := make([]string, 0, len(fns))
		for k := range fns {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return perr(n, field, "want a mapping with "+strings.Join(keys, ", "))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := k.Value
		if field != "" {
			f = field + "." + k.Value
		}
		fn, ok := fns[k.Value]
		if !ok || k.Kind != yaml.ScalarNode {
			return perr(k, f, "unknown field")
		}
		if seen[k.Value] {
			return perr(k, f, "field given twice")
		}
		seen[k.Value] = true
		if err := fn(k, v, f); err != nil {
			return err
		}
	}
	return nil
}

func eachItem(n *yaml.Node, field string, fn func(item *yaml.Node, field string) error) error {
	if n.Kind != yaml.SequenceNode {
		return perr(n, field, "want a list")
	}
	for i, item := range n.Content {
		if err := fn(item, field+"["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	return nil
}

func stringList(n *yaml.Node, field string, check func(string) error) ([]string, error) {
	var out []string
	err := eachItem(n, field, func(item *yaml.Node, f string) error {
		if item.Kind != yaml.ScalarNode || item.Tag != "!!str" {
			return perr(item, f, "want a string")
		}
		if err := check(item.Value); err != nil {
			return perr(item, f, strings.TrimPrefix(err.Error(), "ca: "))
		}
		out = append(out, item.Value)
		return nil
	})
	if err == nil && len(out) == 0 {
		return nil, perr(n, field, "empty list (omit the field to mean all)")
	}
	return out, err
}

func perr(n *yaml.Node, field, reason string) error {
	return &Error{Line: n.Line, Field: field, Reason: reason}
}

// yamlError turns a YAML syntax error into a *Error with its line.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil {
				line, msg = l, after
			}
		}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	return &Error{Line: line, Reason: "invalid YAML: " + msg}
}
