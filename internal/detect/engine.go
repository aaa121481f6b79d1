package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"
)

// DefaultMaxKeys is the number of keys a scenario keeps when Config says
// none: enough for a million actors, about a hundred bytes each.
const DefaultMaxKeys = 1 << 20

// maxKeyBytes bounds a bucket's key: a longer groupby value is cut and
// completed by its hash, so that attacker-made values cannot grow the
// state nor collide by sharing a prefix.
const maxKeyBytes = 128

// evidenceHead and evidenceTail are how many event ids an alert carries:
// the first and the last of its bucket.
const (
	evidenceHead = 10
	evidenceTail = 10
)

// Config is what an Engine runs.
type Config struct {
	Scenarios []*Scenario
	// MaxKeys bounds the keys (buckets) of each scenario, and the actors it
	// remembers for escalation; the least recently used is evicted.
	// 0: DefaultMaxKeys.
	MaxKeys int
	// Allow lists the actors no scenario alerts or decides against: their
	// events are not counted, and a decision that would name one (or a
	// range that holds one) is dropped with its alert.
	Allow []Allow
	// FixedHash hashes distinct values with a fixed, public function
	// instead of one keyed at random per engine, so that counts past 64
	// distinct values (HyperLogLog estimates) are the same in every run:
	// for fixtures and tests. In production it lets an attacker craft
	// values that undercount (see valueHasher).
	FixedHash bool
}

// Allow is one allowlist entry. For ScopeIP (and ScopeRange, the same)
// Value is an address or a network in CIDR notation; for the other scopes
// an exact value.
type Allow struct {
	Scope Scope  `json:"scope" yaml:"scope"`
	Value string `json:"value" yaml:"value"`
}

// ParseAllow reads an allowlist entry written "scope:value", for example
// "ip:198.51.100.0/24" or "user:support-bot".
func ParseAllow(s string) (Allow, error) {
	scope, value, ok := strings.Cut(s, ":")
	if !ok || value == "" {
		return Allow{}, fmt.Errorf("detect: allow %q: expected scope:value", s)
	}
	a := Allow{Scope: Scope(scope), Value: value}
	_, err := compileAllow([]Allow{a})
	return a, err
}

// Engine turns events into alerts. Process is safe to call from several
// goroutines (it serialises them); its answers depend only on the events
// and their times, never on the wall clock, so replaying stored events
// gives the alerts the first run gave.
type Engine struct {
	mu        sync.Mutex
	scenarios []*scenarioState
	byKind    map[string][]*scenarioState // the scenarios an event of a kind may match, in order
	anyKind   []*scenarioState            // those for a kind no filter names
	allow     *allowlist
	maxKeys   int
	hash      valueHasher
	now       int64 // the latest event time seen, unix nanoseconds
	events    uint64
	allowed   uint64

	vm   vm.VM
	env  eventEnv
	cenv condEnv
	ev   Event
}

type scenarioState struct {
	s         *Scenario
	buckets   *table
	offenders *lru[offence]
	stats     ScenarioStats
}

// bucket is the state of one key of one scenario: 56 bytes while it has
// seen one event and one distinct value, which is what most keys ever
// see.
type bucket struct {
	first   int64 // time of the first event counted, unix nanoseconds
	last    int64 // time of the last event counted: the level is as of then
	h0      uint64
	level   float32
	events  uint32
	firstID string
	x       *bucketExtra // the rest, allocated when needed
}

type bucketExtra struct {
	// ids holds the ids of events 2..evidenceHead, then a ring of the
	// last evidenceTail; ringN counts the ring's writes.
	ids       []string
	ringN     int
	distinct  *distinctSet // from the second distinct value; the first's hash is in h0
	members   *memberSet
	blackhole int64 // silent until then
	// The walk of a sequence scenario: the number of the last value, and
	// the direction of the last step (+1, -1; 0 before the first step).
	seq    int64
	seqDir int8
	seqSet bool
}

type memberSet struct {
	order   []string // first seen first
	counts  map[string]int
	done    map[string]bool
	trusted map[string]bool // cleared by members.clear_on: never decided in this campaign
}

type offence struct {
	repeats int
	until   int64 // when the last decision expires
}

