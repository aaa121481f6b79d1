package detect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"
)

// Type is how a scenario turns events into alerts.
type Type string

// Scenario types.
const (
	// Leaky: a bucket per key fills by one (or by the weight) per event,
	// or by one per new distinct value, and leaks one per leakspeed; the
	// event that takes it over capacity raises the alert.
	Leaky Type = "leaky"
	// Trigger: every event that passes the filter raises the alert (the
	// blackhole keeps a key from raising it again at once).
	Trigger Type = "trigger"
	// Conditional: a leaky bucket whose alert is raised by the event for
	// which condition holds, with count the bucket's level before it (for
	// example a login success after failures).
	Conditional Type = "conditional"
)

// Scope is what a decision names. Range is the /24 (IPv4) or /64 (IPv6)
// network of an address: the decision API calls it a cidr.
type Scope string

// Scopes.
const (
	ScopeIP      Scope = "ip"
	ScopeRange   Scope = "range"
	ScopeUser    Scope = "user"
	ScopeSession Scope = "session"
	ScopeDevice  Scope = "device"
)

// Action is what a decision does; the values are the decision API's.
type Action string

// Actions, from the strongest.
const (
	Block          Action = "block"
	BlockSensitive Action = "block-sensitive"
	ReadOnly       Action = "read-only"
	RateLimit      Action = "rate-limit"
)

// Scenario is one compiled scenario: what the YAML said, with its
// expressions compiled once against the event's type, so that a typo in a
// field name is an error at load, never a silent mismatch at run time.
type Scenario struct {
	Name        string
	Description string
	Type        Type
	Capacity    int
	Leakspeed   time.Duration
	// Blackhole is how long a key is silent after an alert. Unset in the
	// YAML, it is the TTL of the decision the alert made (after
	// escalation), or 1m for a scenario without a response.
	Blackhole time.Duration
	Response  *Response // nil: alerts only, no decision
	Members   *Members  // nil: one decision per alert, against the overflowing event's actor
	File      string    // where it was loaded from ("builtin:NAME.yaml" for a built-in)
	Line      int

	filter, groupby, distinct, weight, cancelOn, condition, value *vm.Program
	sequence                                                      *vm.Program
	filterRest                                                    *vm.Program // the filter without its conditions on the kind (filterAfterKinds)
	exceptions                                                    []exception
	blackholeIsTTL                                                bool
	kinds                                                         []string // nil: any
	membersClear                                                  *vm.Program
	source                                                        string // the YAML document, to tell a changed scenario on reload
}

// Response is the decision an alert asks for.
type Response struct {
	Scope      Scope
	Action     Action
	TTL        time.Duration
	RateLimit  int // requests per minute for RateLimit; 0: the enforcer's default
	Escalation *Escalation
	// Simulate: the alert and its decision are recorded and shown, not
	// enforced.
	Simulate bool
}

// Escalation lengthens the decision's TTL each time the same actor is
// decided on again by the same scenario: TTL × Factor^repeats, at most Max.
type Escalation struct {
	Factor float64
	Max    time.Duration
	// Memory is how long after a decision expires a new one counts as
	// a repeat (default: Max).
	Memory time.Duration
}

// Members makes a scenario decide against each actor of a campaign rather
// than its key: the key is the target (a login surface), the members are
// the decision values (addresses) of the events poured into it. When the
// bucket overflows, every member with at least Min events gets a decision;
// while the campaign lasts (the blackhole), a new member gets one when it
// reaches Min. An event that matches members.clear_on (for example a
// login success) clears its member: it is not decided in this campaign.
type Members struct {
	Min int
	Max int // members tracked per bucket
}

// LoadError is an error in a scenario file: where, and which field.
type LoadError struct {
	File  string
	Line  int
	Field string
	Err   error
}

// Error says file:line: field: what is wrong, the form editors and CI
// logs link to.
func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *LoadError) Unwrap() error { return e.Err }

// Parse compiles the scenarios of one YAML file (several documents may be
// separated by ---). file names the source in errors.
func Parse(file string, data []byte) ([]*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*Scenario
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &LoadError{File: file, Line: yamlErrorLine(err), Err: err}
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		s, err := compileScenario(file, root)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(out, func(o *Scenario) bool { return o.Name == s.Name }) {
			return nil, &LoadError{File: file, Line: s.Line, Field: "name", Err: fmt.Errorf("scenario %q defined twice", s.Name)}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, &LoadError{File: file, Err: errors.New("no scenario")}
	}
	return out, nil
}

