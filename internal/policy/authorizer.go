package policy

import (
	"net/url"
	"slices"
	"strings"

	"github.com/rampartsec/rampart/internal/ca"
)

// An Authorizer decides the requests one service receives: which callers
// may call which of its routes, and which of its routes are sensitive.
// [Policy.Compile] makes one; it is immutable and safe for concurrent use.
// A nil *Authorizer allows no call and has no sensitive route.
//
// Routes match as they would in an http.ServeMux, with these choices:
//
//   - A rule, allow or sensitive, for GET also covers HEAD, as a GET
//     pattern does in ServeMux: HEAD is GET without the body, and a handler
//     registered for GET serves it.
//   - Methods are case-sensitive, as in ServeMux: "get" is not GET, and only
//     rules without methods cover it.
//   - {name} matches one non-empty segment; {name...} matches the rest of
//     the path, possibly empty ("/files/{p...}" matches "/files/" but not
//     "/files"); a pattern ending in "/" is a prefix in the same way;
//     "/a/{$}" matches "/a/" only.
//   - Rules are a union: a call is allowed when any rule allows it, and a
//     route is sensitive when any rule names it. ServeMux's precedence
//     (the most specific pattern wins) chooses a handler, not a permission,
//     so it does not apply.
//   - A pattern that can never match a clean path ("/a//b", "/a/../b"),
//     or that Parse would refuse, matches nothing, as in ServeMux.
//
// The path is the decoded path a handler sees, r.URL.Path, of a request
// that [CanonicalPath] accepted. Allow refuses, and Sensitive reports as
// sensitive, a path that is not clean (empty, "." or ".." segments), so a
// caller that skipped CanonicalPath fails closed on those; but only
// CanonicalPath can see an encoded slash, which u.Path has already turned
// into a separator.
type Authorizer struct {
	callers   map[string]int32 // the callers that rules name → their ids
	rules     [][]int32        // per allow rule, the ids of its callers, ascending
	allow     tries
	sensitive tries
	actor     tries // routes that require an actor token
}

// tries holds a trie of path patterns per method: one for each of
// httpMethods, in that order, and one for every other method.
type tries [otherMethod + 1]*node

const otherMethod = len(httpMethods)

// methodIndex returns the index of m in httpMethods, or otherMethod. A
// switch is faster than a map; a test checks that it follows httpMethods.
func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "OPTIONS":
		return 6
	case "CONNECT":
		return 7
	case "TRACE":
		return 8
	}
	return otherMethod
}

// A node is a position in a trie of path patterns, after some segments.
type node struct {
	// The next segment as a literal, unescaped ("" is the trailing slash
	// of {$}): in keys and kids while there are few, which is faster to
	// search than a map, and in a map beyond maxScan.
	keys []string
	kids []*node
	big  map[string]*node

	param *node // the next segment is a {name}
	end   *leaf // patterns ending here, matching when the path does
	rest  *leaf // patterns with {name...} or a trailing slash here, matching any non-empty rest
}

const maxScan = 8

// literal returns the child for the segment seg, or nil.
func (n *node) literal(seg string) *node {
	if n.big != nil {
		return n.big[seg]
	}
	for i, k := range n.keys {
		if k == seg {
			return n.kids[i]
		}
	}
	return nil
}

// addLiteral returns the child for seg, adding it if needed.
func (n *node) addLiteral(seg string) *node {
	if c := n.literal(seg); c != nil {
		return c
	}
	c := &node{}
	switch {
	case n.big != nil:
		n.big[seg] = c
	case len(n.keys) < maxScan:
		n.keys, n.kids = append(n.keys, seg), append(n.kids, c)
	default:
		n.big = make(map[string]*node, 2*maxScan)
		for i, k := range n.keys {
			n.big[k] = n.kids[i]
		}
		n.big[seg] = c
		n.keys, n.kids = nil, nil
	}
	return c
}

// A leaf lists the rules of the patterns that end at a node.
type leaf struct {
	any   bool    // a rule for "*" ends here; so does every sensitive rule
	rules []int32 // the other allow rules that end here, ascending
}

// admits reports whether a rule at l admits the caller id; l may be nil.
func (l *leaf) admits(rules [][]int32, id int32) bool {
	if l == nil {
		return false
	}
	if l.any {
		return true
	}
	if id < 0 {
		return false
	}
	for _, r := range l.rules {
		if _, found := slices.BinarySearch(rules[r], id); found {
			return true
		}
	}
	return false
}

