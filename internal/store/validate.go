package store

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The Validate functions check what a caller hands to a store and return it
// in canonical form; implementations call them first, so that both refuse
// the same input with the same *InvalidError. The API layer may call them
// too, to refuse early.

// Bounds of the times a store can keep (Unix nanoseconds in an int64).
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// ValidateEvents checks a batch for AppendEvents and returns it without
// repeated ids (the first copy wins), with canonical actor IPs.
func ValidateEvents(events []Event) ([]Event, error) {
	if len(events) > MaxEventBatch {
		return nil, invalid("events", fmt.Sprintf("%d events in one batch, at most %d", len(events), MaxEventBatch))
	}
	out := make([]Event, 0, len(events))
	seen := make(map[string]bool, len(events))
	for i, e := range events {
		e, err := ValidateEvent(e)
		if err != nil {
			ie := err.(*InvalidError)
			return nil, invalid("events["+strconv.Itoa(i)+"]."+ie.Field, ie.Reason)
		}
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		out = append(out, e)
	}
	return out, nil
}

// ValidateEvent checks one event; see ValidateEvents.
func ValidateEvent(e Event) (Event, error) {
	if err := identifier("id", e.ID); err != nil {
		return e, err
	}
	if e.Time.IsZero() {
		return e, invalid("time", "missing")
	}
	if e.Time.Before(minTime) || e.Time.After(maxTime) {
		return e, invalid("time", "out of range")
	}
	e.Time = e.Time.UTC()
	for _, f := range []struct {
		name     string
		value    string
		max      int
		required bool
	}{
		{"kind", e.Kind, 128, true},
		{"action", e.Action, 64, false},
		{"service", e.Service, 253, true},
		{"route", e.Route, 512, false},
		{"actor_user", e.ActorUser, 256, false},
		{"session_hash", e.SessionHash, 128, false},
		{"trace_id", e.TraceID, 64, false},
		{"actor_claimed_by", e.ActorClaimedBy, 253, false},
		{"actor_user_claimed_by", e.ActorUserClaimedBy, 253, false},
	} {
		if err := text(f.name, f.value, f.max, f.required); err != nil {
			return e, err
		}
	}
	if e.ActorIP != "" {
		ip, err := parseIP("actor_ip", e.ActorIP)
		if err != nil {
			return e, err
		}
		e.ActorIP = ip
	}
	if len(e.Data) > MaxEventData {
		return e, invalid("data", fmt.Sprintf("%d bytes, at most %d", len(e.Data), MaxEventData))
	}
	if len(e.Data) > 0 && (!utf8.Valid(e.Data) || !json.Valid(e.Data)) {
		return e, invalid("data", "not JSON in UTF-8")
	}
	return e, nil
}