// LoadFile reads and compiles one scenario file.
func LoadFile(path string) ([]*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	return Parse(path, data)
}

// LoadDir compiles every *.yaml and *.yml file of dir, in name order. Two
// scenarios of the same name are an error.
func LoadDir(dir string) ([]*Scenario, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	var out []*Scenario
	for _, e := range entries {
		if e.IsDir() || (!strings.HasSuffix(e.Name(), ".yaml") && !strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		ss, err := LoadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			if i := slices.IndexFunc(out, func(o *Scenario) bool { return o.Name == s.Name }); i >= 0 {
				return nil, &LoadError{File: s.File, Line: s.Line, Field: "name",
					Err: fmt.Errorf("scenario %q already defined in %s:%d", s.Name, out[i].File, out[i].Line)}
			}
		}
		out = append(out, ss...)
	}
	return out, nil
}

// yamlErrorLine finds the line in a YAML syntax error ("yaml: line 3:
// ..."), 0 if it names none.
func yamlErrorLine(err error) int {
	_, rest, ok := strings.Cut(err.Error(), "line ")
	if !ok {
		return 0
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	n, _ := strconv.Atoi(rest[:end])
	return n
}

// The environments expressions are compiled against and run with.
type eventEnv struct {
	Evt *Event `expr:"evt"`
}

type condEnv struct {
	Evt   *Event  `expr:"evt"`
	Count float64 `expr:"count"` // the events in the bucket before this one (whole events leak)
}

// exprOptions are the functions scenarios may call besides expr's
// built-ins.
var exprOptions = []expr.Option{
	expr.Function("ip_range", func(p ...any) (any, error) { return ipRange(p[0].(string)), nil },
		new(func(string) string)),
	expr.Function("in_cidr", func(p ...any) (any, error) { return inCIDR(p[0].(string), p[1].(string)), nil },
		new(func(string, string) bool)),
	expr.Function("key", func(p ...any) (any, error) { return joinKey(p), nil },
		new(func(...string) string)),
	expr.MaxNodes(2000),
}

// joinKey joins a key's parts with a space, or is "" when a part is
// empty: a key that names an actor field never groups the events that
// lack it (an unverified user is blanked, see Event). A part that holds a
// space, a double quote or a backslash, or that is not valid UTF-8, is
// written Go-quoted (strconv.Quote), so that the encoding is unambiguous:
// key("a b", "c") and key("a", "b c") are two keys ("\"a b\" c" and
// "a \"b c\""), where joined plainly both would be "a b c" and an
// attacker who chooses a login name could share a victim's bucket. Parts
// of other text, which is what keys hold, are written as they are.
func joinKey(parts []any) string {
	n := 0
	for _, p := range parts {
		s, _ := p.(string)
		if s == "" {
			return ""
		}
		n += len(s) + 1
	}
	var b strings.Builder
	b.Grow(n)
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(' ')
		}
		s := p.(string)
		if needsQuote(s) {
			b.WriteString(strconv.Quote(s))
		} else {
			b.WriteString(s)
		}
	}
	return b.String()
}

// needsQuote says whether a key part must be quoted to keep key()
// unambiguous.
func needsQuote(s string) bool {
	return strings.ContainsAny(s, " \"\\") || !utf8.ValidString(s)
}

// ipRange is the /24 of an IPv4 address or the /64 of an IPv6 one, ""
// for what is not an address.
func ipRange(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

func inCIDR(ip, cidr string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false
	}
	return p.Contains(a.Unmap().WithZone(""))
}

// fieldSet reads a YAML mapping by field, remembering lines, and
// reports unknown and repeated fields.
type fieldSet struct {
	file   string
	prefix string
	fields map[string]*yaml.Node
	lines  map[string]int
	line   int
}

