package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// What the dashboard needs of a store beyond QueryEvents: counts of events
// grouped in the database (never by loading the events), the decisions
// that name an actor, the policy history and what changed recently.
type Dashboards interface {
	// CountEvents counts the events that match q.Filter, grouped by
	// q.By, in the database: the most numerous groups first, at most
	// q.Limit of them.
	CountEvents(ctx context.Context, q EventCountQuery) ([]EventCount, error)
	// ActorDecisions returns the decisions, expired or not, that apply to
	// actor a, ordered by (Created, ID): for an address, those on it and
	// on a network that contains it; for a network, those on an address
	// in it and on a network that overlaps it; for a user or a session,
	// those on it.
	ActorDecisions(ctx context.Context, a Actor) ([]Decision, error)
	// PolicyVersions returns the policy versions before version before
	// (0: the latest included), newest first, at most limit (0:
	// DefaultQueryLimit; at most MaxQueryLimit), without their text.
	PolicyVersions(ctx context.Context, before int64, limit int) ([]PolicyVersion, error)
	// Activity returns what changed at or after since: the changes
	// recorded (at most MaxChanges, newest first), and the services and
	// instances first seen (at most MaxQueryLimit each, newest first).
	Activity(ctx context.Context, since time.Time) (Activity, error)
	// AlertsByKey returns the alerts whose key is key, or whose id is
	// among ids (at most MaxQueryLimit), newest first, at most
	// MaxQueryLimit.
	AlertsByKey(ctx context.Context, key string, ids []string) ([]Alert, error)
	// LiveInstances counts, per service, the instances last seen at or
	// after seenAfter; services without one are left out.
	LiveInstances(ctx context.Context, seenAfter time.Time) (map[string]int, error)
	// InstanceLinks returns, for every instance, what the service graph
	// needs of it (not its modules), ordered by (Service, ID).
	InstanceLinks(ctx context.Context) ([]InstanceLinks, error)
}

// InstanceLinks is what an instance reports of the other services: the
// peers it built clients for and the calls it received.
type InstanceLinks struct {
	Service  string    `json:"service"`
	ID       string    `json:"id"`
	Peers    []string  `json:"peers"`
	Callers  []string  `json:"callers"`
	Exposed  bool      `json:"exposed"`
	LastSeen time.Time `json:"last_seen"`
}

// ActionObserved is the action of the events that refused nothing and
// would not have: business events and request summaries. Every other
// event is an attack (EventFilter.Attacks).
const ActionObserved = "observed"

// Limits of the dashboard's queries.
const (
	MaxFilterValues = 32    // values of EventFilter.Kinds or .Services
	MaxCountGroups  = 50000 // groups one CountEvents returns
	MaxCountBuckets = 1000  // time buckets one CountEvents may make
)

// Actor is an external actor as the dashboard names it: an address, a
// network, a user or a session. Its scopes are those of decisions.
type Actor struct {
	Scope Scope  `json:"scope"`
	Value string `json:"value"`
}

// String is the text form ParseActor reads: "ip:203.0.113.7".
func (a Actor) String() string { return string(a.Scope) + ":" + a.Value }

// ParseActor reads an actor: "ip:203.0.113.7", "cidr:203.0.113.0/24"
// ("range:" is a synonym), "user:alice" or "session:<hash>", and returns
// it in canonical form (an IPv4-mapped address as IPv4, a network with
// its host bits cleared). A malformed one is an *InvalidError for field
// "actor".
func ParseActor(s string) (Actor, error) {
	scope, value, ok := strings.Cut(s, ":")
	if !ok {
		return Actor{}, invalid("actor", "want scope:value, e.g. ip:203.0.113.7, cidr:203.0.113.0/24, user:alice or session:HASH")
	}
	if scope == "range" {
		scope = string(ScopeCIDR)
	}
	return ValidateActor(Actor{Scope: Scope(scope), Value: value})
}

