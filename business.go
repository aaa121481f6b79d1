package rampart

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
)

// Business events: what only the application knows about a request (who
// logged in, which object it served and whose it is, a checkout, a
// payout), recorded with the request's actor, route and trace so that
// detection in the control plane can tell abuse from ordinary use.
//
// The functions find the agent through the request that Agent.Handler is
// serving, from ctx (the request's context or one derived from it) or,
// when ctx carries no request, from the calling goroutine, as guards do.
// Outside a request (no Handler, a background job, a context.Background
// in another goroutine) there is no agent to report to: they do nothing
// and cost nothing. They never block the request and never fail it: the
// event is queued as the guards' events are, and a full queue drops it
// (Stats.Dropped), as it does a request's business events past the 32nd
// (a listing of others' objects would otherwise fill the queue, and the
// security events of the requests that follow would be lost).
//
// Limits on what a business event copies from the application's values:
// what is longer is cut (ending in "…"), what is more is left out. They
// fit what the control plane's detection keeps of an event.
const (
	MaxEventName      = 64  // TrackEvent's name, bytes
	MaxEventAttrs     = 16  // attributes of a business event, its "name" included
	MaxEventAttrKey   = 64  // bytes of an attribute's key
	MaxEventAttrValue = 256 // bytes of an attribute's value
	maxLoginField     = 256 // Login.Name, Login.User, the SetUser user, an object's owner
	maxObjectKind     = 64
	maxObjectID       = 128
	// maxRequestEvents bounds the business events of one request: a
	// listing of others' objects would otherwise queue one per object,
	// and the queue, full, would drop the security events of the
	// requests that follow. Detection needs a handful per request.
	maxRequestEvents = 32
)

// Login is what TrackLogin reports about an attempt to log in.
type Login struct {
	// Name is the login name as the client typed it: an e-mail address,
	// a user name. Detection counts distinct names per actor (credential
	// stuffing, enumeration), so report it even when it names no one.
	Name string `json:"name,omitempty"`
	// User is the account the name resolved to, "" if none.
	User string `json:"user,omitempty"`
	// Success says whether the attempt logged the actor in.
	Success bool `json:"success,omitempty"`
	// UserExists says whether Name names an account, whatever the
	// password: failures for names that exist are guessing, failures for
	// names that do not are enumeration.
	UserExists bool `json:"exists,omitempty"`
	// MFA says whether a second factor was verified.
	MFA bool `json:"mfa,omitempty"`
}

// Object names an object a handler served, for ObjectAccess and the
// request summaries.
type Object struct {
	Kind  string `json:"kind,omitempty"`  // e.g. "invoice"
	ID    string `json:"id,omitempty"`    // e.g. "42"
	Owner string `json:"owner,omitempty"` // the owning user's id, as the actor's user is written
}

// SetUser records id as the user of the request that ctx belongs to, for
// a service that authenticates its users itself (a session of its own, a
// login form): its events then name that user when no verified actor
// token names one. Call it once the service has authenticated the user,
// typically in its authentication middleware, inside Agent.Handler.
//
// The user is the service's claim, not a verified fact: an actor token
// from a Rampart gateway backs only the user the gateway authenticated.
// When the request's token carries no user, the control plane stores the
// event's address and session as verified and its user as claimed by the
// service (actor_user_claimed_by); without a token, the whole actor is
// the service's claim. A claimed user never drives an automatic
// decision. TrackLogin's events in the mesh never carry it (see
// TrackLogin). A user that a verified actor token names always wins over
// SetUser's.
//
// id is cut to 256 bytes, and its control characters and invalid UTF-8
// replaced by U+FFFD (the control plane refuses them in an actor). Outside
// a request SetUser does nothing.
func SetUser(ctx context.Context, id string) {
	req := requestFor(ctx)
	if req == nil {
		return
	}
	id = truncate(printableText(id), maxLoginField)
	req.user.Store(&id)
}

// printableText returns s with invalid UTF-8 and control characters
// replaced by U+FFFD.
func printableText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

// requestBusiness is what a request holds of the business calls made for
// it.
type requestBusiness struct {
	user   atomic.Pointer[string] // SetUser's
	events atomic.Int32           // business events reported

	objMu          sync.Mutex
	objects        []Object // distinct objects served, for the summary
	objectsOmitted int      // objects that did not fit
}