func newFieldSet(file, prefix string, n *yaml.Node, known ...string) (*fieldSet, error) {
	if n.Kind != yaml.MappingNode {
		return nil, &LoadError{File: file, Line: n.Line, Field: strings.TrimSuffix(prefix, "."), Err: errors.New("expected a mapping")}
	}
	fs := &fieldSet{file: file, prefix: prefix, fields: map[string]*yaml.Node{}, lines: map[string]int{}, line: n.Line}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(known, k.Value) {
			return nil, &LoadError{File: file, Line: k.Line, Field: prefix + k.Value,
				Err: fmt.Errorf("unknown field (known: %s)", strings.Join(known, ", "))}
		}
		if _, dup := fs.fields[k.Value]; dup {
			return nil, &LoadError{File: file, Line: k.Line, Field: prefix + k.Value, Err: errors.New("field given twice")}
		}
		fs.fields[k.Value], fs.lines[k.Value] = v, k.Line
	}
	return fs, nil
}

func (fs *fieldSet) err(field string, err error) error {
	line := fs.lines[field]
	if line == 0 {
		line = fs.line
	}
	return &LoadError{File: fs.file, Line: line, Field: fs.prefix + field, Err: err}
}

func (fs *fieldSet) has(field string) bool { return fs.fields[field] != nil }

func (fs *fieldSet) str(field string) (string, error) {
	n := fs.fields[field]
	if n == nil {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", fs.err(field, errors.New("expected a string"))
	}
	return n.Value, nil
}

func (fs *fieldSet) integer(field string) (int, error) {
	n := fs.fields[field]
	if n == nil {
		return 0, nil
	}
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 {
		return 0, fs.err(field, fmt.Errorf("expected a non-negative integer, got %q", n.Value))
	}
	return v, nil
}

func (fs *fieldSet) boolean(field string) (bool, error) {
	n := fs.fields[field]
	if n == nil {
		return false, nil
	}
	switch n.Value {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fs.err(field, fmt.Errorf("expected true or false, got %q", n.Value))
}

func (fs *fieldSet) duration(field string) (time.Duration, error) {
	s, err := fs.str(field)
	if err != nil || s == "" {
		return 0, err
	}
	d, err := parseDuration(s)
	if err != nil {
		return 0, fs.err(field, err)
	}
	return d, nil
}

// parseDuration is time.ParseDuration plus a "d" unit of 24 hours, which
// decision TTLs need.
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q (examples: 30s, 10m, 4h, 7d)", s)
	}
	return d, nil
}

// program compiles field's expression, which must give a value of kind
// want (reflect.Invalid: any).
func (fs *fieldSet) program(field string, env any, want reflect.Kind) (*vm.Program, error) {
	src, err := fs.str(field)
	if err != nil || src == "" {
		return nil, err
	}
	return compileExpr(src, env, want, func(err error) error { return fs.err(field, err) })
}

func compileExpr(src string, env any, want reflect.Kind, wrap func(error) error) (*vm.Program, error) {
	opts := append([]expr.Option{expr.Env(env)}, exprOptions...)
	switch want {
	case reflect.Bool:
		opts = append(opts, expr.AsBool())
	case reflect.Float64:
		opts = append(opts, expr.AsFloat64())
	case reflect.String:
		opts = append(opts, expr.AsKind(reflect.String))
	}
	p, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, wrap(fmt.Errorf("expression %q: %s", src, oneLine(err.Error())))
	}
	return p, nil
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

var scenarioFields = []string{"name", "description", "type", "filter", "groupby", "distinct", "sequence", "weight",
	"capacity", "leakspeed", "blackhole", "cancel_on", "condition", "members", "exceptions", "response"}

