package actor

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Defaults of a Verifier.
const (
	DefaultVerifierCache = 10_000
	DefaultLeeway        = 30 * time.Second
)

// allowed are the only algorithms a token may use: fast to verify, and
// never RSA on the request path; "none" and HMAC are never accepted.
var allowed = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Audience a token must name in "aud": the verifying service's own
	// SPIFFE ID ("spiffe://example.org/svc/orders"). Required.
	Audience string
	// MaxCached bounds the verified tokens remembered; 0 means
	// DefaultVerifierCache.
	MaxCached int
	// Leeway tolerated on exp and nbf for clock skew; 0 means
	// DefaultLeeway.
	Leeway time.Duration
	// OnUnknownKey, if set, is called (on the verifying goroutine; it must
	// not block) when a token names a key the Verifier does not have, so
	// that the caller can fetch the key set again.
	OnUnknownKey func(keyID string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks actor tokens against the control plane's published keys.
// A verified token is remembered until it expires, so checking it again —
// at the next hop of a fan-out, or on the actor's next request — costs a map
// lookup. It is safe for concurrent use.
type Verifier struct {
	cfg  VerifierConfig
	keys atomic.Pointer[map[string]jose.JSONWebKey]

	// Two generations: new tokens go to cache; when it holds half the
	// bound, it becomes old and the oldest generation is dropped whole, so
	// the bound holds without ever scanning the map under the lock.
	mu         sync.RWMutex
	cache, old map[string]Actor
}

// NewVerifier returns a Verifier with no keys; call SetKeys.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Audience == "" {
		return nil, errors.New("actor: VerifierConfig.Audience is required (the trust domain's SPIFFE ID)")
	}
	if cfg.MaxCached == 0 {
		cfg.MaxCached = DefaultVerifierCache
	}
	if cfg.MaxCached < 0 {
		return nil, fmt.Errorf("actor: VerifierConfig.MaxCached %d is negative", cfg.MaxCached)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg, cache: map[string]Actor{}, old: map[string]Actor{}}
	v.keys.Store(&map[string]jose.JSONWebKey{})
	return v, nil
}

// SetKeys replaces the keys with a JSON Web Key Set (the control plane's
// GET /v1/bundle "jwks"). Keys of other algorithms than ES256 and EdDSA, and
// private keys, are refused. Remembered tokens signed by a key no longer in
// the set are forgotten.
func (v *Verifier) SetKeys(jwks []byte) error {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return fmt.Errorf("actor: SetKeys: %w", err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		switch {
		case k.KeyID == "":
			return errors.New("actor: SetKeys: a key has no kid")
		case !k.IsPublic():
			return fmt.Errorf("actor: SetKeys: key %q is private; publish public keys only", k.KeyID)
		}
		alg := jose.SignatureAlgorithm(k.Algorithm)
		if alg != jose.ES256 && alg != jose.EdDSA {
			return fmt.Errorf("actor: SetKeys: key %q has algorithm %q (want ES256 or EdDSA)", k.KeyID, k.Algorithm)
		}
		keys[k.KeyID] = k
	}
	v.keys.Store(&keys)
	v.mu.Lock()
	for _, m := range []map[string]Actor{v.cache, v.old} {
		for token, a := range m {
			if _, ok := keys[a.KeyID]; !ok {
				delete(m, token)
			}
		}
	}
	v.mu.Unlock()
	return nil
}

// Verify checks token and returns its actor. The errors are the Err*
// variables of this package, wrapped.
func (v *Verifier) Verify(token string) (Actor, error) {
	now := v.cfg.Now()
	if a, ok := v.lookup(token); ok {
		if now.After(a.Expires.Add(v.cfg.Leeway)) {
			return Actor{}, ErrExpired
		}
		return a, nil
	}
	a, err := v.verify(token, now)
	if err != nil {
		return Actor{}, err
	}
	v.mu.Lock()
	if len(v.cache) >= max(1, v.cfg.MaxCached/2) {
		v.old, v.cache = v.cache, make(map[string]Actor, len(v.cache))
	}
	v.cache[token] = a
	v.mu.Unlock()
	return a, nil
}

// VerifyAt checks token as of the time at instead of now, without the
// memory of tokens verified before: for the control plane, which checks the
// token an event carries as of when the event happened, possibly after the
// token expired.
func (v *Verifier) VerifyAt(token string, at time.Time) (Actor, error) {
	return v.verify(token, at)
}