// claimedUser returns the user SetUser recorded, "" if none.
func (q *request) claimedUser() string {
	if p := q.user.Load(); p != nil {
		return *p
	}
	return ""
}

// requestUser is the user the request's events name: the verified actor
// token's, else SetUser's.
func (q *request) requestUser() string {
	if q.actor != nil && q.actor.User != "" {
		return q.actor.User
	}
	return q.claimedUser()
}

// actorIP is the address of the request's actor: the verified actor
// token's, or, for a service outside the mesh (no Config.Identity), the
// connection's peer. In the mesh the peer is a Rampart gateway or another
// service, never the actor, so a request without a token has none. Behind
// a proxy that is not a Rampart gateway, the peer is that proxy.
func (q *request) actorIP() netip.Addr {
	if q.actor != nil {
		return q.actor.IP
	}
	if q.agent.zt != nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(q.r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().WithZone("").Unmap() // the control plane takes no zone
}

// TrackLogin reports an attempt to log in, as a login_success or
// login_failure event with the request's actor, route and trace. Report
// every attempt the service decides, successes included: account
// takeover is a success after failures. In the mesh the attempt's actor
// is the one the request's actor token names, never SetUser's user: the
// token does not back that claim, and detection reads an event with a
// claimed actor as having none, so a client holding a session of its own
// would hide its attempts. Name and User are cut to 256 bytes, their
// control characters and invalid UTF-8 replaced by U+FFFD (a log line
// that shows them must not obey them); a Name that is the value of a
// secret input of the request (a password typed in the wrong field) is
// redacted. Outside a request it does nothing.
func TrackLogin(ctx context.Context, l Login) {
	req := requestFor(ctx)
	if req == nil {
		return
	}
	kind := KindLoginFailure
	if l.Success {
		kind = KindLoginSuccess
	}
	req.agent.redactValues(ctx, []*string{&l.Name})
	l.Name, l.User = truncate(printableText(l.Name), maxLoginField), truncate(printableText(l.User), maxLoginField)
	req.agent.reportBusiness(ctx, req, Event{Kind: kind, Login: l})
}

// TrackEvent reports a business event of the application ("checkout",
// "password_reset", "payout") with attributes, as a business event with
// the request's actor, route and trace; detection's scenarios match it
// by its name (attrs.name) and attributes. The name is cut to
// MaxEventName bytes; the event keeps at most MaxEventAttrs attributes,
// its name included (an attribute named "name" is replaced by it), the
// first in key order, keys cut to MaxEventAttrKey and values to
// MaxEventAttrValue bytes, control characters and invalid UTF-8 replaced
// by U+FFFD in all. The value of an attribute whose key looks like
// a secret's (password, token, key, ... and Config.SecretNames, as for
// inputs) is replaced by Redacted, and so is the value of any secret
// input of the request wherever a value holds it. Outside a request it
// does nothing.
func TrackEvent(ctx context.Context, name string, attrs map[string]string) {
	req := requestFor(ctx)
	if req == nil {
		return
	}
	a := req.agent
	keys := make([]string, 0, min(len(attrs), MaxEventAttrs))
	vals := make([]string, 0, cap(keys)+1)
	seen := make(map[string]bool, cap(keys))
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if len(keys) == MaxEventAttrs-1 {
			break
		}
		key := truncate(printableText(k), MaxEventAttrKey)
		if key == "name" || seen[key] {
			continue // the name is the argument's; of two keys alike once cut, the first wins
		}
		seen[key] = true
		v := attrs[k]
		if v != "" && a.secrets.secret(Input{Name: k}) {
			v = Redacted
		}
		keys, vals = append(keys, key), append(vals, v)
	}
	vals = append(vals, name)
	// Every value (the name too) is redacted before it is cut, so that no
	// part of a secret is left.
	fields := make([]*string, len(vals))
	for i := range vals {
		fields[i] = &vals[i]
	}
	a.redactValues(ctx, fields)
	m := make(map[string]string, len(vals))
	for i, k := range keys {
		m[k] = truncate(printableText(vals[i]), MaxEventAttrValue)
	}
	m["name"] = truncate(printableText(vals[len(vals)-1]), MaxEventName)
	ev := Event{Kind: KindBusiness, Attrs: m}
	a.reportBusiness(ctx, req, ev)
}