func compileScenario(file string, n *yaml.Node) (*Scenario, error) {
	fs, err := newFieldSet(file, "", n, scenarioFields...)
	if err != nil {
		return nil, err
	}
	src, _ := yaml.Marshal(n)
	s := &Scenario{File: file, Line: n.Line, source: string(src)}
	if s.Name, err = fs.str("name"); err != nil {
		return nil, err
	}
	if s.Name == "" {
		return nil, fs.err("name", errors.New("required"))
	}
	if strings.ContainsAny(s.Name, " \t\n\x00") {
		return nil, fs.err("name", fmt.Errorf("%q: no spaces", s.Name))
	}
	if s.Description, err = fs.str("description"); err != nil {
		return nil, err
	}
	typ, err := fs.str("type")
	if err != nil {
		return nil, err
	}
	s.Type = Type(typ)
	switch s.Type {
	case Leaky, Conditional:
	case Trigger:
		for _, f := range []string{"capacity", "leakspeed", "distinct", "sequence", "weight", "cancel_on", "condition", "members"} {
			if fs.has(f) {
				return nil, fs.err(f, errors.New("not used by type trigger"))
			}
		}
	case "":
		return nil, fs.err("type", errors.New("required: leaky, trigger or conditional"))
	default:
		return nil, fs.err("type", fmt.Errorf("%q: expected leaky, trigger or conditional", typ))
	}
	ev := eventEnv{}
	if s.filter, err = fs.program("filter", ev, reflect.Bool); err != nil {
		return nil, err
	}
	if s.filter == nil {
		return nil, fs.err("filter", errors.New("required"))
	}
	filterSrc, _ := fs.str("filter")
	if kinds, ok := filterKinds(filterSrc); ok {
		s.kinds = kinds
		if s.kinds == nil {
			s.kinds = []string{} // matches no kind
		}
		if rest, ok := filterAfterKinds(filterSrc); ok {
			// Compiled from the printed syntax tree; should that ever
			// fail, the whole filter runs.
			s.filterRest, _ = compileExpr(rest, ev, reflect.Bool, func(err error) error { return err })
		}
	}
	if s.groupby, err = fs.program("groupby", ev, reflect.String); err != nil {
		return nil, err
	}
	if s.groupby == nil {
		return nil, fs.err("groupby", errors.New("required"))
	}
	if s.distinct, err = fs.program("distinct", ev, reflect.String); err != nil {
		return nil, err
	}
	if s.weight, err = fs.program("weight", ev, reflect.Float64); err != nil {
		return nil, err
	}
	if s.distinct != nil && s.weight != nil {
		return nil, fs.err("weight", errors.New("not used with distinct (a new value weighs one)"))
	}
	if s.sequence, err = fs.program("sequence", ev, reflect.String); err != nil {
		return nil, err
	}
	if s.sequence != nil && (s.distinct != nil || s.weight != nil) {
		return nil, fs.err("sequence", errors.New("not used with distinct or weight (a step of the walk weighs one)"))
	}
	if s.cancelOn, err = fs.program("cancel_on", ev, reflect.Bool); err != nil {
		return nil, err
	}
	if s.condition, err = fs.program("condition", condEnv{}, reflect.Bool); err != nil {
		return nil, err
	}
	if s.Capacity, err = fs.integer("capacity"); err != nil {
		return nil, err
	}
	if s.Leakspeed, err = fs.duration("leakspeed"); err != nil {
		return nil, err
	}
	if s.Blackhole, err = fs.duration("blackhole"); err != nil {
		return nil, err
	}
	switch s.Type {
	case Leaky:
		if !fs.has("capacity") {
			return nil, fs.err("capacity", errors.New("required by type leaky"))
		}
		if fs.has("condition") {
			return nil, fs.err("condition", errors.New("only for type conditional"))
		}
	case Conditional:
		if s.condition == nil {
			return nil, fs.err("condition", errors.New("required by type conditional"))
		}
		if fs.has("capacity") {
			return nil, fs.err("capacity", errors.New("not used by type conditional: the condition says when (count is the level)"))
		}
	}
	if s.Type != Trigger && s.Leakspeed <= 0 {
		return nil, fs.err("leakspeed", fmt.Errorf("required by type %s, above zero", s.Type))
	}
	if n := fs.fields["exceptions"]; n != nil {
		if s.exceptions, err = compileExceptions(file, n); err != nil {
			return nil, err
		}
	}
	if n := fs.fields["response"]; n != nil {
		if s.Response, s.value, err = compileResponse(file, n); err != nil {
			return nil, err
		}
	}
	if n := fs.fields["members"]; n != nil {
		if s.Response == nil {
			return nil, fs.err("members", errors.New("needs a response: members are the values it decides on"))
		}
		if s.Members, s.membersClear, err = compileMembers(file, n); err != nil {
			return nil, err
		}
	}
	if !fs.has("blackhole") {
		// By default a key is silent while the decision it caused holds:
		// a second alert would only repeat the first.
		s.Blackhole = time.Minute
		if s.Response != nil && s.Response.TTL > 0 {
			s.Blackhole, s.blackholeIsTTL = s.Response.TTL, true
		}
	}
	return s, nil
}