// Alert is what an overflowing (or triggered, or conditioned) bucket
// says: which scenario, about whom, on what evidence, and the decisions to
// make.
type Alert struct {
	Scenario string    `json:"scenario"`
	Key      string    `json:"key"`
	Count    int64     `json:"count"`              // events counted into the bucket
	Distinct int64     `json:"distinct,omitempty"` // distinct values counted (estimated past 64)
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
	// Evidence holds the ids of the first and the last events counted (at
	// most 20), oldest first.
	Evidence  []string   `json:"evidence"`
	Decisions []Decision `json:"decisions,omitempty"`
}

// Decision is a decision an alert asks the control plane to make. A Range
// decision's Value is a network ("203.0.113.0/24"), which the decision API
// calls a cidr.
type Decision struct {
	Scope     Scope
	Value     string
	Action    Action
	TTL       time.Duration // after escalation
	RateLimit int
	Simulate  bool
	Repeats   int // earlier decisions against the same value that this one escalates
}

type decisionJSON struct {
	Scope     Scope  `json:"scope"`
	Value     string `json:"value"`
	Action    Action `json:"action"`
	TTL       string `json:"ttl"`
	RateLimit int    `json:"rate_limit,omitempty"`
	Simulate  bool   `json:"simulate,omitempty"`
	Repeats   int    `json:"repeats,omitempty"`
}

// MarshalJSON writes the TTL as a Go duration ("4h0m0s"), readable in
// fixtures and alerts.
func (d Decision) MarshalJSON() ([]byte, error) {
	return json.Marshal(decisionJSON{d.Scope, d.Value, d.Action, d.TTL.String(), d.RateLimit, d.Simulate, d.Repeats})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Decision) UnmarshalJSON(b []byte) error {
	var j decisionJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	ttl, err := parseDuration(j.TTL)
	if err != nil {
		return fmt.Errorf("decision ttl: %w", err)
	}
	*d = Decision{j.Scope, j.Value, j.Action, ttl, j.RateLimit, j.Simulate, j.Repeats}
	return nil
}

// Stats counts what the engine did, for metrics and for tuning scenarios.
type Stats struct {
	Events      uint64 // events processed
	Allowlisted uint64 // events and alerts dropped because they named an allowlisted actor
	Scenarios   []ScenarioStats
}

// ScenarioStats counts what one scenario did.
type ScenarioStats struct {
	Name       string
	Matched    uint64 // events that passed the filter
	Exempted   uint64 // of those, exempted by an exception
	Unkeyed    uint64 // of those, whose groupby gave "" (for example an unverified user)
	Cancelled  uint64 // buckets emptied by cancel_on
	Suppressed uint64 // events dropped during a key's blackhole
	Alerts     uint64
	Errors     uint64 // expression errors at run time; the event is skipped
	Keys       int    // buckets held now
	Evictions  uint64 // buckets evicted full: the key limit was reached
	Expired    uint64 // buckets dropped because they had drained
}

// New checks cfg and returns an engine with empty state.
func New(cfg Config) (*Engine, error) {
	if cfg.MaxKeys < 0 {
		return nil, errors.New("detect: Config.MaxKeys is negative")
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	allow, err := compileAllow(cfg.Allow)
	if err != nil {
		return nil, err
	}
	e := &Engine{allow: allow, maxKeys: cfg.MaxKeys, hash: newValueHasher(cfg.FixedHash)}
	if err := e.setScenarios(cfg.Scenarios); err != nil {
		return nil, err
	}
	return e, nil
}

// Reload replaces the engine's scenarios, as when their files change. A
// scenario whose YAML is unchanged keeps its buckets and counters; a
// changed one starts empty but keeps the actors it escalates on; a
// removed one is forgotten. On error nothing changes.
func (e *Engine) Reload(scenarios []*Scenario) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.setScenarios(scenarios)
}

