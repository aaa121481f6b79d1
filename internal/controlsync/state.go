package controlsync

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rampartsec/rampart/internal/decision"
	"github.com/rampartsec/rampart/internal/policy"
)

// Policy fetches and parses the current policy; nil (and no error) if none
// was ever applied, which allows no call between services.
func (c *Client) Policy(ctx context.Context) (*policy.Policy, error) {
	var p struct {
		Version int64  `json:"version"`
		YAML    string `json:"yaml"`
	}
	err := c.Get(ctx, "/v1/policy", &p)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	doc, err := policy.Parse(p.YAML)
	if err != nil {
		return nil, fmt.Errorf("policy version %d: %w", p.Version, err)
	}
	return doc, nil
}

// Decisions fetches the live decisions, indexed.
func (c *Client) Decisions(ctx context.Context) (*decision.Set, error) {
	var l struct {
		Decisions []decision.Decision `json:"decisions"`
	}
	if err := c.Get(ctx, "/v1/decisions", &l); err != nil {
		return nil, err
	}
	return decision.NewSet(l.Decisions)
}

// ActorKeys fetches the JSON Web Key Set that verifies actor tokens.
func (c *Client) ActorKeys(ctx context.Context) (json.RawMessage, error) {
	var b struct {
		JWKS json.RawMessage `json:"jwks"`
	}
	if err := c.Get(ctx, "/v1/bundle", &b); err != nil {
		return nil, err
	}
	return b.JWKS, nil
}
