package detect

import (
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Event kinds the built-in scenarios match. The security kinds are the
// values the SDK's guards and the gateway already report (rampart.Kind and
// the gateway's Kind* constants); the business kinds are new: the
// application reports them, and the gateway's request summaries become
// KindRequest events with a Count.
const (
	KindSQLInjection     = "sql_injection"
	KindCommandInjection = "command_injection"
	KindPathTraversal    = "path_traversal"
	KindSSRF             = "ssrf"
	KindWAF              = "waf"
	KindAuthFailed       = "auth_failed"
	KindRateLimited      = "rate_limited"

	KindLoginSuccess = "login_success"
	KindLoginFailure = "login_failure"
	KindObjectAccess = "object_access"
	// KindRequest is an ordinary request, or Count of them that share
	// actor, route, method, status and path (a request summary expanded
	// by the feeder).
	KindRequest = "request"
	// KindBusiness is a custom business event ("checkout", "payout"): its
	// name is in Attrs["name"].
	KindBusiness = "business"
)

// Limits on what the engine keeps of an event: every string it may hold
// in a bucket (evidence ids, keys, members) is cut to these, so that an
// attacker's long values cannot grow the state.
const (
	MaxAttrs      = 16
	MaxAttrKey    = 64
	MaxAttrValue  = 256
	MaxFieldBytes = 512
)

// Event is what the engine reads: one security event, one business event
// or one (summary of) ordinary request(s), attributed to its actor.
//
// Verification rule. Actor.IP is the address the reporter saw on the
// connection (the gateway's client address after its trusted-proxy rules,
// or the service's peer when no gateway fronts it) or the one a verified
// actor token carries; the feeder must never put a client-set header
// there, so the engine always trusts it. Actor.User, Actor.Session and
// Actor.Device are trusted only when ActorVerified is set: the control
// plane verified the actor token that names them, or the gateway reported
// the event itself (it authenticated the user and hashed the session).
// When ActorVerified is false the engine blanks these three before any
// expression sees the event, so an unverified user or session can key no
// bucket and name no decision. Login and Object are what the application
// says (an authenticated service, trusted): Login.Name is what the client
// typed, a target, not an actor; Login.User is the account the
// application resolved it to.
type Event struct {
	ID            string            `json:"id" expr:"id"`
	Time          time.Time         `json:"time" expr:"time"`
	Kind          string            `json:"kind" expr:"kind"`
	Action        string            `json:"action,omitempty" expr:"action"` // "blocked" or "monitored" for security kinds
	Service       string            `json:"service,omitempty" expr:"service"`
	Route         string            `json:"route,omitempty" expr:"route"` // the route template, e.g. "GET /users/{id}"
	Method        string            `json:"method,omitempty" expr:"method"`
	Path          string            `json:"path,omitempty" expr:"path"`
	Status        int               `json:"status,omitempty" expr:"status"`
	Count         int               `json:"count,omitempty" expr:"count"` // requests this event stands for; 0 means 1
	Actor         Actor             `json:"actor" expr:"actor"`
	ActorVerified bool              `json:"actor_verified,omitempty" expr:"actor_verified"`
	Login         Login             `json:"login,omitzero" expr:"login"`
	Object        Object            `json:"object,omitzero" expr:"object"`
	Attrs         map[string]string `json:"attrs,omitempty" expr:"attrs"`
}

// Actor is who an event is attributed to: the scopes a decision can name.
type Actor struct {
	IP      string `json:"ip,omitempty" expr:"ip"`
	User    string `json:"user,omitempty" expr:"user"`
	Session string `json:"session,omitempty" expr:"session"` // hex SHA-256 of the session credential
	Device  string `json:"device,omitempty" expr:"device"`   // a device fingerprint the application or gateway computed
}

// Login is what a login event says about the attempt.
type Login struct {
	Name   string `json:"name,omitempty" expr:"name"`     // the login name as typed
	User   string `json:"user,omitempty" expr:"user"`     // the account it resolved to, if any
	Exists bool   `json:"exists,omitempty" expr:"exists"` // whether the login name names an account
	MFA    bool   `json:"mfa,omitempty" expr:"mfa"`       // whether a second factor was verified
}

// Object is the object a handler served, for ownership checks (BOLA).
type Object struct {
	Kind  string `json:"kind,omitempty" expr:"kind"`
	ID    string `json:"id,omitempty" expr:"id"`
	Owner string `json:"owner,omitempty" expr:"owner"` // the owning user's id
}

// bound cuts what the engine may keep of ev and blanks the unverified
// actor fields (see the rule on Event). It works on a copy: the caller's
// event is not modified.
func bound(ev Event) Event {
	for _, p := range []*string{&ev.ID, &ev.Kind, &ev.Action, &ev.Service, &ev.Route, &ev.Method, &ev.Path,
		&ev.Actor.IP, &ev.Actor.User, &ev.Actor.Session, &ev.Actor.Device,
		&ev.Login.Name, &ev.Login.User, &ev.Object.Kind, &ev.Object.ID, &ev.Object.Owner} {
		*p = truncate(*p, MaxFieldBytes)
	}
	if !ev.ActorVerified {
		ev.Actor.User, ev.Actor.Session, ev.Actor.Device = "", "", ""
	}
	ev.Login.Name = foldLoginName(ev.Login.Name)
	if ev.Count < 1 {
		ev.Count = 1
	}
	if len(ev.Attrs) > 0 {
		ok := len(ev.Attrs) <= MaxAttrs
		for k, v := range ev.Attrs {
			if len(k) > MaxAttrKey || len(v) > MaxAttrValue {
				ok = false
				break
			}
		}
		if !ok {
			m := make(map[string]string, min(len(ev.Attrs), MaxAttrs))
			for _, k := range slices.Sorted(maps.Keys(ev.Attrs)) {
				if len(m) == MaxAttrs {
					break
				}
				m[truncate(k, MaxAttrKey)] = truncate(ev.Attrs[k], MaxAttrValue)
			}
			ev.Attrs = m
		}
	}
	return ev
}

// foldLoginName is the login name as detection counts it: trimmed and
// lower-cased, so that "Alice@Example.com", " alice@example.com" and
// "ALICE@EXAMPLE.COM" are one account. Spelled apart they would split a
// brute-force bucket in twelve and let a success typed in another case
// escape account takeover. Names already in that form are not copied.
func foldLoginName(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			return strings.ToLower(strings.TrimSpace(s))
		}
	}
	return s
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.Clone(s[:cut]) // not a view: the rest of s must not stay alive
}