func (e *Engine) setScenarios(scenarios []*Scenario) error {
	old := map[string]*scenarioState{}
	for _, st := range e.scenarios {
		old[st.s.Name] = st
	}
	var states []*scenarioState
	seen := map[string]bool{}
	for i, s := range scenarios {
		if s == nil || s.filter == nil {
			return fmt.Errorf("detect: scenario %d: not a compiled scenario (use Parse)", i)
		}
		if seen[s.Name] {
			return fmt.Errorf("detect: scenario %q given twice", s.Name)
		}
		seen[s.Name] = true
		if o := old[s.Name]; o != nil && o.s.source == s.source {
			states = append(states, o)
			continue
		}
		st := &scenarioState{s: s, buckets: newTable(e.maxKeys), stats: ScenarioStats{Name: s.Name}}
		if s.Response != nil && s.Response.Escalation != nil {
			st.offenders = newLRU[offence](e.maxKeys)
			if o := old[s.Name]; o != nil && o.offenders != nil {
				st.offenders = o.offenders
			}
		}
		states = append(states, st)
	}
	e.scenarios = states
	e.byKind = map[string][]*scenarioState{}
	e.anyKind = nil
	for _, st := range e.scenarios {
		for _, k := range st.s.kinds {
			e.byKind[k] = nil
		}
		if st.s.kinds == nil {
			e.anyKind = append(e.anyKind, st)
		}
	}
	for k := range e.byKind {
		for _, st := range e.scenarios {
			if st.s.kinds == nil || slices.Contains(st.s.kinds, k) {
				e.byKind[k] = append(e.byKind[k], st)
			}
		}
	}
	e.env.Evt, e.cenv.Evt = &e.ev, &e.ev
	return nil
}

// Stats returns the counters so far.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Stats{Events: e.events, Allowlisted: e.allowed}
	for _, s := range e.scenarios {
		ss := s.stats
		ss.Keys, ss.Evictions = s.buckets.len(), s.buckets.evicted
		st.Scenarios = append(st.Scenarios, ss)
	}
	return st
}

// Process runs one event through every scenario and returns the alerts
// it raised, in scenario order. Events should come in time order; one
// older than a bucket's last event is counted without leaking it, and one
// without a time takes the latest time seen.
func (e *Engine) Process(ev Event) []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.process(ev, nil)
}

// ProcessBatch is Process for several events under one lock; the alerts
// of all of them are appended to dst.
func (e *Engine) ProcessBatch(dst []Alert, evs []Event) []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range evs {
		dst = e.process(evs[i], dst)
	}
	return dst
}

func (e *Engine) process(in Event, alerts []Alert) []Alert {
	e.ev = bound(in)
	ev := &e.ev
	e.events++
	t := ev.Time.UnixNano()
	if ev.Time.IsZero() {
		t = e.now
	}
	e.now = max(e.now, t)
	if e.allow.actor(ev) {
		e.allowed++
		return alerts
	}
	run, ok := e.byKind[ev.Kind]
	if !ok {
		run = e.anyKind
	}
	for _, st := range run {
		alerts = e.run(st, ev, t, alerts)
	}
	for _, st := range e.scenarios {
		st.sweep(e.now, 2)
	}
	return alerts
}

func (e *Engine) runBool(p *vm.Program, env any) (bool, error) {
	v, err := e.vm.Run(p, env)
	if err != nil {
		return false, err
	}
	b, _ := v.(bool)
	return b, nil
}

func (e *Engine) runString(p *vm.Program) (string, error) {
	v, err := e.vm.Run(p, &e.env)
	if err != nil {
		return "", err
	}
	return asString(v), nil
}

