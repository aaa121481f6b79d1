package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults of a KeySet.
const (
	// DefaultMaxTokenLifetime is KeySetConfig.MaxTokenLifetime when 0.
	DefaultMaxTokenLifetime = 10 * time.Minute
	// KeySetFile is the file in which KeySet.Save keeps the keys (PEM,
	// mode 0600).
	KeySetFile = "actor-keys.pem"
)

// KeySetConfig configures a KeySet. The zero value signs with EdDSA tokens
// that live at most DefaultMaxTokenLifetime.
type KeySetConfig struct {
	// Algorithm of new keys: jose.EdDSA (Ed25519, the default: the
	// cheapest to verify, which is what every service pays on an actor's
	// first request) or jose.ES256 (ECDSA P-256, for verifiers whose JOSE
	// library lacks EdDSA). Changing it takes effect at the next Rotate;
	// keys of the other algorithm stay published as usual, so a data
	// directory made with ES256 keys moves to EdDSA at its next rotation.
	Algorithm jose.SignatureAlgorithm
	// MaxTokenLifetime is the longest lifetime of a token signed with a key
	// of the set; 0 means DefaultMaxTokenLifetime. A key replaced by
	// Rotate stays published for that long, plus a minute of clock skew.
	MaxTokenLifetime time.Duration
}

func (cfg KeySetConfig) normalize() (KeySetConfig, error) {
	switch cfg.Algorithm {
	case "":
		cfg.Algorithm = jose.EdDSA
	case jose.ES256, jose.EdDSA:
	default:
		return cfg, fmt.Errorf("ca: KeySetConfig.Algorithm %q not supported (want ES256 or EdDSA)", cfg.Algorithm)
	}
	switch {
	case cfg.MaxTokenLifetime == 0:
		cfg.MaxTokenLifetime = DefaultMaxTokenLifetime
	case cfg.MaxTokenLifetime < 0:
		return cfg, fmt.Errorf("ca: KeySetConfig.MaxTokenLifetime %v is negative", cfg.MaxTokenLifetime)
	}
	return cfg, nil
}

// SigningKey is one actor-token signing key of a KeySet.
type SigningKey struct {
	ID        string                  // the JWS "kid": the key's RFC 7638 thumbprint (SHA-256, base64url)
	Algorithm jose.SignatureAlgorithm // jose.ES256 or jose.EdDSA
	Key       crypto.Signer           // *ecdsa.PrivateKey or ed25519.PrivateKey
	Created   time.Time               // when it became the current key; zero for the next key
	Published time.Time               // when it was first published in the JWKS (at or before Created)
}

// JOSE returns the key in go-jose's form, for jose.NewSigner: signatures
// made with it carry its kid.
func (k SigningKey) JOSE() jose.SigningKey {
	return jose.SigningKey{
		Algorithm: k.Algorithm,
		Key:       jose.JSONWebKey{Key: k.Key, KeyID: k.ID, Algorithm: string(k.Algorithm), Use: "sig"},
	}
}

// KeySet holds the keys that sign actor tokens: the current one, which signs,
// those it replaced, published until the last token they signed has
// expired, so that rotation never invalidates a token in flight, and
// possibly the next one, published before it signs.
//
// Rotation in two steps lets verifiers fetch a key before any token carries
// its kid: PublishNext adds the next key to the JWKS, and Promote, once
// verifiers have had time to fetch it, makes it current. Rotate does both at
// once, for a single process that hands the JWKS to verifiers itself before
// the key to signers. A KeySet is safe for concurrent use.
type KeySet struct {
	cfg KeySetConfig

	saveMu sync.Mutex // orders Saves, so that the last snapshot taken is the one kept
	mu     sync.RWMutex
	keys   []SigningKey // oldest first; the last is current
	next   *SigningKey  // published, not yet signing; nil if none
}

// NewKeySet returns a key set with one new key, current from now.
func NewKeySet(cfg KeySetConfig, now time.Time) (*KeySet, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	k, err := newSigningKey(cfg.Algorithm, now)
	if err != nil {
		return nil, err
	}
	k.Created = k.Published
	return &KeySet{cfg: cfg, keys: []SigningKey{k}}, nil
}

// newSigningKey returns a new key published at now, not yet current.
func newSigningKey(alg jose.SignatureAlgorithm, now time.Time) (SigningKey, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("algorithm %q not supported", alg)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("ca: new signing key: %w", err)
	}
	kid, err := keyID(key.Public())
	if err != nil {
		return SigningKey{}, fmt.Errorf("ca: new signing key: %w", err)
	}
	return SigningKey{ID: kid, Algorithm: alg, Key: key, Published: now.UTC()}, nil
}

// keyID returns the RFC 7638 thumbprint of a public key.
func keyID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// algorithmOf returns the JWS algorithm of a private key.
func algorithmOf(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("ECDSA curve %s not supported (want P-256)", k.Curve.Params().Name)
		}
		return jose.ES256, nil
	case ed25519.PrivateKey:
		return jose.EdDSA, nil
	default:
		return "", fmt.Errorf("key type %T not supported (want ECDSA P-256 or Ed25519; never RSA)", key)
	}
}