// ValidateActor checks a and returns it in canonical form.
func ValidateActor(a Actor) (Actor, error) {
	switch a.Scope {
	case ScopeIP:
		ip, err := parseIP("actor", a.Value)
		if err != nil {
			return Actor{}, err
		}
		a.Value = ip
	case ScopeCIDR:
		p, err := parsePrefix("actor", a.Value)
		if err != nil {
			return Actor{}, err
		}
		a.Value = p.String()
	case ScopeUser:
		if err := text("actor", a.Value, 256, true); err != nil {
			return Actor{}, err
		}
	case ScopeSession:
		if err := text("actor", a.Value, 128, true); err != nil {
			return Actor{}, err
		}
	default:
		return Actor{}, invalid("actor", fmt.Sprintf("scope %q (want ip, cidr, user or session)", truncateText(string(a.Scope), 32)))
	}
	return a, nil
}

// Filter returns the event filter that selects a's events.
func (a Actor) Filter() EventFilter {
	switch a.Scope {
	case ScopeIP:
		return EventFilter{ActorIP: a.Value}
	case ScopeCIDR:
		return EventFilter{ActorCIDR: a.Value}
	case ScopeUser:
		return EventFilter{ActorUser: a.Value}
	case ScopeSession:
		return EventFilter{SessionHash: a.Value}
	}
	return EventFilter{}
}

// Covers reports whether decision d applies to actor a, as ActorDecisions
// chooses them.
func (a Actor) Covers(d Decision) bool {
	switch a.Scope {
	case ScopeIP:
		switch d.Scope {
		case ScopeIP:
			return d.Value == a.Value
		case ScopeCIDR:
			p, err1 := netip.ParsePrefix(d.Value)
			ip, err2 := netip.ParseAddr(a.Value)
			return err1 == nil && err2 == nil && p.Contains(ip)
		}
	case ScopeCIDR:
		p, err := netip.ParsePrefix(a.Value)
		if err != nil {
			return false
		}
		switch d.Scope {
		case ScopeIP:
			ip, err := netip.ParseAddr(d.Value)
			return err == nil && p.Contains(ip)
		case ScopeCIDR:
			q, err := netip.ParsePrefix(d.Value)
			return err == nil && p.Overlaps(q)
		}
	case ScopeUser, ScopeSession:
		return d.Scope == a.Scope && d.Value == a.Value
	}
	return false
}