func (e *Engine) run(st *scenarioState, ev *Event, t int64, alerts []Alert) []Alert {
	s := st.s
	filter := s.filter
	if s.filterRest != nil {
		// The engine runs s only for its kinds (process): the filter's
		// conditions on the kind hold.
		filter = s.filterRest
	}
	ok, err := e.runBool(filter, &e.env)
	if err != nil {
		st.stats.Errors++
		return alerts
	}
	if !ok {
		return alerts
	}
	st.stats.Matched++
	for i := range s.exceptions {
		if s.exceptions[i].exempts(&e.vm, &e.env) {
			st.stats.Exempted++
			return alerts
		}
	}
	key, err := e.runString(s.groupby)
	if err != nil {
		st.stats.Errors++
		return alerts
	}
	if key == "" {
		st.stats.Unkeyed++
		return alerts
	}
	key = boundKey(key)
	b, created := st.buckets.get(key)
	if created {
		b.first, b.last = t, t
	}
	if b.x != nil && b.x.blackhole != 0 {
		if t < b.x.blackhole {
			st.stats.Suppressed++
			if s.Members != nil && b.x.members != nil {
				if e.clearsMember(st, b) {
					return alerts
				}
				return e.campaignMember(st, key, b, ev, t, alerts)
			}
			return alerts
		}
		b.x.blackhole, b.x.members = 0, nil
		b.reset(t)
	}
	if s.Type != Trigger {
		b.leak(t, s.Leakspeed)
	}
	if s.membersClear != nil && e.clearsMember(st, b) {
		return alerts
	}
	switch s.Type {
	case Trigger:
		b.pour(ev, t, 0)
		return e.overflow(st, key, b, ev, t, alerts)
	case Conditional:
		// Whole events leak out, as in CrowdSec: a bucket that held 5
		// a moment ago still holds 5, not 4.99.
		e.cenv.Count = math.Ceil(float64(b.level) - 1e-6)
		fire, err := e.runBool(s.condition, &e.cenv)
		if err != nil {
			st.stats.Errors++
			return alerts
		}
		if fire {
			b.pour(ev, t, 0)
			return e.overflow(st, key, b, ev, t, alerts)
		}
	}
	if s.cancelOn != nil {
		cancel, err := e.runBool(s.cancelOn, &e.env)
		if err != nil {
			st.stats.Errors++
			return alerts
		}
		if cancel {
			st.stats.Cancelled++
			b.reset(t)
			return alerts
		}
	}
	amount := float64(ev.Count)
	switch {
	case s.distinct != nil:
		v, err := e.runString(s.distinct)
		if err != nil {
			st.stats.Errors++
			return alerts
		}
		if v == "" {
			return alerts
		}
		amount = b.addDistinct(e.hash.sum(v))
	case s.sequence != nil:
		v, err := e.runString(s.sequence)
		if err != nil {
			st.stats.Errors++
			return alerts
		}
		n, ok := trailingNumber(v)
		if !ok {
			return alerts
		}
		amount = b.extra().step(n, b.events == 0)
	case s.weight != nil:
		w, err := e.vm.Run(s.weight, &e.env)
		if err != nil {
			st.stats.Errors++
			return alerts
		}
		amount, _ = w.(float64)
		if amount <= 0 || math.IsNaN(amount) || math.IsInf(amount, 0) {
			return alerts
		}
	}
	b.pour(ev, t, amount)
	if s.Members != nil {
		if v, err := e.runString(s.value); err == nil && v != "" {
			b.extra().memberAdd(v, s.Members.Max)
		}
	}
	if s.Type == Leaky && float64(b.level) > float64(s.Capacity) {
		return e.overflow(st, key, b, ev, t, alerts)
	}
	return alerts
}