// ObjectAccess tells Rampart that the request served the object of the
// given kind and id, owned by the user owner ("" for an object no one
// owns, a public one). Detection needs it for what a WAF can only guess:
// an actor reading other users' objects (broken object-level
// authorization), walking ids in sequence, scraping.
//
// An object served to an actor who is not its owner (the request's user,
// from its verified actor token or SetUser, differs from owner, or the
// request has no user) is reported at once as an object_access event with
// the owner (of a request's first 32 business events; see above). Every object, owned by the actor or not, is also counted in
// the request's summary when Config.SummaryWindow is set. kind is cut to
// 64 bytes, id to 128 and owner to 256, their control characters replaced
// by U+FFFD, and the value of any secret input of the request (an object
// addressed by a reset or invitation token) wherever they hold it by
// Redacted. Outside a request it does nothing.
func ObjectAccess(ctx context.Context, kind, id, owner string) {
	req := requestFor(ctx)
	if req == nil {
		return
	}
	// An object addressed by a secret (a reset or invitation token) is
	// the only place the SDK would copy it from: redacted before it is
	// cut, so that no part of it is left.
	req.agent.redactValues(ctx, []*string{&kind, &id, &owner})
	o := Object{Kind: truncate(printableText(kind), maxObjectKind), ID: truncate(printableText(id), maxObjectID),
		Owner: truncate(printableText(owner), maxLoginField)}
	if s := req.agent.sum; s != nil {
		req.noteObject(o, s.maxObjects)
	}
	if o.Owner != "" && o.Owner != req.requestUser() {
		req.agent.reportBusiness(ctx, req, Event{Kind: KindObjectAccess, Object: o})
	}
}

// noteObject adds o to the objects the request served, up to max distinct
// ones; the rest are counted.
func (q *request) noteObject(o Object, max int) {
	q.objMu.Lock()
	defer q.objMu.Unlock()
	o.Owner = "" // the summary counts ids; foreign objects have events of their own
	if slices.Contains(q.objects, o) {
		return
	}
	if len(q.objects) >= max {
		q.objectsOmitted++
		return
	}
	q.objects = append(q.objects, o)
}

// reportBusiness queues a business event about req: the request's actor
// (the verified token's, else SetUser's user and, outside the mesh, the
// peer's address), route and trace.
func (a *Agent) reportBusiness(ctx context.Context, req *request, ev Event) {
	if req.events.Add(1) > maxRequestEvents {
		a.stats.events.Add(1)
		a.stats.dropped.Add(1)
		return
	}
	ev.ID, ev.Time, ev.Service, ev.Action = newID(), time.Now().UTC(), a.service, ActionObserved
	_, ev.Location = applicationStack(3)
	req.describe(&ev)
	// A login attempt under a user SetUser claims (a session the client
	// already holds, perhaps of an account of its own) keeps that user:
	// the control plane stores it as claimed (the token backs the address
	// and session, not the user) and detection reads the address and
	// session only, so the claim neither hides the attempt nor names
	// anyone in a decision.
	// The control plane refuses an actor user over 256 bytes, and the
	// batch with it: a user with a long name (the gateway does not bound
	// its token's sub) would get every event of the batch refused. Cut,
	// the token no longer backs it: the event is stored as claimed.
	ev.ActorUser = truncate(ev.ActorUser, maxLoginField)
	if ev.ActorIP == "" {
		ev.ActorIP = actorAddr(req.actorIP())
	}
	if ev.TraceID == "" {
		ev.TraceID = traceOf(ctx)
	}
	a.enqueue(ev)
}

// traceOf returns the trace id of the span in ctx, the application's own
// tracing, "" if none.
func traceOf(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// redactValues replaces in each of fields the value of every secret
// input of the request, as Agent.redact does in a security event's text.
func (a *Agent) redactValues(ctx context.Context, fields []*string) {
	var secrets []string
	for in := range Inputs(ctx) {
		if len(in.Value) >= minRedactLen && in.Value != in.Name && a.secrets.secret(in) {
			secrets = append(secrets, spellings(in.Value)...)
		}
	}
	if len(secrets) == 0 {
		return
	}
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, v := range slices.Compact(secrets) {
		for _, f := range fields {
			if *f != Redacted {
				*f = strings.ReplaceAll(*f, v, Redacted)
			}
		}
	}
}