// parsePrefix reads a network in canonical form, as decisions keep them.
func parsePrefix(field, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, invalid(field, fmt.Sprintf("%q is not a network (want e.g. 203.0.113.0/24)", truncateText(s, 64)))
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, invalid(field, fmt.Sprintf("%q mixes IPv4 and IPv6", s))
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ActorIPKey is the form of an address that sorts as the address does:
// "4" and 8 hex digits for IPv4 (an IPv4-mapped IPv6 address included),
// "6" and 32 for IPv6; "" for "". The stores keep it beside the address,
// so that a network is a range of keys (ActorIPKeyRange), and IPv4 and
// IPv6 ranges never overlap, as netip.Prefix.Contains sees them.
func ActorIPKey(ip string) string {
	if ip == "" {
		return ""
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return "4" + hex.EncodeToString(b[:])
	}
	b := a.As16()
	return "6" + hex.EncodeToString(b[:])
}

// ActorIPKeyRange returns the first and last keys (ActorIPKey) of the
// addresses in network cidr.
func ActorIPKeyRange(cidr string) (lo, hi string, err error) {
	p, err := parsePrefix("actor_cidr", cidr)
	if err != nil {
		return "", "", err
	}
	first := p.Addr().AsSlice()
	last := slices.Clone(first)
	for i := p.Bits(); i < len(last)*8; i++ {
		last[i/8] |= 1 << (7 - i%8)
	}
	family := "6"
	if p.Addr().Is4() {
		family = "4"
	}
	return family + hex.EncodeToString(first), family + hex.EncodeToString(last), nil
}

// EventDimension is what CountEvents groups by.
type EventDimension string

// Dimensions of CountEvents.
const (
	ByBucket    EventDimension = "bucket" // a time bucket of EventCountQuery.Bucket from Filter.Since
	ByKind      EventDimension = "kind"
	ByService   EventDimension = "service"
	ByAction    EventDimension = "action"
	ByActorIP   EventDimension = "actor_ip"
	ByActorUser EventDimension = "actor_user"
	BySession   EventDimension = "session_hash"
	ByRoute     EventDimension = "route"
	ByTrace     EventDimension = "trace_id"
)

// EventCountQuery says what CountEvents counts.
type EventCountQuery struct {
	// Filter selects the events, as for QueryEvents; its After, Reverse
	// and Limit must be zero.
	Filter EventFilter
	// By are the dimensions of the groups (none: one group, all events).
	By []EventDimension
	// Bucket is the width of the time buckets of ByBucket, counted from
	// Filter.Since, which ByBucket needs, as it needs Filter.Until; at
	// most MaxCountBuckets buckets.
	Bucket time.Duration
	// Limit is the most groups returned, the most numerous first (ties in
	// the order of their dimensions); 0 means MaxCountGroups.
	Limit int
	// ByAttacks ranks the groups by their attacks first, then by count.
	ByAttacks bool
}

// EventCount is one group of CountEvents: the values of its dimensions
// (the others empty), how many events, how many of them attacks, and the
// time of the latest.
type EventCount struct {
	Bucket      time.Time `json:"bucket,omitzero"`
	Kind        string    `json:"kind,omitempty"`
	Service     string    `json:"service,omitempty"`
	Action      string    `json:"action,omitempty"`
	ActorIP     string    `json:"actor_ip,omitempty"`
	ActorUser   string    `json:"actor_user,omitempty"`
	SessionHash string    `json:"session_hash,omitempty"`
	Route       string    `json:"route,omitempty"`
	TraceID     string    `json:"trace_id,omitempty"`
	Count       int64     `json:"count"`
	Attacks     int64     `json:"attacks"` // events whose action is not ActionObserved
	Last        time.Time `json:"last"`
}

// ValidateEventCountQuery checks q and returns it with its filter
// canonical and its limit defaulted.
func ValidateEventCountQuery(q EventCountQuery) (EventCountQuery, error) {
	if q.Filter.After != nil || q.Filter.Reverse || q.Filter.Limit != 0 {
		return q, invalid("filter", "cursor, order and limit do not apply to counts")
	}
	f, err := ValidateEventFilter(q.Filter)
	if err != nil {
		return q, err
	}
	f.Limit = 0
	q.Filter = f
	seen := map[EventDimension]bool{}
	for _, d := range q.By {
		switch d {
		case ByBucket:
			if q.Filter.Since.IsZero() || q.Filter.Until.IsZero() {
				return q, invalid("by", "bucket needs since and until")
			}
			if q.Bucket <= 0 {
				return q, invalid("bucket", "must be positive")
			}
			if n := q.Filter.Until.Sub(q.Filter.Since) / q.Bucket; n >= MaxCountBuckets {
				return q, invalid("bucket", fmt.Sprintf("%v makes more than %d buckets", q.Bucket, MaxCountBuckets))
			}
		case ByKind, ByService, ByAction, ByActorIP, ByActorUser, BySession, ByRoute, ByTrace:
		default:
			return q, invalid("by", fmt.Sprintf("%q is not a dimension", truncateText(string(d), 32)))
		}
		if seen[d] {
			return q, invalid("by", fmt.Sprintf("%q twice", d))
		}
		seen[d] = true
	}
	switch {
	case q.Limit < 0:
		return q, invalid("limit", "negative")
	case q.Limit == 0:
		q.Limit = MaxCountGroups
	case q.Limit > MaxCountGroups:
		return q, invalid("limit", fmt.Sprintf("%d, at most %d", q.Limit, MaxCountGroups))
	}
	return q, nil
}

// PolicyVersion describes a policy version without its text.
type PolicyVersion struct {
	Version  int64     `json:"version"`
	Created  time.Time `json:"created"`
	Revision int64     `json:"revision"`
	Size     int       `json:"size"`   // bytes of the document
	SHA256   string    `json:"sha256"` // of the document, hex
}

// Activity is what changed since a time (Dashboards.Activity).
type Activity struct {
	Since     time.Time  `json:"since"`
	Changes   []Change   `json:"changes"`   // newest first
	Services  []Service  `json:"services"`  // first seen since, newest first
	Instances []Instance `json:"instances"` // first seen since, newest first
}
