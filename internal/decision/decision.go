// Package decision matches requests against the control plane's decisions
// (block an IP, a network, a user, a session or a device; block its sensitive routes
// only; make it read-only; rate-limit it). The gateway and every service hold
// a Set, replaced whole when the watch reports a change, and ask it about
// each request: a lookup per scope, no lock.
package decision

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"
)

// Action is what a decision does to the requests it matches.
type Action string

// Actions, from the strongest.
const (
	Block          Action = "block"           // refuse every request
	BlockSensitive Action = "block-sensitive" // refuse the policy's sensitive routes
	ReadOnly       Action = "read-only"       // refuse writes: unsafe methods, or statements that write (see Set.ReadOnly)
	RateLimit      Action = "rate-limit"      // limit the request rate (at the edge)
)

// Scope says what a decision's Value names.
type Scope string

// Scopes.
const (
	ScopeIP      Scope = "ip"      // an address: "203.0.113.7"
	ScopeCIDR    Scope = "cidr"    // a network: "203.0.113.0/24"
	ScopeUser    Scope = "user"    // an authenticated end user's id
	ScopeSession Scope = "session" // hex SHA-256 of a session or bearer credential
	ScopeDevice  Scope = "device"  // a device fingerprint the gateway computed (actor.Actor.Device)
)

// Decision is one decision as the control plane's API gives it.
type Decision struct {
	ID        string    `json:"id"`
	Scope     Scope     `json:"scope"`
	Value     string    `json:"value"`
	Action    Action    `json:"action"`
	RateLimit int       `json:"rate_limit,omitempty"` // requests per minute; 0: the enforcer's default
	Reason    string    `json:"reason,omitempty"`
	Origin    string    `json:"origin,omitempty"`
	Expires   time.Time `json:"expires,omitzero"` // zero: never
}

func (d *Decision) live(now time.Time) bool { return d.Expires.IsZero() || now.Before(d.Expires) }

// Subject is who a request comes from.
type Subject struct {
	IP      netip.Addr
	User    string
	Session string
	Device  string
}

// Set is an immutable set of decisions, indexed by scope.
type Set struct {
	n        int
	ips      map[netip.Addr][]*Decision
	prefixes map[netip.Prefix][]*Decision
	bits     []int // prefix lengths present, longest first
	users    map[string][]*Decision
	sessions map[string][]*Decision
	devices  map[string][]*Decision
}

