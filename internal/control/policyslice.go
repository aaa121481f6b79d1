package control

import (
	"fmt"
	"slices"

	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store"
)

// What each caller may read of the policy and the decisions.
//
// The admin token and the gateways (Config.GatewayServices) read the
// whole policy and every decision: a gateway decides, for each upstream
// service it routes to, which routes are sensitive (block-sensitive
// decisions), and enforces rate-limit decisions at the edge.
//
// Any other service identity reads its slice: the policy document with
// edge: and only its own entry under services: (the callers it accepts, on
// which routes an actor is required, and its
// sensitive routes, which is all that an agent compiles,
// policy.Policy.Compile(self)), or services: {} if the policy does not
// name it; and the decisions it enforces, which are those of actions
// block, read-only and block-sensitive (rate-limit decisions are enforced
// by gateways only). A service so never learns which other services exist,
// whom they accept, nor the rate limits put on actors. The slice is
// rebuilt from the parsed policy, so no comment, anchor or ordering of the
// original document reaches it. The watch (GET /v1/watch) is not
// filtered: it tells only that a policy version or a decision id changed,
// not what either says.

// PolicyView is the response to GET /v1/policy.
type PolicyView struct {
	store.Policy
	// SliceFor, when set, is the service whose slice YAML is: the policy
	// with only that service's entry.
	SliceFor string `json:"slice_for,omitempty"`
}

// readsEverything reports whether a caller ("" for the admin) reads the
// whole policy and every decision.
func (h *Handler) readsEverything(caller string) bool {
	return caller == "" || slices.Contains(h.gateways, caller)
}

// enforces reports whether a service that reads its slice is given d.
func enforces(d store.Decision) bool { return d.Action != store.ActionRateLimit }

// slicePolicy returns the policy document text with only service's entry,
// and edge: spelled out: the document's, or else defaultEdge, the gateways
// this control plane serves the signing key to. A policy that omits edge:
// so means "the gateways", whatever they are named, and not the name
// "gateway" alone: a gateway joined as "edge-eu" would otherwise leave every
// route it reaches without an actor requirement.
func slicePolicy(text, service string, defaultEdge []string) (string, error) {
	p, err := policy.Parse(text)
	if err != nil {
		return "", fmt.Errorf("stored policy: %w", err)
	}
	// The edge decides which of the service's routes require an actor, so
	// the slice always states it, the default spelled out.
	edge := p.Edge
	if edge == nil {
		edge = defaultEdge
	}
	if edge == nil {
		edge = policy.DefaultEdge
	}
	slice := policy.Policy{Edge: edge, Services: map[string]policy.ServicePolicy{}}
	if sp, ok := p.Services[service]; ok {
		slice.Services[service] = sp
	}
	data, err := slice.Marshal()
	if err != nil {
		return "", fmt.Errorf("policy slice: %w", err)
	}
	return string(data), nil
}