// Overlap is how long a replaced key stays published: the longest token
// lifetime plus a minute of clock skew.
func (ks *KeySet) Overlap() time.Duration { return ks.cfg.MaxTokenLifetime + backdate }

// MaxTokenLifetime is the longest lifetime of a token signed with a key of
// the set (KeySetConfig.MaxTokenLifetime, or its default).
func (ks *KeySet) MaxTokenLifetime() time.Duration { return ks.cfg.MaxTokenLifetime }

// Current returns the key that signs new tokens.
func (ks *KeySet) Current() SigningKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.keys[len(ks.keys)-1]
}

// Next returns the key published by PublishNext and not yet promoted, if
// there is one.
func (ks *KeySet) Next() (SigningKey, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	if ks.next == nil {
		return SigningKey{}, false
	}
	return *ks.next, true
}

// publishedUntil returns when keys[i] stops being published; zero for the
// current key, published until replaced.
func (ks *KeySet) publishedUntil(i int) time.Time {
	if i == len(ks.keys)-1 {
		return time.Time{}
	}
	return ks.keys[i+1].Created.Add(ks.Overlap())
}

func (ks *KeySet) published(i int, now time.Time) bool {
	until := ks.publishedUntil(i)
	return until.IsZero() || now.Before(until)
}

// PublishNext adds a new key to the JWKS from now without signing with it,
// and returns it; Promote makes it current. It fails if a next key is
// already published.
func (ks *KeySet) PublishNext(now time.Time) (SigningKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.next != nil {
		return SigningKey{}, fmt.Errorf("ca: publish next key: key %s, published %s, is already next",
			ks.next.ID, ks.next.Published.Format(time.RFC3339))
	}
	k, err := newSigningKey(ks.cfg.Algorithm, now)
	if err != nil {
		return SigningKey{}, err
	}
	ks.next = &k
	return k, nil
}

// Promote makes the next key (see PublishNext) current from now and returns
// it. The key it replaces stays published for Overlap; keys whose overlap
// has ended are forgotten.
func (ks *KeySet) Promote(now time.Time) (SigningKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.next == nil {
		return SigningKey{}, errors.New("ca: promote: no next key published")
	}
	return ks.promote(now)
}

// promote is Promote with ks.mu held and ks.next set.
func (ks *KeySet) promote(now time.Time) (SigningKey, error) {
	if cur := ks.keys[len(ks.keys)-1]; now.Before(cur.Created) {
		return SigningKey{}, fmt.Errorf("ca: rotate at %s, before the current key was created (%s)",
			now.UTC().Format(time.RFC3339Nano), cur.Created.Format(time.RFC3339Nano))
	}
	k := *ks.next
	k.Created = now.UTC()
	ks.next = nil
	ks.keys = append(ks.keys, k)
	kept := ks.keys[:0]
	for i, key := range ks.keys {
		if ks.published(i, now) {
			kept = append(kept, key)
		}
	}
	clear(ks.keys[len(kept):]) // drop references to forgotten private keys
	ks.keys = kept
	return k, nil
}

// Rotate makes a new key current from now and returns it: the next key if
// PublishNext published one, else a key made now. The key it replaces stays
// published for Overlap; keys whose overlap has ended are forgotten. A key
// made now reaches verifiers only with the next JWKS: publish that before
// handing the key to signers, or rotate in two steps (PublishNext, Promote).
func (ks *KeySet) Rotate(now time.Time) (SigningKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if cur := ks.keys[len(ks.keys)-1]; now.Before(cur.Created) {
		return SigningKey{}, fmt.Errorf("ca: rotate at %s, before the current key was created (%s)",
			now.UTC().Format(time.RFC3339Nano), cur.Created.Format(time.RFC3339Nano))
	}
	if ks.next == nil {
		k, err := newSigningKey(ks.cfg.Algorithm, now)
		if err != nil {
			return SigningKey{}, err
		}
		ks.next = &k
	}
	return ks.promote(now)
}

// JWKS returns the public JSON Web Key Set that verifies tokens at now: the
// next key if one is published, the current key and the replaced keys still
// in their overlap, newest first.
func (ks *KeySet) JWKS(now time.Time) ([]byte, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var set jose.JSONWebKeySet
	add := func(k SigningKey) {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       k.Key.Public(),
			KeyID:     k.ID,
			Algorithm: string(k.Algorithm),
			Use:       "sig",
		})
	}
	if ks.next != nil {
		add(*ks.next)
	}
	for i := len(ks.keys) - 1; i >= 0; i-- {
		if ks.published(i, now) {
			add(ks.keys[i])
		}
	}
	data, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("ca: JWKS: %w", err)
	}
	return data, nil
}

