package actor

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Defaults of a Signer.
const (
	DefaultLifetime  = 5 * time.Minute
	DefaultMaxCached = 100_000
)

// SignerConfig configures a Signer.
type SignerConfig struct {
	// Issuer is the minting gateway's SPIFFE ID (the "iss" claim).
	Issuer string
	// Audience is the "aud" claim of Token: a SPIFFE ID, such as
	// "spiffe://example.org/svc/web". Required. A gateway names the
	// services of each upstream with TokenFor instead.
	Audience string
	// Lifetime of a token; 0 means DefaultLifetime. At most MaxLifetime,
	// and no longer than the control plane keeps a replaced key published.
	Lifetime time.Duration
	// MaxCached bounds the tokens kept for reuse; 0 means
	// DefaultMaxCached. When full, the cache starts over.
	MaxCached int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Signer mints actor tokens with the current signing key. A token is reused
// for the same IP, user and session until half its lifetime has passed, so
// a returning actor costs a map lookup rather than a signature. It is safe
// for concurrent use.
type Signer struct {
	cfg SignerConfig

	mu     sync.RWMutex
	signer jose.Signer
	keyID  string
	cache  map[signKey]signed
}

type signKey struct {
	ip                         [16]byte
	user, session, device, aud string
}

// Audience is the set of services a token is for: the SPIFFE IDs in its
// "aud" claim. Make one with NewAudience and reuse it: it is immutable.
type Audience struct {
	ids []string
	key string // the ids joined, which keys the Signer's cache
}

// NewAudience returns the audience of the services ids (SPIFFE IDs), sorted
// and without repeats; at least one and at most MaxAudience.
func NewAudience(ids ...string) (Audience, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	switch {
	case len(ids) == 0 || ids[0] == "":
		return Audience{}, errors.New("actor: NewAudience: no service")
	case len(ids) > MaxAudience:
		return Audience{}, fmt.Errorf("actor: NewAudience: %d services, at most %d", len(ids), MaxAudience)
	}
	return Audience{ids: ids, key: strings.Join(ids, " ")}, nil
}

// IDs returns the SPIFFE IDs of a, sorted. Do not modify them.
func (a Audience) IDs() []string { return a.ids }

type signed struct {
	token   string
	renewAt time.Time
}

// NewSigner returns a Signer; call SetKey before Token.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if cfg.Audience == "" {
		return nil, errors.New("actor: SignerConfig.Audience is required (the trust domain's SPIFFE ID)")
	}
	switch {
	case cfg.Lifetime == 0:
		cfg.Lifetime = DefaultLifetime
	case cfg.Lifetime < time.Second || cfg.Lifetime > MaxLifetime:
		return nil, fmt.Errorf("actor: SignerConfig.Lifetime %v not between 1s and %v", cfg.Lifetime, MaxLifetime)
	}
	if cfg.MaxCached == 0 {
		cfg.MaxCached = DefaultMaxCached
	}
	if cfg.MaxCached < 0 {
		return nil, fmt.Errorf("actor: SignerConfig.MaxCached %d is negative", cfg.MaxCached)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Signer{cfg: cfg, cache: map[signKey]signed{}}, nil
}

// SetKey makes key (an *ecdsa.PrivateKey on P-256 or an ed25519.PrivateKey)
// the signing key, named keyID in tokens. Tokens signed with the previous
// key are no longer handed out.
func (s *Signer) SetKey(keyID string, key crypto.Signer) error {
	if keyID == "" {
		return errors.New("actor: SetKey: empty key id")
	}
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return errors.New("actor: SetKey: ECDSA keys must be on P-256 (ES256)")
		}
		alg = jose.ES256
	case ed25519.PrivateKey:
		alg = jose.EdDSA
	default:
		return fmt.Errorf("actor: SetKey: %T keys not supported (want ES256 or EdDSA)", key)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: keyID}},
		(&jose.SignerOptions{}).WithType(TokenType),
	)
	if err != nil {
		return fmt.Errorf("actor: SetKey: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if keyID == s.keyID {
		return nil
	}
	s.signer, s.keyID = signer, keyID
	clear(s.cache)
	return nil
}

// KeyID returns the id of the signing key, "" before SetKey.
func (s *Signer) KeyID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keyID
}

// Token returns a token for a with SignerConfig.Audience, reusing a recent
// one for the same actor. Only a's IP, User, Session and Device are used.
func (s *Signer) Token(a Actor) (string, error) {
	return s.token(a, Audience{ids: []string{s.cfg.Audience}, key: s.cfg.Audience})
}

// TokenFor returns a token for a naming the services of aud, reusing a
// recent one for the same actor and audience. Only a's IP, User,
// Session and Device are used.
func (s *Signer) TokenFor(a Actor, aud Audience) (string, error) {
	if len(aud.ids) == 0 {
		return "", errors.New("actor: TokenFor: empty audience (use NewAudience)")
	}
	return s.token(a, aud)
}

func (s *Signer) token(a Actor, aud Audience) (string, error) {
	if !a.IP.IsValid() {
		return "", errors.New("actor: Token: the actor has no IP address")
	}
	k := signKey{ip: a.IP.Unmap().As16(), user: a.User, session: a.Session, device: a.Device, aud: aud.key}
	now := s.cfg.Now()
	s.mu.RLock()
	got, ok := s.cache[k]
	signer := s.signer
	s.mu.RUnlock()
	if ok && now.Before(got.renewAt) {
		return got.token, nil
	}
	if signer == nil {
		return "", errors.New("actor: Token: no signing key yet")
	}
	c := claims{
		Claims: jwt.Claims{
			Issuer:    s.cfg.Issuer,
			Subject:   a.User,
			Audience:  jwt.Audience(aud.ids),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(now.Add(s.cfg.Lifetime)),
		},
		IP:      a.IP.Unmap().String(),
		Session: a.Session,
		Device:  a.Device,
	}
	token, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("actor: sign: %w", err)
	}
	s.mu.Lock()
	if signer == s.signer { // not replaced by SetKey meanwhile
		if len(s.cache) >= s.cfg.MaxCached {
			clear(s.cache)
		}
		s.cache[k] = signed{token: token, renewAt: now.Add(s.cfg.Lifetime / 2)}
	}
	s.mu.Unlock()
	return token, nil
}

// claims are an actor token's JWT claims.
type claims struct {
	jwt.Claims
	IP      string `json:"ip"`
	Session string `json:"sid,omitempty"`
	Device  string `json:"dev,omitempty"`
}