// NewSet indexes ds. A decision with an unknown scope or action, or a value
// that does not parse, is an error: the control plane validated it, so it
// means the two disagree on the format, and enforcing less than asked would
// be silent.
func NewSet(ds []Decision) (*Set, error) {
	s := &Set{ips: map[netip.Addr][]*Decision{}, prefixes: map[netip.Prefix][]*Decision{},
		users: map[string][]*Decision{}, sessions: map[string][]*Decision{}, devices: map[string][]*Decision{}}
	for i := range ds {
		d := &ds[i]
		switch d.Action {
		case Block, BlockSensitive, ReadOnly, RateLimit:
		default:
			return nil, fmt.Errorf("decision %s: unknown action %q", d.ID, d.Action)
		}
		switch d.Scope {
		case ScopeIP:
			ip, err := netip.ParseAddr(d.Value)
			if err != nil {
				return nil, fmt.Errorf("decision %s: %w", d.ID, err)
			}
			ip = ip.Unmap().WithZone("")
			s.ips[ip] = append(s.ips[ip], d)
		case ScopeCIDR:
			p, err := netip.ParsePrefix(d.Value)
			if err != nil {
				return nil, fmt.Errorf("decision %s: %w", d.ID, err)
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			p = p.Masked()
			s.prefixes[p] = append(s.prefixes[p], d)
			if !slices.Contains(s.bits, p.Bits()) {
				s.bits = append(s.bits, p.Bits())
			}
		case ScopeUser:
			s.users[d.Value] = append(s.users[d.Value], d)
		case ScopeSession:
			s.sessions[d.Value] = append(s.sessions[d.Value], d)
		case ScopeDevice:
			s.devices[d.Value] = append(s.devices[d.Value], d)
		default:
			return nil, fmt.Errorf("decision %s: unknown scope %q", d.ID, d.Scope)
		}
		s.n++
	}
	slices.Sort(s.bits)
	slices.Reverse(s.bits)
	return s, nil
}

// Len returns the number of decisions in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// each calls fn with the live decisions that match sub until fn returns
// false.
func (s *Set) each(sub Subject, now time.Time, fn func(*Decision) bool) {
	if s == nil || s.n == 0 {
		return
	}
	visit := func(ds []*Decision) bool {
		for _, d := range ds {
			if d.live(now) && !fn(d) {
				return false
			}
		}
		return true
	}
	if sub.IP.IsValid() {
		ip := sub.IP.Unmap().WithZone("")
		if !visit(s.ips[ip]) {
			return
		}
		for _, bits := range s.bits {
			if bits > ip.BitLen() {
				continue
			}
			p, err := ip.Prefix(bits)
			if err == nil && !visit(s.prefixes[p]) {
				return
			}
		}
	}
	if sub.User != "" && !visit(s.users[sub.User]) {
		return
	}
	if sub.Session != "" && !visit(s.sessions[sub.Session]) {
		return
	}
	if sub.Device != "" {
		visit(s.devices[sub.Device])
	}
}

// Refusal returns the decision that refuses a request from sub with method,
// if any. sensitive reports whether the request's route is sensitive; it is
// called only when a block-sensitive decision matches. Rate limits never
// refuse here: see RateLimit.
func (s *Set) Refusal(sub Subject, method string, sensitive func() bool, now time.Time) (Decision, bool) {
	return s.refusal(sub, !safeMethod(method), sensitive, now)
}

// Blocking is Refusal for a service that enforces read-only decisions at
// its database rather than by method (see ReadOnly): it returns the block
// or block-sensitive decision that refuses a request from sub, whatever its
// method.
func (s *Set) Blocking(sub Subject, sensitive func() bool, now time.Time) (Decision, bool) {
	return s.refusal(sub, false, sensitive, now)
}

// ReadOnly returns the live read-only decision that matches sub, if any: a
// request it lets through (a safe method, or any method where writes are
// refused at the database) must still write nothing.
func (s *Set) ReadOnly(sub Subject, now time.Time) (Decision, bool) {
	var found *Decision
	s.each(sub, now, func(d *Decision) bool {
		if d.Action == ReadOnly {
			found = d
		}
		return found == nil
	})
	if found == nil {
		return Decision{}, false
	}
	return *found, true
}

// refusal returns the decision that refuses a request from sub; readOnly
// says whether a read-only decision refuses it.
func (s *Set) refusal(sub Subject, readOnly bool, sensitive func() bool, now time.Time) (Decision, bool) {
	var found *Decision
	s.each(sub, now, func(d *Decision) bool {
		switch d.Action {
		case Block:
			found = d
		case ReadOnly:
			if readOnly {
				found = d
			}
		case BlockSensitive:
			if sensitive != nil && sensitive() {
				found = d
			}
		}
		return found == nil || found.Action != Block
	})
	if found == nil {
		return Decision{}, false
	}
	return *found, true
}

// RateLimit returns the strictest live rate-limit decision that matches sub.
// A RateLimit of 0 counts as def.
func (s *Set) RateLimit(sub Subject, def int, now time.Time) (Decision, bool) {
	var found *Decision
	rate := func(d *Decision) int {
		if d.RateLimit > 0 {
			return d.RateLimit
		}
		return def
	}
	s.each(sub, now, func(d *Decision) bool {
		if d.Action == RateLimit && (found == nil || rate(d) < rate(found)) {
			found = d
		}
		return true
	})
	if found == nil {
		return Decision{}, false
	}
	d := *found
	d.RateLimit = rate(found)
	return d, true
}

// safeMethod reports whether a read-only actor may use method: the methods
// RFC 9110 defines as safe that services use.
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}
