package gateway

import (
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/policy"
)

// audiences computes, from the policy, the audience of the actor tokens
// minted for each upstream service: the service and every service the
// policy lets a request reach from it (policy.Reach). A service outside
// that set refuses the token, and so does a service inside it when the
// caller presenting it is outside (actor.Actor.HeldBy): a token captured
// in one part of the mesh cannot be replayed in another.
func (g *Gateway) audiences(doc *policy.Policy) map[string]actor.Audience {
	out := map[string]actor.Audience{}
	for _, r := range g.routes {
		s := r.cfg.Service
		if s == "" {
			continue
		}
		var ids []string
		for _, name := range doc.Reach(s) {
			if id, err := identity.ServiceID(g.td, name); err == nil {
				ids = append(ids, id.String())
			}
		}
		if len(ids) > actor.MaxAudience {
			// Past the bound the token would not verify: name the
			// upstream alone, which still serves its first hop.
			g.log.Warn("rampart gateway: the policy lets a request reach more services than an actor token names; the token names the upstream only",
				"service", s, "reach", len(ids), "max", actor.MaxAudience)
			id, _ := identity.ServiceID(g.td, s)
			ids = []string{id.String()}
		}
		if aud, err := actor.NewAudience(ids...); err == nil {
			out[s] = aud
		}
	}
	return out
}

// actorToken mints the token for a request to rt: for a mesh service,
// naming the services of its audience; otherwise naming the trust domain,
// which no Rampart service accepts.
func (g *Gateway) actorToken(rt *route, a actor.Actor) (string, error) {
	if s := rt.cfg.Service; s != "" {
		if m := g.audience.Load(); m != nil {
			if aud, ok := (*m)[s]; ok {
				return g.signer.TokenFor(a, aud)
			}
		}
	}
	return g.signer.Token(a)
}