// Cached returns the actor of token if Verify accepted it before and it is
// still valid, without checking a signature: for naming the actor of a
// request that is refused anyway.
func (v *Verifier) Cached(token string) (Actor, bool) {
	a, ok := v.lookup(token)
	if !ok || v.cfg.Now().After(a.Expires.Add(v.cfg.Leeway)) {
		return Actor{}, false
	}
	return a, true
}

func (v *Verifier) lookup(token string) (Actor, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if a, ok := v.cache[token]; ok {
		return a, true
	}
	a, ok := v.old[token]
	return a, ok
}

func (v *Verifier) verify(token string, now time.Time) (Actor, error) {
	if len(token) > MaxTokenSize {
		return Actor{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(token), MaxTokenSize)
	}
	tok, err := jwt.ParseSigned(token, allowed)
	if err != nil {
		if hdr, ok := peekAlgorithm(token); ok && hdr != "" {
			return Actor{}, fmt.Errorf("%w: %q", ErrAlgorithm, hdr)
		}
		return Actor{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(tok.Headers) != 1 {
		return Actor{}, fmt.Errorf("%w: %d signatures", ErrMalformed, len(tok.Headers))
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != TokenType {
		return Actor{}, fmt.Errorf("%w: typ %q, want %q", ErrMalformed, typ, TokenType)
	}
	key, ok := (*v.keys.Load())[h.KeyID]
	if !ok {
		if v.cfg.OnUnknownKey != nil {
			v.cfg.OnUnknownKey(h.KeyID)
		}
		return Actor{}, fmt.Errorf("%w: kid %q", ErrUnknownKey, h.KeyID)
	}
	if h.Algorithm != key.Algorithm {
		return Actor{}, fmt.Errorf("%w: %q with a %s key", ErrAlgorithm, h.Algorithm, key.Algorithm)
	}
	var c claims
	if err := tok.Claims(key.Key, &c); err != nil {
		return Actor{}, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	switch {
	case c.Expiry == nil || c.IssuedAt == nil:
		return Actor{}, fmt.Errorf("%w: exp and iat are required", ErrMalformed)
	case c.Expiry.Time().Sub(c.IssuedAt.Time()) > MaxLifetime:
		return Actor{}, fmt.Errorf("%w: lifetime %v over %v", ErrMalformed, c.Expiry.Time().Sub(c.IssuedAt.Time()), MaxLifetime)
	}
	err = c.Claims.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{v.cfg.Audience}, Time: now}, v.cfg.Leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return Actor{}, ErrExpired
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return Actor{}, ErrNotYetValid
	case errors.Is(err, jwt.ErrInvalidAudience):
		return Actor{}, fmt.Errorf("%w: %q", ErrAudience, []string(c.Audience))
	case err != nil:
		return Actor{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(c.Audience) > MaxAudience {
		return Actor{}, fmt.Errorf("%w: %d audiences, at most %d", ErrMalformed, len(c.Audience), MaxAudience)
	}
	aud := slices.Clone([]string(c.Audience))
	slices.Sort(aud)
	ip, err := netip.ParseAddr(c.IP)
	if err != nil || ip.Zone() != "" {
		return Actor{}, fmt.Errorf("%w: ip %q", ErrMalformed, c.IP)
	}
	return Actor{
		IP:       ip.Unmap(),
		User:     c.Subject,
		Session:  c.Session,
		Device:   c.Device,
		Issuer:   c.Issuer,
		IssuedAt: c.IssuedAt.Time(),
		Expires:  c.Expiry.Time(),
		KeyID:    h.KeyID,
		Audience: slices.Compact(aud),
	}, nil
}

// peekAlgorithm reads the "alg" of a token's header, to tell a refused
// algorithm (such as "none" or "HS256") from garbage.
func peekAlgorithm(token string) (string, bool) {
	for i := 0; i < len(token); i++ {
		if token[i] == '.' {
			var h struct {
				Alg string `json:"alg"`
			}
			raw, err := base64.RawURLEncoding.DecodeString(token[:i])
			if err != nil || json.Unmarshal(raw, &h) != nil {
				return "", false
			}
			for _, a := range allowed {
				if string(a) == h.Alg {
					return "", false // an allowed algorithm: the token is malformed otherwise
				}
			}
			return h.Alg, true
		}
	}
	return "", false
}
