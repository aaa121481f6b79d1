package detect

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"
)

// An exception exempts the events whose fields match one of its value
// tuples, in the form of Falco's rule exceptions:
//
//	exceptions:
//	  - name: office_nat
//	    fields: [evt.actor.ip, evt.route]
//	    comps: [in_cidr, "="]
//	    values:
//	      - ["198.51.100.0/24", "POST /login"]
//
// A tuple matches when every field matches its value by its comparison:
// "=" (the default), "!=", "startswith", "endswith", "contains", "in" (the
// value is a list) or "in_cidr" (a network or a list of them). fields may
// be a single field, and then each value is a single value.
type exception struct {
	name   string
	fields []*vm.Program
	comps  []string
	values [][]matcher
}

type matcher struct {
	strs     []string
	prefixes []netip.Prefix
}

var exceptionComps = []string{"=", "!=", "startswith", "endswith", "contains", "in", "in_cidr"}

func compileExceptions(file string, n *yaml.Node) ([]exception, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, &LoadError{File: file, Line: n.Line, Field: "exceptions", Err: errors.New("expected a list")}
	}
	var out []exception
	for i, en := range n.Content {
		prefix := fmt.Sprintf("exceptions[%d].", i)
		fs, err := newFieldSet(file, prefix, en, "name", "fields", "comps", "values")
		if err != nil {
			return nil, err
		}
		x := exception{}
		if x.name, err = fs.str("name"); err != nil {
			return nil, err
		}
		if x.name == "" {
			return nil, fs.err("name", errors.New("required"))
		}
		fn := fs.fields["fields"]
		if fn == nil {
			return nil, fs.err("fields", errors.New("required"))
		}
		single := fn.Kind == yaml.ScalarNode
		fieldNodes := []*yaml.Node{fn}
		if !single {
			if fn.Kind != yaml.SequenceNode || len(fn.Content) == 0 {
				return nil, fs.err("fields", errors.New("expected a field or a list of them"))
			}
			fieldNodes = fn.Content
		}
		for _, f := range fieldNodes {
			if f.Kind != yaml.ScalarNode {
				return nil, &LoadError{File: file, Line: f.Line, Field: prefix + "fields", Err: errors.New("expected a field name")}
			}
			p, err := compileExpr(f.Value, eventEnv{}, reflect.Invalid, func(err error) error {
				return &LoadError{File: file, Line: f.Line, Field: prefix + "fields", Err: err}
			})
			if err != nil {
				return nil, err
			}
			x.fields = append(x.fields, p)
		}
		x.comps = slices.Repeat([]string{"="}, len(x.fields))
		if cn := fs.fields["comps"]; cn != nil {
			comps := []*yaml.Node{cn}
			if cn.Kind == yaml.SequenceNode {
				comps = cn.Content
			}
			if len(comps) != len(x.fields) {
				return nil, fs.err("comps", fmt.Errorf("%d comparisons for %d fields", len(comps), len(x.fields)))
			}
			for j, c := range comps {
				if c.Kind != yaml.ScalarNode || !slices.Contains(exceptionComps, c.Value) {
					return nil, &LoadError{File: file, Line: c.Line, Field: prefix + "comps",
						Err: fmt.Errorf("%q: expected one of %s", c.Value, strings.Join(exceptionComps, " "))}
				}
				x.comps[j] = c.Value
			}
		}
		vn := fs.fields["values"]
		if vn == nil || vn.Kind != yaml.SequenceNode {
			return nil, fs.err("values", errors.New("required: a list of value tuples"))
		}
		for _, tn := range vn.Content {
			tuple := []*yaml.Node{tn}
			if !single {
				if tn.Kind != yaml.SequenceNode || len(tn.Content) != len(x.fields) {
					return nil, &LoadError{File: file, Line: tn.Line, Field: prefix + "values",
						Err: fmt.Errorf("expected a list of %d values, one per field", len(x.fields))}
				}
				tuple = tn.Content
			}
			var ms []matcher
			for j, v := range tuple {
				m, err := compileMatcher(x.comps[j], v)
				if err != nil {
					return nil, &LoadError{File: file, Line: v.Line, Field: prefix + "values", Err: err}
				}
				ms = append(ms, m)
			}
			x.values = append(x.values, ms)
		}
		out = append(out, x)
	}
	return out, nil
}

func compileMatcher(comp string, v *yaml.Node) (matcher, error) {
	var strs []string
	switch v.Kind {
	case yaml.ScalarNode:
		strs = []string{v.Value}
	case yaml.SequenceNode:
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode {
				return matcher{}, errors.New("expected a value or a list of values")
			}
			strs = append(strs, e.Value)
		}
	default:
		return matcher{}, errors.New("expected a value or a list of values")
	}
	if len(strs) != 1 && comp != "in" && comp != "in_cidr" {
		return matcher{}, fmt.Errorf("comparison %q takes one value", comp)
	}
	m := matcher{strs: strs}
	if comp == "in_cidr" {
		for _, s := range strs {
			p, err := parsePrefix(s)
			if err != nil {
				return matcher{}, err
			}
			m.prefixes = append(m.prefixes, p)
		}
	}
	return m, nil
}

// parsePrefix reads a network, or an address as the network of itself.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// exempts says whether one of the tuples matches the event in env.
func (x *exception) exempts(m *vm.VM, env *eventEnv) bool {
	got := make([]string, len(x.fields))
	for i, f := range x.fields {
		v, err := m.Run(f, env)
		if err != nil {
			return false
		}
		got[i] = asString(v)
	}
	for _, tuple := range x.values {
		if x.tupleMatches(got, tuple) {
			return true
		}
	}
	return false
}

func (x *exception) tupleMatches(got []string, tuple []matcher) bool {
	for i, m := range tuple {
		g := got[i]
		var ok bool
		switch x.comps[i] {
		case "=":
			ok = g == m.strs[0]
		case "!=":
			ok = g != m.strs[0]
		case "startswith":
			ok = strings.HasPrefix(g, m.strs[0])
		case "endswith":
			ok = strings.HasSuffix(g, m.strs[0])
		case "contains":
			ok = strings.Contains(g, m.strs[0])
		case "in":
			ok = slices.Contains(m.strs, g)
		case "in_cidr":
			if a, err := netip.ParseAddr(g); err == nil {
				a = a.Unmap().WithZone("")
				ok = slices.ContainsFunc(m.prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// asString is an expression's value as exceptions, keys and distinct
// values compare it.
func asString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
