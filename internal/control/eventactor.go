package control

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
)

// MaxEventDelay is how old an event may be, when it arrives, for the actor
// token it carries to back its actor: events are delivered late (batches,
// retries after an outage), so the token may have expired since; it must
// have been valid when the event happened, and the event must be recent.
const MaxEventDelay = time.Hour

// IncomingEvent is one event of POST /v1/events: the stored fields, and
// the actor token the posting service received with the request the event
// is about (actor.Header), which backs the event's actor. The token is
// checked and dropped: it is never stored.
type IncomingEvent struct {
	store.Event
	ActorToken string `json:"actor_token,omitempty"`
}

// # Who an event names
//
// A service posts events that name an actor (actor_ip, actor_user,
// session_hash). A compromised service could name anyone — an innocent
// user, a partner's IP — and, if detectors believed it, get them blocked.
// So the control plane stores, with each event, whether its actor is
// verified (store.Event.ActorVerified):
//
//   - An event posted by a gateway (Config.GatewayServices) is verified:
//     the gateway is the edge that authenticates clients and mints the
//     actor tokens; a compromised gateway could mint any token anyway.
//   - An event posted by another service is verified when it carries the
//     actor token that service received (IncomingEvent.ActorToken; the
//     SDK's control-plane sink sends it) and the token: has a good
//     signature by a key the control plane publishes; names the posting
//     service in its audience; was valid when the event happened (with the
//     usual leeway), the event being at most MaxEventDelay old; and names
//     exactly the event's actor (IP, user, session).
//   - Otherwise the actor is only claimed: ActorVerified is false and
//     ActorClaimedBy names the posting service. The event is stored and
//     shown as it came, marked so.
//   - Events posted with the admin token are verified (the admin can make
//     decisions directly; nothing is gained by doubting it).
//
// The rule for everything that decides automatically (detectors, and any
// future automation on the event stream): only events whose actor is
// verified may drive a decision against that actor — select them with
// store.EventFilter.ActorVerified (GET /v1/events?actor_verified=true). A
// claimed actor is evidence against the service that claimed it, not
// against the actor: people may read it, machines must not act on it.

// attributeActors sets ActorVerified and ActorClaimedBy on events posted by
// caller ("" for the admin), whatever the poster put there.
func (h *Handler) attributeActors(ctx context.Context, caller string, in []IncomingEvent) []store.Event {
	out := make([]store.Event, len(in))
	var verifier *actor.Verifier
	verified := map[string]verifiedToken{}
	now := h.cfg.Now()
	for i, e := range in {
		ev := e.Event
		ev.ActorVerified, ev.ActorClaimedBy = false, ""
		hasActor := ev.ActorIP != "" || ev.ActorUser != "" || ev.SessionHash != ""
		switch {
		case !hasActor:
		case caller == "" || slices.Contains(h.gateways, caller):
			ev.ActorVerified = true
		default:
			if e.ActorToken != "" && verifier == nil {
				verifier = h.eventVerifier(ctx, caller)
			}
			if verifier != nil && e.ActorToken != "" {
				ev.ActorVerified = backs(verifier, verified, e.ActorToken, ev, now)
			}
			if !ev.ActorVerified {
				ev.ActorClaimedBy = caller
			}
		}
		out[i] = ev
	}
	return out
}

type verifiedToken struct {
	actor actor.Actor
	err   error
}

// backs reports whether token backs the actor of ev.
func backs(v *actor.Verifier, seen map[string]verifiedToken, token string, ev store.Event, now time.Time) bool {
	if ev.Time.Before(now.Add(-MaxEventDelay)) || ev.Time.After(now.Add(actor.DefaultLeeway)) {
		return false
	}
	// The token was valid when the event happened. Cache by token and
	// time: events of one request share the token and nearly the time.
	key := token + "@" + ev.Time.Truncate(time.Second).String()
	vt, ok := seen[key]
	if !ok {
		vt.actor, vt.err = v.VerifyAt(token, ev.Time)
		if len(seen) < 1000 {
			seen[key] = vt
		}
	}
	if vt.err != nil {
		return false
	}
	a := vt.actor
	ip, err := netip.ParseAddr(ev.ActorIP)
	return err == nil && ip.Unmap() == a.IP && ev.ActorUser == a.User && ev.SessionHash == a.Session
}

// eventVerifier returns a Verifier of the tokens received by caller, with
// the keys the control plane publishes, or nil if there are none.
func (h *Handler) eventVerifier(ctx context.Context, caller string) *actor.Verifier {
	ks, _, err := h.keySet(ctx)
	if err != nil || ks == nil {
		if err != nil {
			h.log.Warn("control: cannot read the actor-token keys to verify events; their actors are stored as claimed", "err", err)
		}
		return nil
	}
	jwks, err := ks.JWKS(h.cfg.Now())
	if err != nil {
		return nil
	}
	id, err := ca.ServiceID(h.cfg.CA.TrustDomain(), caller)
	if err != nil {
		return nil
	}
	v, err := actor.NewVerifier(actor.VerifierConfig{Audience: id.String(), Now: h.cfg.Now})
	if err != nil || v.SetKeys(jwks) != nil {
		return nil
	}
	return v
}
