package control

import (
	"bytes"
	"context"
	"encoding/json"
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

// attributeActors sets ActorVerified, ActorClaimedBy and
// ActorUserClaimedBy on events posted by caller ("" for the admin),
// whatever the poster put there, by the rule of the package
// documentation, field by field: an actor is verified when a gateway or
// the admin posts it, or when the actor token posted with the event backs
// it; otherwise it is claimed by caller. A token backs the address and
// the session it carries, and the user it carries if any: when it carries
// none (the user logged in at the service, which named it with SetUser),
// the actor is verified for its address and session and its user is
// claimed by caller (ActorUserClaimedBy). A token whose user is not the
// event's backs nothing: the event names another actor than the token's.
// Only verified actor fields may drive automatic decisions.
func (h *Handler) attributeActors(ctx context.Context, caller string, in []IncomingEvent) []store.Event {
	out := make([]store.Event, len(in))
	var verifier *actor.Verifier
	verified := map[string]verifiedToken{}
	now := h.cfg.Now()
	for i, e := range in {
		ev := e.Event
		ev.ActorVerified, ev.ActorClaimedBy, ev.ActorUserClaimedBy = false, "", ""
		hasActor := ev.ActorIP != "" || ev.ActorUser != "" || ev.SessionHash != ""
		switch {
		case !hasActor:
		case caller == "" || slices.Contains(h.gateways, caller):
			ev.ActorVerified = true
		default:
			if e.ActorToken != "" && verifier == nil {
				verifier = h.eventVerifier(ctx, caller)
			}
			b := notBacked
			if verifier != nil && e.ActorToken != "" {
				b = backs(verifier, verified, e.ActorToken, ev, now)
			}
			switch b {
			case backed:
				ev.ActorVerified = true
			case backedButUser:
				ev.ActorVerified, ev.ActorUserClaimedBy = true, caller
			default:
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

// backing is how much of an event's actor a token backs.
type backing int

const (
	notBacked     backing = iota
	backed                // every field
	backedButUser         // the address and session; the token carries no user, the event names one
)

// backs reports how much of the actor of ev token backs.
func backs(v *actor.Verifier, seen map[string]verifiedToken, token string, ev store.Event, now time.Time) backing {
	if ev.Time.Before(now.Add(-MaxEventDelay)) || ev.Time.After(now.Add(actor.DefaultLeeway)) {
		return notBacked
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
		return notBacked
	}
	a := vt.actor
	ip, err := netip.ParseAddr(ev.ActorIP)
	switch {
	case err != nil || ip.Unmap() != a.IP || ev.SessionHash != a.Session:
		return notBacked
	case !deviceBacked(ev.Data, a.Device):
		// The event names another device than the token: detection
		// reads the device of a verified actor (DetectEvent), so a
		// service must not choose it.
		return notBacked
	case ev.ActorUser == a.User:
		return backed
	case a.User == "":
		return backedButUser
	}
	return notBacked
}

// deviceBacked reports whether the device an event's data names (its
// "device" field, which the SDK copies from the actor token) is the
// token's device, or the data names none. Data without the word is not
// decoded.
func deviceBacked(data []byte, device string) bool {
	if !bytes.Contains(data, []byte(`"device"`)) {
		return true
	}
	var d struct {
		Device string `json:"device"`
	}
	if json.Unmarshal(data, &d) != nil {
		return false
	}
	return d.Device == "" || d.Device == device
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
