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

// attributeActors sets ActorVerified and ActorClaimedBy on events posted by
// caller ("" for the admin), whatever the poster put there, by the rule of
// the package documentation: an actor is verified when a gateway or the
// admin posts it, or when the actor token posted with the event backs it;
// otherwise it is claimed by caller. Only verified actors may drive
// automatic decisions.
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