// boundKey cuts a long key, keeping it unique by its SHA-256: fixed,
// since the key names the alert (its stored id is derived from it, and a
// new leader must derive the same), and collision-resistant, since the
// key's text is the attacker's.
func boundKey(k string) string {
	if len(k) <= maxKeyBytes {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return truncate(k, maxKeyBytes-36) + "…" + hex.EncodeToString(sum[:16])
}

// maxSequenceStep is the widest step that continues a walk: a walker
// that skips a deleted or missing id is still walking.
const maxSequenceStep = 2

// step counts the value n of a sequence scenario and returns how much
// the bucket fills: 1 for the first value of an empty bucket, 1 for a
// step of 1 or 2 from the last value in the walk's direction, 0 for
// anything else (the same value, a jump, a step back: going back and
// forth between two neighbours is reading, not walking).
func (x *bucketExtra) step(n int64, empty bool) float64 {
	defer func() { x.seq, x.seqSet = n, true }()
	if empty || !x.seqSet {
		x.seqDir = 0
		return 1
	}
	d := n - x.seq
	dir := int8(1)
	if d < 0 {
		d, dir = -d, -1
	}
	if d < 1 || d > maxSequenceStep {
		x.seqDir = 0
		return 0
	}
	if x.seqDir != 0 && dir != x.seqDir {
		x.seqDir = dir
		return 0
	}
	x.seqDir = dir
	return 1
}

// trailingNumber reads the number that ends s ("1042" of "o-1042" or
// "/orders/1042"), at most 18 digits; false if s ends in no digit.
func trailingNumber(s string) (int64, bool) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' && len(s)-i < 18 {
		i--
	}
	if i == len(s) {
		return 0, false
	}
	var n int64
	for _, c := range []byte(s[i:]) {
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func (b *bucket) extra() *bucketExtra {
	if b.x == nil {
		b.x = &bucketExtra{}
	}
	return b.x
}

// leak lowers the level by the time passed since the last event, and
// empties the bucket once it has drained.
func (b *bucket) leak(t int64, leakspeed time.Duration) {
	if t <= b.last || b.events == 0 {
		return
	}
	level := float64(b.level) - float64(t-b.last)/float64(leakspeed)
	if level <= 0 {
		b.reset(t)
		return
	}
	b.level = float32(level)
}

// reset empties the bucket, keeping its key, its blackhole and the
// members of a campaign under way.
func (b *bucket) reset(t int64) {
	var keep *bucketExtra
	if b.x != nil && b.x.blackhole != 0 {
		keep = &bucketExtra{blackhole: b.x.blackhole, members: b.x.members}
	}
	*b = bucket{first: t, last: t, x: keep}
}

// addDistinct counts the value of hash h and returns how much the count
// grew.
func (b *bucket) addDistinct(h uint64) float64 {
	if h == 0 {
		h = 1 // 0 marks an empty h0
	}
	if b.h0 == 0 {
		b.h0 = h
		return 1
	}
	x := b.extra()
	if x.distinct == nil {
		if h == b.h0 {
			return 0
		}
		x.distinct = &distinctSet{exact: []uint64{b.h0}}
	}
	return x.distinct.add(h)
}

func (b *bucket) distinctCount() float64 {
	switch {
	case b.x != nil && b.x.distinct != nil:
		return b.x.distinct.count()
	case b.h0 != 0:
		return 1
	}
	return 0
}

func (b *bucket) pour(ev *Event, t int64, amount float64) {
	if b.events == 0 {
		b.first, b.firstID = t, ev.ID
	} else if ev.ID != b.lastID() {
		// A stored event the feeder read as several (a request summary's
		// paths) is one piece of evidence.
		x := b.extra()
		if len(x.ids) < evidenceHead-1+evidenceTail {
			x.ids = append(x.ids, ev.ID)
		} else {
			x.ids[evidenceHead-1+x.ringN%evidenceTail] = ev.ID
			x.ringN++
		}
	}
	b.events = uint32(min(uint64(b.events)+uint64(ev.Count), math.MaxUint32))
	b.level = float32(float64(b.level) + amount)
	b.last = max(b.last, t)
}

// lastID is the id of the last event recorded as evidence.
func (b *bucket) lastID() string {
	x := b.x
	switch {
	case x == nil || len(x.ids) == 0:
		return b.firstID
	case len(x.ids) < evidenceHead-1+evidenceTail:
		return x.ids[len(x.ids)-1]
	}
	return x.ids[evidenceHead-1+(x.ringN+evidenceTail-1)%evidenceTail]
}

func (b *bucket) evidence() []string {
	ids := []string{b.firstID}
	if b.x == nil {
		return ids
	}
	head := min(len(b.x.ids), evidenceHead-1)
	ids = append(ids, b.x.ids[:head]...)
	ring := b.x.ids[head:]
	start := b.x.ringN % evidenceTail
	if len(ring) < evidenceTail {
		start = 0
	}
	for i := range ring {
		ids = append(ids, ring[(start+i)%len(ring)])
	}
	return ids
}

func (x *bucketExtra) memberAdd(v string, limit int) int {
	m := x.members
	if m == nil {
		m = &memberSet{counts: map[string]int{}}
		x.members = m
	}
	if m.trusted[v] {
		return 0
	}
	c, ok := m.counts[v]
	if !ok && len(m.order) >= limit {
		return 0
	}
	if !ok {
		m.order = append(m.order, v)
	}
	m.counts[v] = c + 1
	return c + 1
}

// overflow makes the alert of bucket b, whose last event is ev, and
// starts the key's blackhole.
func (e *Engine) overflow(st *scenarioState, key string, b *bucket, ev *Event, t int64, alerts []Alert) []Alert {
	s := st.s
	a := Alert{Scenario: s.Name, Key: key, Count: int64(b.events), First: time.Unix(0, b.first).UTC(),
		Last: time.Unix(0, b.last).UTC(), Evidence: b.evidence()}
	if s.distinct != nil {
		a.Distinct = int64(math.Round(b.distinctCount()))
	}
	var members *memberSet
	if b.x != nil {
		members = b.x.members
	}
	blackhole := s.Blackhole
	if r := s.Response; r != nil {
		if s.Members != nil {
			if members != nil {
				for _, v := range members.order {
					if members.counts[v] >= s.Members.Min {
						if d, ok := e.decide(st, v, t); ok {
							a.Decisions = append(a.Decisions, d)
						}
						if members.done == nil {
							members.done = map[string]bool{}
						}
						members.done[v] = true
					}
				}
			}
		} else {
			v, err := e.runString(s.value)
			if err != nil {
				st.stats.Errors++
			}
			if v != "" {
				d, ok := e.decide(st, v, t)
				if !ok {
					e.allowed++
					b.reset(t)
					return alerts
				}
				a.Decisions = append(a.Decisions, d)
				if s.blackholeIsTTL {
					blackhole = d.TTL
				}
			}
		}
	}
	st.stats.Alerts++
	b.reset(t)
	if blackhole > 0 {
		x := b.extra()
		x.blackhole = t + int64(blackhole)
		x.members = members // a campaign goes on while its key is silent
	}
	return append(alerts, a)
}

// clearsMember says whether the event clears its member (members.clear_on),
// and if so trusts the member for the rest of the campaign. Trust is only
// kept while the bucket counts something or a campaign is under way, at
// most 16 times members.max values.
func (e *Engine) clearsMember(st *scenarioState, b *bucket) bool {
	s := st.s
	if s.membersClear == nil {
		return false
	}
	clear, err := e.runBool(s.membersClear, &e.env)
	if err != nil || !clear {
		return false
	}
	inCampaign := b.x != nil && b.x.blackhole != 0
	if b.events == 0 && !inCampaign {
		return true
	}
	v, err := e.runString(s.value)
	if err != nil || v == "" {
		return true
	}
	x := b.extra()
	if x.members == nil {
		x.members = &memberSet{counts: map[string]int{}}
	}
	m := x.members
	delete(m.counts, v)
	if m.trusted == nil {
		m.trusted = map[string]bool{}
	}
	if len(m.trusted) < 16*s.Members.Max {
		m.trusted[v] = true
	}
	return true
}

// campaignMember counts ev for its member while a campaign's key is in
// its blackhole, and decides against the member when it reaches Min.
func (e *Engine) campaignMember(st *scenarioState, key string, b *bucket, ev *Event, t int64, alerts []Alert) []Alert {
	s := st.s
	v, err := e.runString(s.value)
	if err != nil || v == "" {
		return alerts
	}
	m := b.x.members
	if m.done[v] || b.x.memberAdd(v, s.Members.Max) < s.Members.Min {
		return alerts
	}
	if m.done == nil {
		m.done = map[string]bool{}
	}
	m.done[v] = true
	d, ok := e.decide(st, v, t)
	if !ok {
		e.allowed++
		return alerts
	}
	st.stats.Alerts++
	when := time.Unix(0, t).UTC()
	return append(alerts, Alert{Scenario: s.Name, Key: key, Count: int64(m.counts[v]), First: when, Last: when,
		Evidence: []string{ev.ID}, Decisions: []Decision{d}})
}

// decide makes the decision against value, escalated; false if value is
// allowlisted.
func (e *Engine) decide(st *scenarioState, value string, t int64) (Decision, bool) {
	r := st.s.Response
	if e.allow.decision(r.Scope, value) {
		return Decision{}, false
	}
	d := Decision{Scope: r.Scope, Value: value, Action: r.Action, TTL: r.TTL, RateLimit: r.RateLimit, Simulate: r.Simulate}
	if esc := r.Escalation; esc != nil {
		n, created := st.offenders.get(string(r.Scope) + "\x00" + value)
		// A repeat is a decision within Memory of the end of the last
		// one: measured from its start, a long decision would make its
		// actor forgotten before it could repeat.
		if !created && t < n.v.until+int64(esc.Memory) {
			d.Repeats = n.v.repeats + 1
		}
		ttl := float64(r.TTL) * math.Pow(esc.Factor, float64(d.Repeats))
		d.TTL = time.Duration(min(ttl, float64(esc.Max)))
		n.v = offence{repeats: d.Repeats, until: t + int64(d.TTL)}
	}
	return d, true
}

// Forget ends the silence of scenario's key after the decision against
// value that its alert made is lifted (an operator deleted it): without
// it, the key stays silent for its blackhole (by default the decision's
// TTL), and the same attack right after the lift would decide nothing.
// The key's next overflow alerts again, from an empty bucket. Of a
// campaign (Members), only the member value is forgotten: it is decided
// again when it reaches Min, the campaign's other members stay decided;
// value "" ends the whole campaign.
//
// The value's escalation history in this scenario is forgotten too: a
// person lifts a decision because it was wrong (a false positive), and an
// actor wrongly decided on must not get a doubled TTL the next time the
// scenario decides against it. The cost: an attacker whose real decision
// an operator lifts by mistake starts again from the base TTL. Decisions
// that expire are not lifted: their history stays. Forget reports
// whether there was a silence to end.
func (e *Engine) Forget(scenario, key, value string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.IndexFunc(e.scenarios, func(st *scenarioState) bool { return st.s.Name == scenario })
	if i < 0 {
		return false
	}
	st := e.scenarios[i]
	if r := st.s.Response; r != nil && r.Escalation != nil && value != "" {
		st.offenders.delete(string(r.Scope) + "\x00" + value)
	}
	b := st.buckets.find(boundKey(key))
	if b == nil || b.x == nil || b.x.blackhole == 0 || e.now >= b.x.blackhole {
		return false
	}
	if m := b.x.members; st.s.Members != nil && m != nil && value != "" {
		if !m.done[value] {
			return false
		}
		delete(m.done, value)
		delete(m.counts, value)
		m.order = slices.DeleteFunc(m.order, func(v string) bool { return v == value })
		return true
	}
	b.x.blackhole, b.x.members = 0, nil
	b.reset(max(b.last, e.now))
	return true
}

// sweep drops up to n of the least recently used buckets that have
// drained and are out of their blackhole: a bucket that would restart
// empty costs nothing to forget, and forgetting it early keeps the key
// limit for live ones.
func (st *scenarioState) sweep(now int64, n int) {
	for ; n > 0; n-- {
		i := st.buckets.tail
		if i < 0 {
			return
		}
		b := &st.buckets.slot(i).b
		if b.x != nil && b.x.blackhole != 0 && now < b.x.blackhole {
			return
		}
		if st.s.Type != Trigger && b.events > 0 &&
			float64(b.level)-float64(now-b.last)/float64(st.s.Leakspeed) > 0 {
			return
		}
		st.buckets.remove(i)
		st.stats.Expired++
	}
}

// allowlist is Config.Allow compiled.
type allowlist struct {
	prefixes []netip.Prefix
	values   map[Scope]map[string]bool
}

func compileAllow(entries []Allow) (*allowlist, error) {
	al := &allowlist{values: map[Scope]map[string]bool{}}
	for i, a := range entries {
		switch a.Scope {
		case ScopeIP, ScopeRange:
			p, err := parsePrefix(a.Value)
			if err != nil {
				return nil, fmt.Errorf("detect: Config.Allow[%d]: %w", i, err)
			}
			al.prefixes = append(al.prefixes, p)
		case ScopeUser, ScopeSession, ScopeDevice:
			if a.Value == "" {
				return nil, fmt.Errorf("detect: Config.Allow[%d]: empty value", i)
			}
			if al.values[a.Scope] == nil {
				al.values[a.Scope] = map[string]bool{}
			}
			al.values[a.Scope][a.Value] = true
		default:
			return nil, fmt.Errorf("detect: Config.Allow[%d]: unknown scope %q (ip, range, user, session or device)", i, a.Scope)
		}
	}
	return al, nil
}

func (al *allowlist) ip(s string) bool {
	if len(al.prefixes) == 0 || s == "" {
		return false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range al.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// actor says whether ev's (verified) actor is allowlisted.
func (al *allowlist) actor(ev *Event) bool {
	if al.ip(ev.Actor.IP) {
		return true
	}
	if len(al.values) == 0 {
		return false
	}
	return (ev.Actor.User != "" && al.values[ScopeUser][ev.Actor.User]) ||
		(ev.Actor.Session != "" && al.values[ScopeSession][ev.Actor.Session]) ||
		(ev.Actor.Device != "" && al.values[ScopeDevice][ev.Actor.Device])
}

// decision says whether a decision on scope and value would reach an
// allowlisted actor.
func (al *allowlist) decision(scope Scope, value string) bool {
	switch scope {
	case ScopeIP:
		return al.ip(value)
	case ScopeRange:
		p, err := parsePrefix(value)
		if err != nil {
			return false
		}
		for _, q := range al.prefixes {
			if p.Overlaps(q) {
				return true
			}
		}
		return false
	}
	return al.values[scope][value]
}
