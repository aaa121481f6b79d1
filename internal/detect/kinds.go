package detect

import (
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// filterKinds reads from a filter the event kinds it can match, when its
// syntax says so: `evt.kind == "x"`, `evt.kind in ["x", "y"]`, and those
// joined by && (intersected) or || (united). ok is false when the filter
// may match any kind. The engine runs a scenario only for its kinds,
// which spares most scenarios most events (evaluating a filter costs far
// more than a map lookup).
func filterKinds(src string) (kinds []string, ok bool) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, false
	}
	return kindsOf(tree.Node)
}

func kindsOf(n ast.Node) ([]string, bool) {
	b, isBinary := n.(*ast.BinaryNode)
	if !isBinary {
		return nil, false
	}
	switch b.Operator {
	case "&&", "and":
		l, lok := kindsOf(b.Left)
		r, rok := kindsOf(b.Right)
		switch {
		case lok && rok:
			return slices.DeleteFunc(l, func(k string) bool { return !slices.Contains(r, k) }), true
		case lok:
			return l, true
		case rok:
			return r, true
		}
	case "||", "or":
		l, lok := kindsOf(b.Left)
		r, rok := kindsOf(b.Right)
		if lok && rok {
			return append(l, r...), true
		}
	case "==":
		if isEvtKind(b.Left) {
			if s, ok := b.Right.(*ast.StringNode); ok {
				return []string{s.Value}, true
			}
		}
		if isEvtKind(b.Right) {
			if s, ok := b.Left.(*ast.StringNode); ok {
				return []string{s.Value}, true
			}
		}
	case "in":
		if arr, ok := b.Right.(*ast.ArrayNode); ok && isEvtKind(b.Left) {
			var out []string
			for _, e := range arr.Nodes {
				s, ok := e.(*ast.StringNode)
				if !ok {
					return nil, false
				}
				out = append(out, s.Value)
			}
			return out, true
		}
	}
	return nil, false
}

// filterAfterKinds returns the filter src without its conditions on the
// event's kind, when src is a chain of && whose operands include such
// conditions (evt.kind == "x", evt.kind in [...], or those joined by ||
// and &&) and others: the engine runs a scenario only for its kinds
// (filterKinds), so those conditions hold whenever it runs, and each
// costs a field read that allocates. ok is false when there is nothing
// to drop or nothing would be left.
func filterAfterKinds(src string) (rest string, ok bool) {
	tree, err := parser.Parse(src)
	if err != nil {
		return "", false
	}
	var operands []ast.Node
	var flatten func(n ast.Node)
	flatten = func(n ast.Node) {
		if b, isBinary := n.(*ast.BinaryNode); isBinary && (b.Operator == "&&" || b.Operator == "and") {
			flatten(b.Left)
			flatten(b.Right)
			return
		}
		operands = append(operands, n)
	}
	flatten(tree.Node)
	var kept []string
	for _, o := range operands {
		if !onlyKind(o) {
			kept = append(kept, "("+o.String()+")")
		}
	}
	if len(kept) == 0 || len(kept) == len(operands) {
		return "", false
	}
	return strings.Join(kept, " && "), true
}

// onlyKind reports whether n is a condition on evt.kind alone.
func onlyKind(n ast.Node) bool {
	b, isBinary := n.(*ast.BinaryNode)
	if !isBinary {
		return false
	}
	switch b.Operator {
	case "&&", "and", "||", "or":
		return onlyKind(b.Left) && onlyKind(b.Right)
	}
	_, ok := kindsOf(n)
	return ok
}

func isEvtKind(n ast.Node) bool {
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Optional {
		return false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	prop, ok2 := m.Property.(*ast.StringNode)
	return ok && ok2 && id.Value == "evt" && prop.Value == "kind"
}