// Compile prepares the part of p that concerns the service self. A service
// that p does not name accepts no calls. A nil p allows nothing. p should
// come from Parse: a method or pattern that Parse would refuse matches
// nothing. The Authorizer takes memory linear in the size of self's rules
// (at most ten times, for rules that list no method).
func (p *Policy) Compile(self string) *Authorizer {
	a := &Authorizer{callers: map[string]int32{}}
	if p == nil {
		return a
	}
	sp := p.Services[self]
	edge := p.Edge
	if edge == nil {
		edge = DefaultEdge
	}
	for i, r := range sp.Allow {
		rule := int32(i)
		var ids []int32
		everyone := false
		for _, c := range r.Callers {
			if c == "*" {
				everyone = true
				continue
			}
			id, ok := a.callers[c]
			if !ok {
				id = int32(len(a.callers))
				a.callers[c] = id
			}
			ids = append(ids, id)
		}
		slices.Sort(ids)
		a.rules = append(a.rules, slices.Compact(ids))
		a.allow.add(r.Routes, func(l *leaf) {
			if everyone {
				l.any = true
			} else if n := len(l.rules); n == 0 || l.rules[n-1] != rule {
				l.rules = append(l.rules, rule)
			}
		})
		fromEdge := everyone || slices.ContainsFunc(r.Callers, func(c string) bool { return slices.Contains(edge, c) })
		if r.Actor == ActorRequired || r.Actor == ActorDefault && fromEdge {
			a.actor.add(r.Routes, func(l *leaf) { l.any = true })
		}
	}
	for _, r := range sp.Sensitive {
		a.sensitive.add(r, func(l *leaf) { l.any = true })
		a.actor.add(r, func(l *leaf) { l.any = true })
	}
	return a
}