func compileResponse(file string, n *yaml.Node) (*Response, *vm.Program, error) {
	fs, err := newFieldSet(file, "response.", n, "scope", "value", "action", "ttl", "rate_limit", "escalation", "simulate")
	if err != nil {
		return nil, nil, err
	}
	r := &Response{}
	scope, err := fs.str("scope")
	if err != nil {
		return nil, nil, err
	}
	r.Scope = Scope(scope)
	var def string
	switch r.Scope {
	case ScopeIP:
		def = "evt.actor.ip"
	case ScopeRange:
		def = "ip_range(evt.actor.ip)"
	case ScopeUser:
		def = "evt.actor.user"
	case ScopeSession:
		def = "evt.actor.session"
	case ScopeDevice:
		def = "evt.actor.device"
	case "":
		return nil, nil, fs.err("scope", errors.New("required: ip, range, user, session or device"))
	default:
		return nil, nil, fs.err("scope", fmt.Errorf("%q: expected ip, range, user, session or device", scope))
	}
	value, err := fs.program("value", eventEnv{}, reflect.String)
	if err != nil {
		return nil, nil, err
	}
	if value == nil {
		value, _ = compileExpr(def, eventEnv{}, reflect.String, func(err error) error { return err })
	}
	action, err := fs.str("action")
	if err != nil {
		return nil, nil, err
	}
	r.Action = Action(action)
	switch r.Action {
	case Block, BlockSensitive, ReadOnly, RateLimit:
	case "":
		return nil, nil, fs.err("action", errors.New("required: block, block-sensitive, read-only or rate-limit"))
	default:
		return nil, nil, fs.err("action", fmt.Errorf("%q: expected block, block-sensitive, read-only or rate-limit", action))
	}
	if r.TTL, err = fs.duration("ttl"); err != nil {
		return nil, nil, err
	}
	if r.TTL <= 0 {
		return nil, nil, fs.err("ttl", errors.New("required, above zero: a decision made by a machine must expire"))
	}
	if r.RateLimit, err = fs.integer("rate_limit"); err != nil {
		return nil, nil, err
	}
	if r.RateLimit > 0 && r.Action != RateLimit {
		return nil, nil, fs.err("rate_limit", errors.New("only for action rate-limit"))
	}
	if r.Simulate, err = fs.boolean("simulate"); err != nil {
		return nil, nil, err
	}
	if en := fs.fields["escalation"]; en != nil {
		efs, err := newFieldSet(file, "response.escalation.", en, "factor", "max", "memory")
		if err != nil {
			return nil, nil, err
		}
		e := &Escalation{Factor: 2}
		if efs.has("factor") {
			f, err := strconv.ParseFloat(efs.fields["factor"].Value, 64)
			if err != nil || f < 1 || f > 100 || math.IsNaN(f) {
				return nil, nil, efs.err("factor", fmt.Errorf("expected a number from 1 to 100, got %q", efs.fields["factor"].Value))
			}
			e.Factor = f
		}
		if e.Max, err = efs.duration("max"); err != nil {
			return nil, nil, err
		}
		if e.Max < r.TTL {
			return nil, nil, efs.err("max", fmt.Errorf("required, at least the ttl (%s)", r.TTL))
		}
		if e.Memory, err = efs.duration("memory"); err != nil {
			return nil, nil, err
		}
		if e.Memory == 0 {
			e.Memory = e.Max
		}
		r.Escalation = e
	}
	return r, value, nil
}

func compileMembers(file string, n *yaml.Node) (*Members, *vm.Program, error) {
	fs, err := newFieldSet(file, "members.", n, "min", "max", "clear_on")
	if err != nil {
		return nil, nil, err
	}
	clear, err := fs.program("clear_on", eventEnv{}, reflect.Bool)
	if err != nil {
		return nil, nil, err
	}
	m := &Members{Min: 1, Max: 4096}
	if fs.has("min") {
		if m.Min, err = fs.integer("min"); err != nil {
			return nil, nil, err
		}
		if m.Min < 1 {
			return nil, nil, fs.err("min", errors.New("at least 1"))
		}
	}
	if fs.has("max") {
		if m.Max, err = fs.integer("max"); err != nil {
			return nil, nil, err
		}
		if m.Max < 1 || m.Max > 1<<16 {
			return nil, nil, fs.err("max", errors.New("from 1 to 65536"))
		}
	}
	return m, clear, nil
}