// ValidateEventFilter checks a filter for QueryEvents and fills in its
// default limit.
func ValidateEventFilter(f EventFilter) (EventFilter, error) {
	switch {
	case f.Limit < 0:
		return f, invalid("limit", "negative")
	case f.Limit == 0:
		f.Limit = DefaultQueryLimit
	case f.Limit > MaxQueryLimit:
		return f, invalid("limit", fmt.Sprintf("%d, at most %d", f.Limit, MaxQueryLimit))
	}
	for name, t := range map[string]time.Time{"since": f.Since, "until": f.Until} {
		if !t.IsZero() && (t.Before(minTime) || t.After(maxTime)) {
			return f, invalid(name, "out of range")
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return f, invalid("until", "before since")
	}
	for _, t := range []struct {
		name, value string
		max         int
	}{{"kind", f.Kind, 128}, {"service", f.Service, 253}, {"actor_user", f.ActorUser, 256}, {"session_hash", f.SessionHash, 128}, {"trace_id", f.TraceID, 64}} {
		if err := text(t.name, t.value, t.max, false); err != nil {
			return f, err
		}
	}
	if f.ActorIP != "" {
		ip, err := parseIP("actor_ip", f.ActorIP)
		if err != nil {
			return f, err
		}
		f.ActorIP = ip
	}
	if err := text("action", f.Action, 64, false); err != nil {
		return f, err
	}
	for _, l := range []struct {
		name   string
		values []string
		max    int
	}{{"kind", f.Kinds, 128}, {"service", f.Services, 253}} {
		if len(l.values) > MaxFilterValues {
			return f, invalid(l.name, fmt.Sprintf("%d values, at most %d", len(l.values), MaxFilterValues))
		}
		for _, v := range l.values {
			if err := text(l.name, v, l.max, true); err != nil {
				return f, err
			}
		}
	}
	if f.ActorCIDR != "" {
		p, err := parsePrefix("actor_cidr", f.ActorCIDR)
		if err != nil {
			return f, err
		}
		f.ActorCIDR = p.String()
	}
	if f.After != nil {
		if err := identifier("cursor", f.After.ID); err != nil {
			return f, err
		}
		if f.After.Time.Before(minTime) || f.After.Time.After(maxTime) {
			return f, invalid("cursor", "out of range")
		}
	}
	return f, nil
}

// ValidateDecision checks a decision for CreateDecision at time now and
// returns it in canonical form: an IPv4-mapped address as IPv4, a network
// with its host bits cleared, an empty origin as OriginManual.
// MaxDecisionRateLimit bounds a rate-limit decision, in requests per minute:
// beyond it a limit means nothing, and enforcers size their buckets from it.
const MaxDecisionRateLimit = 1_000_000

func ValidateDecision(d Decision, now time.Time) (Decision, error) {
	switch d.Scope {
	case ScopeIP:
		ip, err := parseIP("value", d.Value)
		if err != nil {
			return d, err
		}
		d.Value = ip
	case ScopeCIDR:
		p, err := netip.ParsePrefix(d.Value)
		if err != nil {
			return d, invalid("value", fmt.Sprintf("%q is not a network (want e.g. 203.0.113.0/24)", d.Value))
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return d, invalid("value", fmt.Sprintf("%q mixes IPv4 and IPv6", d.Value))
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		d.Value = p.Masked().String()
	case ScopeUser:
		if err := text("value", d.Value, 256, true); err != nil {
			return d, err
		}
	case ScopeSession:
		if err := text("value", d.Value, 128, true); err != nil {
			return d, err
		}
	case "":
		return d, invalid("scope", "missing (want ip, cidr, user or session)")
	default:
		return d, invalid("scope", fmt.Sprintf("%q (want ip, cidr, user or session)", d.Scope))
	}
	switch d.Action {
	case ActionBlock, ActionBlockSensitive, ActionReadOnly, ActionRateLimit:
	case "":
		return d, invalid("action", "missing (want block, block-sensitive, read-only or rate-limit)")
	default:
		return d, invalid("action", fmt.Sprintf("%q (want block, block-sensitive, read-only or rate-limit)", d.Action))
	}
	if d.RateLimit < 0 {
		return d, invalid("rate_limit", "negative")
	}
	if d.RateLimit > MaxDecisionRateLimit {
		return d, invalid("rate_limit", fmt.Sprintf("%d requests per minute, at most %d", d.RateLimit, MaxDecisionRateLimit))
	}
	if d.RateLimit != 0 && d.Action != ActionRateLimit {
		return d, invalid("rate_limit", "only for action rate-limit")
	}
	if err := text("reason", d.Reason, 1024, false); err != nil {
		return d, err
	}
	if d.Origin == "" {
		d.Origin = OriginManual
	}
	if err := text("origin", d.Origin, 128, true); err != nil {
		return d, err
	}
	if !d.Expires.IsZero() {
		if d.Expires.After(maxTime) {
			return d, invalid("expires", "out of range")
		}
		if !d.Expires.After(now) {
			return d, invalid("expires", "in the past")
		}
		d.Expires = d.Expires.UTC()
	}
	return d, nil
}

// ValidateServiceName checks a service name: the last segment of its SPIFFE
// ID, so letters, digits, '.', '-' and '_', at most 128 bytes.
func ValidateServiceName(name string) error {
	if name == "" {
		return invalid("service", "missing")
	}
	if len(name) > 128 {
		return invalid("service", "longer than 128 bytes")
	}
	if name == "." || name == ".." {
		return invalid("service", fmt.Sprintf("%q", name))
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return invalid("service", fmt.Sprintf("%q has %q (want letters, digits, '.', '-', '_')", name, c))
		}
	}
	return nil
}

// ValidateJoinTokenSpec checks a join token to create and fills in the
// defaults.
func ValidateJoinTokenSpec(spec JoinTokenSpec) (JoinTokenSpec, error) {
	if err := ValidateServiceName(spec.Service); err != nil {
		return spec, err
	}
	ttl, err := ValidateJoinTokenTTL(spec.TTL)
	if err != nil {
		return spec, err
	}
	spec.TTL = ttl
	switch {
	case spec.Uses == 0:
		spec.Uses = 1
	case spec.Uses < 0:
		return spec, invalid("uses", "negative")
	case spec.Uses > MaxJoinTokenUses:
		return spec, invalid("uses", fmt.Sprintf("%d, at most %d", spec.Uses, MaxJoinTokenUses))
	}
	return spec, nil
}

// ValidateJoinTokenTTL checks a join token lifetime and fills in the
// default.
func ValidateJoinTokenTTL(ttl time.Duration) (time.Duration, error) {
	switch {
	case ttl == 0:
		return DefaultJoinTokenTTL, nil
	case ttl < 0:
		return 0, invalid("ttl", "negative")
	case ttl > MaxJoinTokenTTL:
		return 0, invalid("ttl", fmt.Sprintf("%v, at most %v", ttl, MaxJoinTokenTTL))
	}
	return ttl, nil
}

// ValidateInstance checks a heartbeat; nil lists become empty ones.
func ValidateInstance(in Instance) (Instance, error) {
	if err := ValidateServiceName(in.Service); err != nil {
		return in, err
	}
	if err := text("id", in.ID, 128, true); err != nil {
		return in, err
	}
	if err := text("version", in.Version, 128, false); err != nil {
		return in, err
	}
	if err := text("go_version", in.GoVersion, 64, false); err != nil {
		return in, err
	}
	const maxItems = 5000
	if len(in.Modules) > maxItems {
		return in, invalid("modules", fmt.Sprintf("%d, at most %d", len(in.Modules), maxItems))
	}
	for i, m := range in.Modules {
		if err := text("modules["+strconv.Itoa(i)+"].path", m.Path, 512, true); err != nil {
			return in, err
		}
		if err := text("modules["+strconv.Itoa(i)+"].version", m.Version, 128, false); err != nil {
			return in, err
		}
	}
	for _, l := range []struct {
		name  string
		items *[]string
		max   int
	}{{"routes", &in.Routes, 512}, {"peers", &in.Peers, 512}, {"db_drivers", &in.DBDrivers, 64}, {"callers", &in.Callers, 768}} {
		if len(*l.items) > maxItems {
			return in, invalid(l.name, fmt.Sprintf("%d, at most %d", len(*l.items), maxItems))
		}
		for i, s := range *l.items {
			if err := text(l.name+"["+strconv.Itoa(i)+"]", s, l.max, true); err != nil {
				return in, err
			}
		}
		if *l.items == nil {
			*l.items = []string{}
		}
	}
	if in.Modules == nil {
		in.Modules = []Module{}
	}
	return in, nil
}

// ValidateInstanceFilter checks a filter for Instances.
func ValidateInstanceFilter(f InstanceFilter) error {
	if f.Service != "" {
		if err := ValidateServiceName(f.Service); err != nil {
			return err
		}
	}
	return text("module", f.Module, 512, false)
}

// ValidateServiceFilter checks a filter for Services.
func ValidateServiceFilter(f ServiceFilter) error {
	return text("module", f.Module, 512, false)
}

// ValidatePolicy checks a policy document's size and encoding; its content
// is the control plane's to check.
func ValidatePolicy(yaml string) error {
	if yaml == "" {
		return invalid("yaml", "empty")
	}
	if len(yaml) > MaxPolicySize {
		return invalid("yaml", fmt.Sprintf("%d bytes, at most %d", len(yaml), MaxPolicySize))
	}
	if !utf8.ValidString(yaml) {
		return invalid("yaml", "not UTF-8")
	}
	if i := strings.IndexByte(yaml, 0); i >= 0 {
		return invalid("yaml", fmt.Sprintf("NUL byte at offset %d", i))
	}
	return nil
}

// ValidateActorKeys checks what PutActorKeys is given.
func ValidateActorKeys(data []byte, expectVersion int64) error {
	if len(data) == 0 {
		return invalid("data", "empty")
	}
	if len(data) > MaxActorKeysSize {
		return invalid("data", fmt.Sprintf("%d bytes, at most %d", len(data), MaxActorKeysSize))
	}
	if expectVersion < 0 {
		return invalid("expect_version", "negative")
	}
	return nil
}

// ValidateTrustBundle checks a trust bundle's size.
func ValidateTrustBundle(data []byte) error {
	if len(data) == 0 {
		return invalid("data", "empty")
	}
	if len(data) > MaxTrustBundleSize {
		return invalid("data", fmt.Sprintf("%d bytes, at most %d", len(data), MaxTrustBundleSize))
	}
	return nil
}

// ValidateID checks an id, such as a decision's, given to look something
// up: 1 to 128 bytes of letters, digits, '.', '_', ':' and '-'.
func ValidateID(field, id string) error { return identifier(field, id) }

// identifier checks an id chosen by a client: 1 to 128 bytes of letters,
// digits, '.', '_', ':' and '-'.
func identifier(field, id string) error {
	if id == "" {
		return invalid(field, "missing")
	}
	if len(id) > 128 {
		return invalid(field, "longer than 128 bytes")
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return invalid(field, fmt.Sprintf("has %q (want letters, digits, '.', '_', ':', '-')", c))
		}
	}
	return nil
}

// text checks a free-text field: UTF-8 without control characters, at most
// max bytes.
func text(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return invalid(field, "missing")
		}
		return nil
	}
	if len(s) > max {
		return invalid(field, fmt.Sprintf("longer than %d bytes", max))
	}
	if !utf8.ValidString(s) {
		return invalid(field, "not UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(field, fmt.Sprintf("has control character %U", r))
		}
	}
	return nil
}

// parseIP returns the canonical form of an IP address: IPv4-mapped IPv6 as
// IPv4, no zone.
func parseIP(field, s string) (string, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return "", invalid(field, fmt.Sprintf("%q is not an IP address", s))
	}
	return ip.Unmap().String(), nil
}
