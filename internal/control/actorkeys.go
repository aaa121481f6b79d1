package control

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
)

// Defaults and files of the actor-token keys.
const (
	// KEKFile, in CADir, holds the key-encryption key of the actor-token
	// keys kept in the store: 32 random bytes in base64, mode 0600. Every
	// replica's data directory needs the same copy, as it needs the CA.
	KEKFile = "actor-keys.kek"
	// DefaultActorKeyRotation is ActorKeysConfig.Rotation when 0.
	DefaultActorKeyRotation = 24 * time.Hour
	// DefaultActorKeyPublishAhead is ActorKeysConfig.PublishAhead when 0:
	// ample for a watcher to learn of the change and fetch the JWKS again,
	// with retries.
	DefaultActorKeyPublishAhead = time.Minute
	// ActorKeysReload is the longest a replica goes without reading the
	// key set from the store, should a change signal be lost.
	ActorKeysReload = time.Minute
	// DefaultGatewayService is the gateway service when
	// Config.GatewayServices is empty.
	DefaultGatewayService = "gateway"
)

const (
	kekSize       = ca.KEKSize // AES-256, as the CA key's; the KEK file is read and written by package ca
	sealedFormat  = 1
	kekIDSize     = 8
	sealedHeader  = 1 + kekIDSize
	actorKeysAAD  = "rampart actor-token key set"
	kekIDLabel    = "rampart actor-keys KEK id\x00"
	retryAfterErr = 10 * time.Second // a failed rotation step is tried again after this
)