// Reach returns the SPIFFE service names that a request entering at
// service can reach by the policy's allow rules: service itself, the
// services that allow it to call them, those that allow those, and so on
// ("*" admits every caller). Sorted. The gateway names them in the
// audience of the actor tokens it mints for service, so that no service
// outside the request's possible path accepts its token.
func (p *Policy) Reach(service string) []string {
	reached := map[string]bool{service: true}
	queue := []string{service}
	if p != nil {
		for len(queue) > 0 {
			caller := queue[0]
			queue = queue[1:]
			for name, sp := range p.Services {
				if reached[name] {
					continue
				}
				for _, r := range sp.Allow {
					if slices.Contains(r.Callers, caller) || slices.Contains(r.Callers, "*") {
						reached[name] = true
						queue = append(queue, name)
						break
					}
				}
			}
		}
	}
	out := make([]string, 0, len(reached))
	for name := range reached {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// add inserts the patterns of r into the tries of its methods, calling
// mark on the leaf of each.
func (t *tries) add(r Routes, mark func(*leaf)) {
	var methods []int
	if len(r.Methods) == 0 {
		for i := range t {
			methods = append(methods, i)
		}
	}
	for _, m := range r.Methods {
		i := methodIndex(m)
		if i == otherMethod {
			continue // not a method Parse accepts: its trie is for rules without methods
		}
		methods = append(methods, i)
		if m == "GET" {
			methods = append(methods, methodIndex("HEAD"))
		}
	}
	paths := r.Paths
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	for _, m := range methods {
		if t[m] == nil {
			t[m] = &node{}
		}
		for _, p := range paths {
			if l := t[m].insert(p); l != nil {
				mark(l)
			}
		}
	}
}

// insert adds the pattern p and returns its leaf, or nil if p is not a
// valid pattern.
func (n *node) insert(p string) *leaf {
	if validatePathPattern(p) != nil {
		return nil
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		last := i == len(segs)-1
		switch {
		case last && (seg == "" || strings.HasSuffix(seg, "...}")):
			if n.rest == nil {
				n.rest = &leaf{}
			}
			return n.rest
		case seg == "{$}":
			seg = ""
		case strings.HasPrefix(seg, "{"):
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
			continue
		default:
			if u, err := url.PathUnescape(seg); err == nil {
				seg = u // as ServeMux does; an invalid escape stays as written
			}
		}
		n = n.addLiteral(seg)
	}
	if n.end == nil {
		n.end = &leaf{}
	}
	return n.end
}

// Allow reports whether caller, the service name in the caller's SPIFFE ID,
// may call method on path. The path is r.URL.Path of a request that
// CanonicalPath accepted; a path that is not clean is refused.
func (a *Authorizer) Allow(caller, method, path string) bool {
	if a == nil || path == "" || path[0] != '/' || !validServiceName(caller) {
		return false
	}
	id, ok := a.callers[caller]
	if !ok {
		id = -1 // only rules for "*" admit it
	}
	return a.allow[methodIndex(method)].match(path, a.rules, id)
}

// Sensitive reports whether method on path is a sensitive route: one that
// an actor under a block-sensitive decision may not call. The path is as
// for Allow; a path that is not clean is sensitive.
func (a *Authorizer) Sensitive(method, path string) bool {
	if path == "" || path[0] != '/' {
		return true
	}
	if a != nil && a.sensitive[methodIndex(method)].match(path, nil, -1) { // every sensitive leaf is any
		return true
	}
	return !clean(path)
}

// ActorRequired reports whether a call of method on path must carry an
// actor token: the route is sensitive, or an allow rule that covers it
// requires an actor (see Policy). The path is as for Allow; a path that is
// not clean requires one.
func (a *Authorizer) ActorRequired(method, path string) bool {
	if path == "" || path[0] != '/' {
		return true
	}
	if a != nil && a.actor[methodIndex(method)].match(path, nil, -1) {
		return true
	}
	return !clean(path)
}

// validServiceName reports whether ca.ValidateServiceName accepts name,
// without making the error that Allow has no use for.
func validServiceName(name string) bool {
	if name == "" || len(name) > ca.MaxServiceNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// match reports whether a pattern in the trie at n matches path, the rest
// of an absolute path (empty, or starting with '/'), with a leaf that
// admits the caller id (-1: a caller no rule names). It is false when the
// path is not clean: it checks each segment it reads, and the rest of the
// path when a {name...} ends the match, so that Allow reads the path once.
//
// Each node is visited at most once: a trie node stands for one sequence
// of pattern segments, which consumes a fixed number of path segments.
func (n *node) match(path string, rules [][]int32, id int32) bool {
	for n != nil {
		if path == "" {
			return n.end.admits(rules, id)
		}
		if n.rest.admits(rules, id) {
			return clean(path)
		}
		seg, rest := path[1:], ""
		for i := 0; i < len(seg); i++ {
			if seg[i] == '/' {
				seg, rest = seg[:i], seg[i:]
				break
			}
		}
		switch len(seg) {
		case 0:
			if rest != "" {
				return false // "//"
			}
		case 1:
			if seg[0] == '.' {
				return false
			}
		case 2:
			if seg[0] == '.' && seg[1] == '.' {
				return false
			}
		}
		lit := n.literal(seg)
		if n.param == nil || seg == "" { // a {name} never matches the trailing slash
			n, path = lit, rest
			continue
		}
		if lit.match(rest, rules, id) {
			return true
		}
		n, path = n.param, rest
	}
	return false
}

// clean reports whether path is absolute and clean in the sense of
// ServeMux, which redirects other paths: no empty segment except a
// trailing slash, no "." or "..".
func clean(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	for rest := path[1:]; ; {
		seg, more := rest, false
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest, more = rest[:i], rest[i+1:], true
		}
		switch len(seg) {
		case 0:
			if more {
				return false
			}
		case 1:
			if seg[0] == '.' {
				return false
			}
		case 2:
			if seg[0] == '.' && seg[1] == '.' {
				return false
			}
		}
		if !more {
			return true
		}
	}
}

// CanonicalPath returns u.Path, the path to give Allow and Sensitive, and
// whether a request for u may be decided on it. It refuses the paths that
// a router could read differently from the Authorizer:
//
//   - a path that is not clean ("//", "/./", "/../", or their encoded
//     spellings such as "/%2e%2e/"), which ServeMux answers with a redirect
//     and other routers may route as written;
//   - an encoded slash ("%2F"), which u.Path shows as a separator while
//     ServeMux, and routers that match the escaped path, read it as part of
//     a segment: "/public%2Fb/c" is "/public/b/c" to u.Path but matches
//     "/{tenant}/c" in ServeMux.
//
// A middleware answers 400 Bad Request to a refused path.
func CanonicalPath(u *url.URL) (string, bool) {
	if !clean(u.Path) {
		return u.Path, false
	}
	if strings.Contains(u.RawPath, "%2F") || strings.Contains(u.RawPath, "%2f") {
		return u.Path, false
	}
	return u.Path, true
}