// Save writes the key set into dir (created with mode 0700 if needed) as
// KeySetFile, mode 0600, replacing the previous file atomically.
func (ks *KeySet) Save(dir string) error {
	if err := privateDir(dir); err != nil {
		return fmt.Errorf("ca: save key set: %w", err)
	}
	ks.saveMu.Lock()
	defer ks.saveMu.Unlock()
	data, err := ks.Marshal()
	if err != nil {
		return fmt.Errorf("ca: save key set: %w", err)
	}
	if err := replaceFile(filepath.Join(dir, KeySetFile), data, 0o600); err != nil {
		return fmt.Errorf("ca: save key set: %w", err)
	}
	return nil
}

// Marshal returns the key set's private keys in the form of KeySetFile,
// which ParseKeySet reads: one PEM block per key (PKCS #8, with Kid,
// Published and Created headers; no Created for the next key). The result
// holds private keys: keep it secret (the control plane encrypts it).
func (ks *KeySet) Marshal() ([]byte, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var buf bytes.Buffer
	keys := ks.keys
	if ks.next != nil {
		keys = append(slices.Clip(keys), *ks.next)
	}
	for _, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("ca: marshal key set: key %s: %w", k.ID, err)
		}
		headers := map[string]string{"Kid": k.ID, "Published": k.Published.Format(time.RFC3339Nano)}
		if !k.Created.IsZero() {
			headers["Created"] = k.Created.Format(time.RFC3339Nano)
		}
		if err := pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Headers: headers, Bytes: der}); err != nil {
			return nil, fmt.Errorf("ca: marshal key set: key %s: %w", k.ID, err)
		}
	}
	return buf.Bytes(), nil
}

// LoadKeySet reads a key set saved by Save from dir. It refuses a file that
// group or others can read, and whatever ParseKeySet refuses.
func LoadKeySet(dir string, cfg KeySetConfig) (*KeySet, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, KeySetFile)
	data, err := readFile(path, true)
	if err != nil {
		return nil, fmt.Errorf("ca: load key set: %w", err)
	}
	ks, err := parseKeySet(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("ca: load key set %s: %w", path, err)
	}
	return ks, nil
}

// ParseKeySet reads a key set from the output of Marshal. It refuses a key
// whose kid is not its thumbprint, a key that appears twice, more than one
// next key, a set with no current key, and RSA keys.
func ParseKeySet(data []byte, cfg KeySetConfig) (*KeySet, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	ks, err := parseKeySet(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("ca: parse key set: %w", err)
	}
	return ks, nil
}

func parseKeySet(data []byte, cfg KeySetConfig) (*KeySet, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	ks := &KeySet{cfg: cfg}
	seen := make(map[string]bool)
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("block %d: PEM type %q, want PRIVATE KEY", n, block.Type)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", n, err)
		}
		signer, ok := parsed.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("block %d: %T cannot sign", n, parsed)
		}
		alg, err := algorithmOf(signer)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", n, err)
		}
		kid, err := keyID(signer.Public())
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", n, err)
		}
		if block.Headers["Kid"] != kid {
			return nil, fmt.Errorf("block %d: Kid header %q is not the key's thumbprint %q (file altered?)", n, block.Headers["Kid"], kid)
		}
		if seen[kid] {
			return nil, fmt.Errorf("block %d: key %s appears twice", n, kid)
		}
		seen[kid] = true
		k := SigningKey{ID: kid, Algorithm: alg, Key: signer}
		if h, ok := block.Headers["Created"]; ok {
			created, err := time.Parse(time.RFC3339Nano, h)
			if err != nil {
				return nil, fmt.Errorf("block %d: Created header: %w", n, err)
			}
			k.Created = created.UTC()
		}
		// Files saved before keys were published ahead have no Published
		// header: such a key was published when created.
		k.Published = k.Created
		if h, ok := block.Headers["Published"]; ok {
			published, err := time.Parse(time.RFC3339Nano, h)
			if err != nil {
				return nil, fmt.Errorf("block %d: Published header: %w", n, err)
			}
			k.Published = published.UTC()
		}
		switch {
		case k.Published.IsZero():
			return nil, fmt.Errorf("block %d: no Created nor Published header", n)
		case k.Created.IsZero() && ks.next != nil:
			return nil, fmt.Errorf("block %d: keys %s and %s are both next (no Created header)", n, ks.next.ID, kid)
		case k.Created.IsZero():
			ks.next = &k
		default:
			ks.keys = append(ks.keys, k)
		}
	}
	if len(bytes.TrimSpace(data)) != 0 {
		return nil, errors.New("data after the last PEM block")
	}
	if len(ks.keys) == 0 {
		if ks.next != nil {
			return nil, errors.New("no current key, only a next one")
		}
		return nil, errors.New("no keys")
	}
	slices.SortStableFunc(ks.keys, func(a, b SigningKey) int { return a.Created.Compare(b.Created) })
	return ks, nil
}