// ActorKeysConfig configures OpenActorKeys.
type ActorKeysConfig struct {
	Store store.Store // required
	// KEK is the 32-byte key-encryption key (see KEKFile); required.
	KEK []byte
	// TrustDomain is bound into every sealed key set; required.
	TrustDomain string
	// KeySet configures the key set: the algorithm of new keys and the
	// longest token lifetime, which every replica must agree on.
	KeySet ca.KeySetConfig
	// Rotation is how long a key signs before the next one is published; 0
	// means DefaultActorKeyRotation, a negative value never rotates.
	Rotation time.Duration
	// PublishAhead is how long the next key is published before it signs;
	// 0 means DefaultActorKeyPublishAhead. It must be shorter than Rotation.
	PublishAhead time.Duration
	// Seed is stored if the store has no key set yet (the keys of a data
	// directory from before they lived in the store); nil means a new key
	// set. OpenActorKeys may keep it: do not modify it after.
	Seed *ca.KeySet
	// Logger receives rotations and failures; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ActorKeys is the actor-token key set as kept in the store, shared by every
// replica over it, so that all sign with, and publish, the same keys. It is
// safe for concurrent use.
//
// What the store holds is sealed with AES-256-GCM under a key-encryption
// key (KEK, see KEKFile) that only data directories hold, so that a copy of
// the database alone gives no signing key. Sealed form, version 1:
//
//	0x01 | KEK id (8 bytes) | nonce (12 bytes) | AES-256-GCM(KEK, nonce, PEM key set, AAD)
//
// The KEK id is the start of SHA-256 of a label and the KEK: it names the
// KEK without revealing it, so that a replica with another KEK says so
// instead of "authentication failed". The additional data binds the
// ciphertext to its purpose and place: the format and KEK id (the header
// above), the label "rampart actor-token key set", the trust domain, and the
// store version the blob was written as; a blob moved to another deployment,
// another purpose or another version does not open. A fresh random nonce per
// write is safe: the key set is written a few times a day at most.
//
// Rotation, every ActorKeysConfig.Rotation, is in two steps, each one
// compare-and-swap write by whichever replica gets there first (the others
// find the store changed and reload):
//
//  1. publish: a next key joins the JWKS, without signing;
//  2. promote, ActorKeysConfig.PublishAhead later: the next key becomes the
//     current one, and the key it replaces stays in the JWKS for the longest
//     token lifetime plus a minute (ca.KeySet.Overlap).
//
// Each write is a store change of kind actor_keys, which GET /v1/watch
// reports: verifiers fetch GET /v1/bundle again at step 1, and have
// PublishAhead to do so before a token carries the new kid; gateways fetch
// GET /v1/actor-key again at step 2, or switch to its "next" key at
// next.not_before. Every replica reads the key set from the store when it
// serves GET /v1/bundle or GET /v1/actor-key, so a verifier told of a change
// by one replica and asking another never gets an older set.
type ActorKeys struct {
	cfg   ActorKeysConfig
	aead  cipher.AEAD
	kekID [kekIDSize]byte
	log   *slog.Logger

	mu      sync.Mutex
	ks      *ca.KeySet // the last decrypted, of version; never modified (rotation works on a copy)
	version int64
}

// OpenActorKeys reads the key set from the store, storing cfg.Seed or a new
// key set first if there is none.
func OpenActorKeys(ctx context.Context, cfg ActorKeysConfig) (*ActorKeys, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("control: ActorKeysConfig.Store is nil")
	case len(cfg.KEK) != kekSize:
		return nil, fmt.Errorf("control: ActorKeysConfig.KEK is %d bytes, want %d", len(cfg.KEK), kekSize)
	case cfg.TrustDomain == "":
		return nil, errors.New("control: ActorKeysConfig.TrustDomain is empty")
	case cfg.PublishAhead < 0:
		return nil, errors.New("control: ActorKeysConfig.PublishAhead is negative")
	}
	if cfg.Rotation == 0 {
		cfg.Rotation = DefaultActorKeyRotation
	}
	if cfg.PublishAhead == 0 {
		cfg.PublishAhead = DefaultActorKeyPublishAhead
	}
	if cfg.Rotation > 0 && cfg.PublishAhead >= cfg.Rotation {
		return nil, fmt.Errorf("control: ActorKeysConfig.PublishAhead %v is not shorter than Rotation %v", cfg.PublishAhead, cfg.Rotation)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if _, err := ca.NewKeySet(cfg.KeySet, time.Time{}); err != nil {
		return nil, fmt.Errorf("control: ActorKeysConfig.KeySet: %w", err)
	}
	block, err := aes.NewCipher(cfg.KEK)
	if err != nil {
		return nil, fmt.Errorf("control: actor keys: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("control: actor keys: %w", err)
	}
	a := &ActorKeys{cfg: cfg, aead: aead, kekID: kekID(cfg.KEK), log: cfg.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	_, _, err = a.load(ctx)
	if !errors.Is(err, store.ErrNotFound) {
		if err != nil {
			return nil, fmt.Errorf("control: %w", err)
		}
		return a, nil
	}
	seed := cfg.Seed
	if seed == nil {
		if seed, err = ca.NewKeySet(cfg.KeySet, cfg.Now()); err != nil {
			return nil, fmt.Errorf("control: actor keys: %w", err)
		}
	}
	_, err = a.put(ctx, seed, 0)
	if errors.Is(err, store.ErrConflict) { // another replica seeded it first
		_, _, err = a.load(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	return a, nil
}

// kekID names a KEK without revealing it.
func kekID(kek []byte) [kekIDSize]byte {
	h := sha256.New()
	h.Write([]byte(kekIDLabel))
	h.Write(kek)
	var id [kekIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

// additionalData is what a sealed key set of version is bound to.
func (a *ActorKeys) additionalData(header []byte, version int64) []byte {
	ad := append([]byte(nil), header...)
	ad = append(ad, actorKeysAAD...)
	ad = append(ad, 0)
	ad = append(ad, a.cfg.TrustDomain...)
	ad = append(ad, 0)
	return binary.BigEndian.AppendUint64(ad, uint64(version))
}

// seal encrypts a marshalled key set to be stored as version.
func (a *ActorKeys) seal(plain []byte, version int64) []byte {
	out := make([]byte, sealedHeader, sealedHeader+a.aead.NonceSize()+len(plain)+a.aead.Overhead())
	out[0] = sealedFormat
	copy(out[1:], a.kekID[:])
	header := out[:sealedHeader]
	nonce := make([]byte, a.aead.NonceSize())
	rand.Read(nonce) // never fails (crypto/rand documents it)
	out = append(out, nonce...)
	return a.aead.Seal(out, nonce, plain, a.additionalData(header, version))
}

// open decrypts what seal made for version.
func (a *ActorKeys) open(sealed []byte, version int64) ([]byte, error) {
	if len(sealed) < sealedHeader+a.aead.NonceSize()+a.aead.Overhead() {
		return nil, fmt.Errorf("sealed key set of %d bytes is too short", len(sealed))
	}
	if sealed[0] != sealedFormat {
		return nil, fmt.Errorf("sealed key set has format %d, want %d (written by a newer rampart?)", sealed[0], sealedFormat)
	}
	if id := sealed[1:sealedHeader]; !bytes.Equal(id, a.kekID[:]) {
		return nil, fmt.Errorf("the key set in the store is sealed under key-encryption key %x, but this data directory's %s is %x: "+
			"give every replica the same copy of %s", id, KEKFile, a.kekID, KEKFile)
	}
	nonce := sealed[sealedHeader : sealedHeader+a.aead.NonceSize()]
	plain, err := a.aead.Open(nil, nonce, sealed[sealedHeader+a.aead.NonceSize():], a.additionalData(sealed[:sealedHeader], version))
	if err != nil {
		return nil, fmt.Errorf("sealed key set version %d does not open (altered, or from another trust domain or version): %w", version, err)
	}
	return plain, nil
}

// load reads the key set from the store, decrypting it unless it is the
// version last decrypted.
func (a *ActorKeys) load(ctx context.Context) (*ca.KeySet, int64, error) {
	sealed, version, err := a.cfg.Store.ActorKeys(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("actor keys: %w", err)
	}
	a.mu.Lock()
	if a.ks != nil && version == a.version {
		ks := a.ks
		a.mu.Unlock()
		return ks, version, nil
	}
	a.mu.Unlock()
	plain, err := a.open(sealed, version)
	if err != nil {
		return nil, 0, fmt.Errorf("actor keys: %w", err)
	}
	ks, err := ca.ParseKeySet(plain, a.cfg.KeySet)
	clear(plain)
	if err != nil {
		return nil, 0, fmt.Errorf("actor keys version %d: %w", version, err)
	}
	a.keep(ks, version)
	return ks, version, nil
}

// keep remembers ks as the key set of version. It is a cache keyed by the
// version read from the store each time, so a late reader that keeps an
// older version costs the next reader a decryption, never a stale set.
func (a *ActorKeys) keep(ks *ca.KeySet, version int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ks, a.version = ks, version
}

// put stores ks if the stored version is still expect; ks must not be
// modified after.
func (a *ActorKeys) put(ctx context.Context, ks *ca.KeySet, expect int64) (int64, error) {
	plain, err := ks.Marshal()
	if err != nil {
		return 0, fmt.Errorf("actor keys: %w", err)
	}
	sealed := a.seal(plain, expect+1)
	clear(plain)
	version, err := a.cfg.Store.PutActorKeys(ctx, sealed, expect)
	if err != nil {
		return 0, fmt.Errorf("actor keys: %w", err)
	}
	if version != expect+1 { // the store broke its contract; the blob would not open
		return 0, fmt.Errorf("actor keys: the store wrote version %d, want %d", version, expect+1)
	}
	a.keep(ks, version)
	return version, nil
}

// KeySet returns the key set as the store has it now. Do not modify it.
func (a *ActorKeys) KeySet(ctx context.Context) (*ca.KeySet, error) {
	ks, _, err := a.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	return ks, nil
}

// Run keeps the key set on schedule until ctx is done: it rereads it when
// the store signals a change (and at least every ActorKeysReload), and
// publishes or promotes the next key when due, racing the other replicas
// with compare-and-swap. It returns nil when ctx is done, or an error if the
// store's subscription fails or ends.
func (a *ActorKeys) Run(ctx context.Context) error {
	woken, err := a.cfg.Store.Subscribe(ctx)
	if err != nil {
		return fmt.Errorf("control: actor keys: %w", err)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-woken:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("control: actor keys: %w", store.ErrClosed)
			}
		case <-timer.C:
		}
		wait, err := a.step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.log.Warn("control: actor-token key rotation failed; retrying", "err", err, "retry_in", retryAfterErr)
			wait = retryAfterErr
		}
		timer.Reset(min(wait, ActorKeysReload))
	}
}

// rotation is the step of the schedule due at a time.
type rotation int

const (
	rotateNothing rotation = iota
	rotatePublish          // publish the next key
	rotatePromote          // make the next key current
)

// due returns the step of the schedule due at now for ks, or the time of the
// next one (zero if none is scheduled).
func (a *ActorKeys) due(ks *ca.KeySet, now time.Time) (rotation, time.Time) {
	if next, ok := ks.Next(); ok {
		at := next.Published.Add(a.cfg.PublishAhead)
		if !now.Before(at) {
			return rotatePromote, at
		}
		return rotateNothing, at
	}
	if a.cfg.Rotation < 0 {
		return rotateNothing, time.Time{}
	}
	at := ks.Current().Created.Add(a.cfg.Rotation)
	if !now.Before(at) {
		return rotatePublish, at
	}
	return rotateNothing, at
}

// step rereads the key set, takes the step of the schedule due now if any,
// and returns how long to wait before the next one.
func (a *ActorKeys) step(ctx context.Context) (time.Duration, error) {
	ks, version, err := a.load(ctx)
	if err != nil {
		return 0, err
	}
	now := a.cfg.Now()
	what, at := a.due(ks, now)
	if what == rotateNothing {
		if at.IsZero() {
			return ActorKeysReload, nil
		}
		return at.Sub(now), nil
	}
	// Work on a copy: the set held is shared with the handlers.
	plain, err := ks.Marshal()
	if err != nil {
		return 0, err
	}
	mine, err := ca.ParseKeySet(plain, a.cfg.KeySet)
	clear(plain)
	if err != nil {
		return 0, err
	}
	var k ca.SigningKey
	if what == rotatePublish {
		k, err = mine.PublishNext(now)
	} else {
		k, err = mine.Promote(now)
	}
	if err != nil {
		return 0, err
	}
	v, err := a.put(ctx, mine, version)
	if errors.Is(err, store.ErrConflict) {
		// Another replica took this step (or another) first: look again
		// at what it wrote.
		a.log.Debug("control: actor keys changed by another replica", "version", version)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if what == rotatePublish {
		a.log.Info("control: published the next actor-token signing key", "kid", k.ID, "version", v,
			"signs_from", now.Add(a.cfg.PublishAhead).UTC().Format(time.RFC3339))
		return a.cfg.PublishAhead, nil
	}
	a.log.Info("control: the next actor-token signing key now signs", "kid", k.ID, "version", v)
	return a.cfg.Rotation, nil
}

// notAfter returns the latest time at which k, the current key of ks, may
// sign: when its successor is scheduled to sign (zero if no rotation is
// scheduled). A token signed by then verifies for its whole lifetime,
// since k stays published for the longest lifetime past its replacement.
func (a *ActorKeys) notAfter(ks *ca.KeySet, now time.Time) time.Time {
	if next, ok := ks.Next(); ok {
		return next.Published.Add(a.cfg.PublishAhead)
	}
	if a.cfg.Rotation < 0 {
		return time.Time{}
	}
	// An overdue rotation publishes now at the earliest, and promotes
	// PublishAhead later.
	scheduled := ks.Current().Created.Add(a.cfg.Rotation + a.cfg.PublishAhead)
	return maxTime(scheduled, now.Add(a.cfg.PublishAhead))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// keySet returns the actor-token key set to serve, fresh from the store if
// it is kept there, and how it rotates; nil if there is none.
func (h *Handler) keySet(ctx context.Context) (*ca.KeySet, *ActorKeys, error) {
	switch {
	case h.cfg.ActorKeys != nil:
		ks, err := h.cfg.ActorKeys.KeySet(ctx)
		return ks, h.cfg.ActorKeys, err
	case h.cfg.KeySet != nil:
		return h.cfg.KeySet, nil, nil
	}
	return nil, nil, nil
}

// ActorKey is a signing key in the response to GET /v1/actor-key.
type ActorKey struct {
	KeyID     string `json:"kid"`
	Algorithm string `json:"alg"` // "ES256" or "EdDSA"
	// JWK is the private key as a JSON Web Key (RFC 7517, with "d"), with
	// its kid, alg and "use": "sig".
	JWK json.RawMessage `json:"jwk"`
	// NotBefore is when the key signs from: when it became current, or, for
	// the next key, when it is scheduled to (verifiers have had it for
	// PublishAhead by then).
	NotBefore time.Time `json:"not_before"`
	// NotAfter is the latest time to sign with the key: the next key is
	// scheduled to sign then. Fetch again by then. Zero (absent) when no
	// rotation is scheduled.
	NotAfter time.Time `json:"not_after,omitzero"`
}

// ActorKeyResponse is the response to GET /v1/actor-key.
type ActorKeyResponse struct {
	ActorKey // the current key
	// Next, if present, is published to verifiers already and becomes
	// current at Next.NotBefore: a gateway may switch to it then without
	// asking again.
	Next *ActorKey `json:"next,omitempty"`
	// MaxTokenLifetimeSeconds bounds the lifetime of the tokens signed
	// with these keys: a key stays published only that long (plus a minute
	// of clock skew) after it is replaced.
	MaxTokenLifetimeSeconds int64 `json:"max_token_lifetime_seconds"`
}

// getActorKey gives a gateway the key it signs actor tokens with.
//
// Only a gateway's SVID opens it. The admin token is refused on purpose, even
// though it opens everything else: the signing key lets its holder vouch for
// any user, IP or session to every service, so a leaked admin token (a
// string in shells, CI variables, scripts) must not be able to exfiltrate
// it. An admin who needs a gateway creates one with a join token, which
// leaves an SVID, a heartbeat and a log line behind.
func (h *Handler) getActorKey(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		if h.isAdmin(r) {
			return &apiError{status: http.StatusForbidden, code: "forbidden",
				msg: "the admin token cannot read the actor-token signing key: only a gateway can, with its SVID as the TLS client certificate"}
		}
		return &apiError{status: http.StatusUnauthorized, code: "unauthorized",
			msg: "a gateway's SVID as the TLS client certificate is required"}
	}
	// The handshake proved the peer holds the certificate's key;
	// VerifySVID proves this CA issued it to a service.
	service, err := h.cfg.CA.VerifySVID(r.TLS.PeerCertificates)
	if err != nil {
		return err
	}
	done, err := h.limit(w, r, service, false)
	if err != nil {
		return err
	}
	defer done()
	if err := h.checkNotRevoked(r.Context(), service); err != nil {
		return err
	}
	if !slices.Contains(h.gateways, service) {
		return forbidden("", fmt.Sprintf("service %s is not a gateway: only gateways may read the actor-token signing key", service))
	}
	ks, keys, err := h.keySet(r.Context())
	if err != nil {
		return err
	}
	if ks == nil {
		return &apiError{status: http.StatusNotFound, code: "not_found", msg: "this control plane has no actor-token keys"}
	}
	now := h.cfg.Now()
	cur := ks.Current()
	resp := ActorKeyResponse{MaxTokenLifetimeSeconds: int64(ks.MaxTokenLifetime() / time.Second)}
	if resp.ActorKey, err = actorKey(cur, cur.Created); err != nil {
		return err
	}
	if keys != nil {
		resp.NotAfter = keys.notAfter(ks, now)
		if next, ok := ks.Next(); ok {
			n, err := actorKey(next, next.Published.Add(keys.cfg.PublishAhead))
			if err != nil {
				return err
			}
			if keys.cfg.Rotation > 0 {
				n.NotAfter = maxTime(n.NotBefore, now).Add(keys.cfg.Rotation + keys.cfg.PublishAhead)
			}
			resp.Next = &n
		}
	}
	h.log.Info("control: actor-token signing key served", "service", service, "kid", cur.ID)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func actorKey(k ca.SigningKey, notBefore time.Time) (ActorKey, error) {
	jwk, err := jose.JSONWebKey{Key: k.Key, KeyID: k.ID, Algorithm: string(k.Algorithm), Use: "sig"}.MarshalJSON()
	if err != nil {
		return ActorKey{}, fmt.Errorf("actor key %s: %w", k.ID, err)
	}
	return ActorKey{KeyID: k.ID, Algorithm: string(k.Algorithm), JWK: jwk, NotBefore: notBefore.UTC()}, nil
}
