// Package detect is the control plane's detection engine: it reads the
// events of the gateway and the services (attacks the guards and the WAF
// saw, logins, objects served, summaries of ordinary requests), counts
// them in keyed buckets as scenarios say, and raises alerts that carry
// the decisions to make (block an address, a range or a device; make a
// user read-only; ...).
//
// The engine is pure: no I/O, no clock. Buckets leak on the events' own
// times, so replaying stored events through a changed scenario gives
// what it would have decided, and fixture tests give the same answer on
// every machine. Its state is bounded: each scenario holds at most
// Config.MaxKeys buckets (least recently used evicted, counted in
// Stats), drained buckets are forgotten, a bucket's distinct values are
// counted exactly up to 64 and by a 4 KiB HyperLogLog sketch past that
// (hashed with a key drawn at random per engine, so that nobody can craft
// values that undercount), and every string it keeps is cut to a few
// hundred bytes.
//
// # Scenarios
//
// A scenario is a YAML document whose field names follow CrowdSec's where
// they fit:
//
//	name: credential-stuffing-ip            # unique; no spaces
//	description: failures for many login names from one address
//	type: leaky                             # leaky | trigger | conditional
//	filter: evt.kind == "login_failure"     # which events count (a condition)
//	groupby: evt.actor.ip                   # the bucket's key; "" leaves the event out
//	distinct: evt.login.name                # optional: count distinct values, not events
//	sequence: evt.object.id                 # optional, instead: count the steps of a walk n, n+1, n+2…
//	capacity: 20                            # leaky: the event that takes the level over it raises the alert
//	leakspeed: 30s                          # one event (or value) leaks out each period
//	blackhole: 1h                           # after an alert the key is silent (default: the decision's TTL)
//	cancel_on: evt.kind == "login_success"  # optional: an event that empties the bucket
//	exceptions:                             # optional, as in Falco: value tuples that exempt an event
//	  - name: office
//	    fields: [evt.actor.ip]
//	    comps: [in_cidr]
//	    values: [[198.51.100.0/24]]
//	response:                               # optional: without it, alerts only
//	  scope: ip                             # ip | range (/24, /64) | user | session | device
//	  action: block                         # block | block-sensitive | read-only | rate-limit
//	  ttl: 1h
//	  escalation: {max: 7d}                 # TTL × 2 on each repeat, up to max
//	  simulate: false                       # true: recorded and shown, not enforced
//
// A sequence scenario reads the number that ends the expression's value
// ("1042" of "o-1042") and fills by one for the first value and for each
// step of 1 or 2 onwards in the walk's direction; a repeat, a jump or a
// step back fills nothing, so that reading a few neighbouring objects back
// and forth is not a walk.
//
// Other fields: weight (leaky: how much an event fills, default its
// Count), condition (conditional: the event for which it holds raises the
// alert, with count the events already in the bucket), members (decide
// against each actor of a campaign whose key is its target; min, max,
// clear_on), and
// response.value (the decision's value, by default the scope's field of
// the actor), response.rate_limit, response.escalation.factor and
// .memory.
//
// Expressions are github.com/expr-lang/expr over the event, as evt with
// the JSON field names of Event (evt.actor.ip, evt.login.exists,
// evt.object.owner, evt.attrs.role), plus key(a, b, ...) (a space-joined
// key, a part with a space or quote written Go-quoted so that no two
// lists of parts give one key; "" if a part is empty), ip_range(ip) and in_cidr(ip, cidr). They
// are compiled once at load against the event's type: a misspelt field
// is a load error naming the file, the line and the scenario field, as
// is an unknown field, a bad duration or a missing ttl.
//
// # Verified actors
//
// Only verified actor fields may key a bucket or name a decision: see
// Event for the rule, which the feeder must keep (the engine blanks the
// user, session and device of an event not marked ActorVerified).
//
// # Fixtures
//
// RunFixture runs a directory of input.jsonl through its scenarios and
// compares the alerts with expected.jsonl; every directory under
// testdata/fixtures is run by the package's tests, and is an example of
// the format.
package detect
