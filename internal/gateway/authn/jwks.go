package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// supportedAlgorithms are the algorithms an issuer may be configured with:
// asymmetric ones only. With HS256 the verification key is the signing key,
// so a gateway that accepted it with a key from a public JWKS (or the
// public key's PEM or DER bytes used as an HMAC secret, the classic
// algorithm confusion) would accept tokens from anybody.
var supportedAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

var defaultAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// minRSABits is the smallest RSA modulus accepted in a JWKS.
const minRSABits = 2048

var (
	errRateLimited = errors.New("rate-limited: the JWKS was fetched less than 30s ago")
	errClosed      = errors.New("authenticator closed")
)

// issuer is one trusted OIDC provider and its current keys.
type issuer struct {
	cfg        IssuerConfig // with defaults applied
	algorithms []jose.SignatureAlgorithm
	jwksURL    string // resolved by discovery at start if not configured
	client     *http.Client
	log        *slog.Logger

	keys atomic.Pointer[keySet] // never nil after start

	// kick asks the refresh goroutine to run the pending fetch now.
	kick chan struct{}

	mu        sync.Mutex
	pending   *fetch    // the fetch under way, which requests join
	lastFetch time.Time // when the last fetch began, for the rate limit
}

// fetch is one JWKS refresh, shared by everybody who waits for it.
type fetch struct {
	done chan struct{}
	err  error // set before done is closed
}

// keySet is a JWKS as fetched: the usable keys only.
type keySet struct {
	keys        []*verifyKey
	thumbprints map[string]bool // RFC 7638 thumbprints of keys
}

// verifyKey is one usable public key of a JWKS.
type verifyKey struct {
	kid        string
	alg        jose.SignatureAlgorithm // the JWK's "alg", "" if none
	key        crypto.PublicKey        // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	thumbprint string
}

// newIssuer validates the configuration of Issuers[i] and applies defaults.
func newIssuer(i int, ic IssuerConfig, client *http.Client, log *slog.Logger) (*issuer, error) {
	field := func(name string) string { return fmt.Sprintf("authn: Issuers[%d].%s", i, name) }

	if ic.Issuer == "" {
		return nil, fmt.Errorf("%s is required", field("Issuer"))
	}
	if err := checkURL(ic.Issuer, ic.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("%s %q: %w", field("Issuer"), ic.Issuer, err)
	}
	if u, _ := url.Parse(ic.Issuer); u.RawQuery != "" || u.Fragment != "" {
		// OpenID Connect Discovery 1.0, section 2.
		return nil, fmt.Errorf("%s %q: an issuer identifier has no query or fragment", field("Issuer"), ic.Issuer)
	}
	if ic.Audience == "" {
		return nil, fmt.Errorf("%s is required (the client ID or API identifier tokens are minted for)", field("Audience"))
	}
	if ic.JWKSURL != "" {
		if err := checkURL(ic.JWKSURL, ic.AllowInsecureHTTP); err != nil {
			return nil, fmt.Errorf("%s %q: %w", field("JWKSURL"), ic.JWKSURL, err)
		}
	}

	is := &issuer{
		jwksURL: ic.JWKSURL,
		log:     log.With("issuer", ic.Issuer),
		kick:    make(chan struct{}, 1),
	}
	for _, name := range ic.Algorithms {
		alg := jose.SignatureAlgorithm(name)
		if !slices.Contains(supportedAlgorithms, alg) {
			return nil, fmt.Errorf("%s: %q is not an accepted asymmetric signature algorithm (want RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA)", field("Algorithms"), name)
		}
		if !slices.Contains(is.algorithms, alg) {
			is.algorithms = append(is.algorithms, alg)
		}
	}
	if len(is.algorithms) == 0 {
		is.algorithms = slices.Clone(defaultAlgorithms)
	}

	switch {
	case ic.ClockSkew < 0 || ic.ClockSkew > maxClockSkew:
		return nil, fmt.Errorf("%s %v: want between 0 (for the default, 1m) and %v", field("ClockSkew"), ic.ClockSkew, maxClockSkew)
	case ic.ClockSkew == 0:
		ic.ClockSkew = defaultClockSkew
	}
	switch {
	case ic.RefreshInterval == 0:
		ic.RefreshInterval = defaultRefreshInterval
	case ic.RefreshInterval < minRefreshInterval:
		// Most likely a unit forgotten in a literal: 10 is 10ns.
		return nil, fmt.Errorf("%s %v: want at least %v", field("RefreshInterval"), ic.RefreshInterval, minRefreshInterval)
	}
	ic.Algorithms = nil // is.algorithms holds them
	is.cfg = ic

	// A redirect must obey the same URL rules as the URL it came from: an
	// https JWKS must not be served, after a redirect, over plain http.
	c := *client
	next := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if err := checkURL(req.URL.String(), ic.AllowInsecureHTTP); err != nil {
			return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	is.client = &c
	return is, nil
}

// checkURL allows https URLs, and http ones to a loopback IP address when
// allowInsecureHTTP is set.
func checkURL(raw string, allowInsecureHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" {
		return errors.New("not an absolute URL")
	}
	if u.User != nil {
		return errors.New("credentials in the URL are not allowed")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if !allowInsecureHTTP {
			return errors.New("http is not allowed: use https (AllowInsecureHTTP allows http to a loopback test issuer)")
		}
		// Only an IP literal: a name could resolve elsewhere.
		ip, err := netip.ParseAddr(u.Hostname())
		if err != nil || !ip.IsLoopback() {
			return errors.New("AllowInsecureHTTP allows http only to a loopback IP address")
		}
		return nil
	}
	return fmt.Errorf("scheme %q is not allowed: use https", u.Scheme)
}

func (is *issuer) accepts(alg jose.SignatureAlgorithm) bool {
	return slices.Contains(is.algorithms, alg)
}

func (is *issuer) hasKey(thumbprint string) bool {
	return is.keys.Load().thumbprints[thumbprint]
}

// start discovers the JWKS URL if needed and fetches the keys, once.
func (is *issuer) start(ctx context.Context, now time.Time) error {
	if is.jwksURL == "" {
		if err := is.discover(ctx); err != nil {
			return fmt.Errorf("discovery: %w", err)
		}
	}
	is.lastFetch = now
	ks, err := is.fetchKeys(ctx)
	if err != nil {
		return err
	}
	is.keys.Store(ks)
	return nil
}

// discover reads the JWKS URL from the issuer's discovery document.
func (is *issuer) discover(ctx context.Context) error {
	body, err := is.get(ctx, strings.TrimSuffix(is.cfg.Issuer, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("discovery document: %w", err)
	}
	// OpenID Connect Discovery 1.0, section 4.3: a document that names
	// another issuer is not this issuer's.
	if doc.Issuer != is.cfg.Issuer {
		return fmt.Errorf("discovery document names issuer %q", clip(doc.Issuer))
	}
	if doc.JWKSURI == "" {
		return errors.New("discovery document has no jwks_uri")
	}
	if err := checkURL(doc.JWKSURI, is.cfg.AllowInsecureHTTP); err != nil {
		return fmt.Errorf("jwks_uri %q: %w", clip(doc.JWKSURI), err)
	}
	is.jwksURL = doc.JWKSURI
	return nil
}

// fetchKeys fetches and parses the JWKS.
func (is *issuer) fetchKeys(ctx context.Context) (*keySet, error) {
	body, err := is.get(ctx, is.jwksURL)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("JWKS has %d keys, more than %d", len(doc.Keys), maxJWKSKeys)
	}

	ks := &keySet{thumbprints: make(map[string]bool, len(doc.Keys))}
	var ignored []string
	for i, raw := range doc.Keys {
		k, err := usableKey(raw)
		if err != nil {
			ignored = append(ignored, fmt.Sprintf("keys[%d]: %v", i, err))
			continue
		}
		ks.keys = append(ks.keys, k)
		ks.thumbprints[k.thumbprint] = true
	}
	if len(ignored) > 0 {
		is.log.Warn("authn: JWKS keys ignored", "url", is.jwksURL, "ignored", ignored)
	}
	// An empty set is more likely a broken response than the issuer
	// revoking every key: refuse it, so that a refresh keeps the old keys.
	if len(ks.keys) == 0 {
		return nil, fmt.Errorf("JWKS at %s has no usable signing key", is.jwksURL)
	}
	return ks, nil
}

// usableKey parses one JWK and keeps it if it is a public signing key of a
// supported type and size.
func usableKey(raw json.RawMessage) (*verifyKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return nil, fmt.Errorf("kid %q: use %q", clip(jwk.KeyID), clip(jwk.Use))
	}
	// A private or symmetric key in a JWKS means anybody can sign with it.
	if !jwk.IsPublic() {
		return nil, fmt.Errorf("kid %q: not a public key (a JWKS must not publish private or symmetric keys)", clip(jwk.KeyID))
	}
	switch key := jwk.Key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("kid %q: RSA key of %d bits, want %d or more", clip(jwk.KeyID), key.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		if curveAlgorithm(key.Curve) == "" {
			return nil, fmt.Errorf("kid %q: unsupported curve", clip(jwk.KeyID))
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("kid %q: unsupported key type %T", clip(jwk.KeyID), jwk.Key)
	}
	thumbprint, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &verifyKey{
		kid:        jwk.KeyID,
		alg:        jose.SignatureAlgorithm(jwk.Algorithm),
		key:        jwk.Key,
		thumbprint: string(thumbprint),
	}, nil
}

func curveAlgorithm(c elliptic.Curve) jose.SignatureAlgorithm {
	switch c {
	case elliptic.P256():
		return jose.ES256
	case elliptic.P384():
		return jose.ES384
	case elliptic.P521():
		return jose.ES512
	}
	return ""
}

// fits reports whether k can verify a signature made with alg.
func (k *verifyKey) fits(alg jose.SignatureAlgorithm) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(string(alg), "RS") || strings.HasPrefix(string(alg), "PS")
	case *ecdsa.PublicKey:
		return curveAlgorithm(key.Curve) == alg
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// candidates returns the keys that may have signed a token with kid and
// alg: the keys with that kid, or every key if kid is empty, that fit alg.
// kidKnown reports that some key has that kid, fitting alg or not.
func (ks *keySet) candidates(kid string, alg jose.SignatureAlgorithm) (keys []*verifyKey, kidKnown bool) {
	for _, k := range ks.keys {
		if kid != "" && k.kid != kid {
			continue
		}
		if kid != "" {
			kidKnown = true
		}
		if k.fits(alg) {
			keys = append(keys, k)
		}
	}
	return keys, kidKnown
}

// get fetches a discovery document or JWKS, bounded in time and size.
func (is *issuer) get(ctx context.Context, target string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := is.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", target, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", target, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("GET %s: response exceeds %d bytes", target, maxDocumentBytes)
	}
	return body, nil
}

// run refreshes the keys every RefreshInterval, and when a request asks
// for it, until ctx ends. It is the only goroutine that fetches after
// start, so that Close can wait for every fetch to end.
func (is *issuer) run(ctx context.Context, now func() time.Time) {
	t := time.NewTicker(is.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			is.abandon()
			return
		case <-t.C:
			is.begin(now(), true)
		case <-is.kick:
		}
		is.runPending(ctx)
	}
}

// begin returns the fetch under way, or starts one unless a fetch began
// less than minEarlyRefreshGap ago and force is false.
func (is *issuer) begin(now time.Time, force bool) *fetch {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.pending != nil {
		return is.pending
	}
	if !force && now.Sub(is.lastFetch) < minEarlyRefreshGap {
		return nil
	}
	is.pending = &fetch{done: make(chan struct{})}
	is.lastFetch = now
	return is.pending
}

// runPending runs the pending fetch, if any, and releases its waiters. A
// failed refresh keeps the previous keys: an issuer that is briefly
// unreachable does not lock every user out.
func (is *issuer) runPending(ctx context.Context) {
	is.mu.Lock()
	f := is.pending
	is.mu.Unlock()
	if f == nil {
		return
	}
	ks, err := is.fetchKeys(ctx)
	if err != nil {
		if ctx.Err() == nil { // not merely Close
			is.log.Warn("authn: JWKS refresh failed; keeping the previous keys", "url", is.jwksURL, "err", err)
		}
		f.err = err
	} else {
		is.keys.Store(ks)
	}
	is.mu.Lock()
	is.pending = nil
	is.mu.Unlock()
	close(f.done)
}

// abandon fails the pending fetch, which nobody will run any more.
func (is *issuer) abandon() {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.pending != nil {
		is.pending.err = errClosed
		close(is.pending.done)
		is.pending = nil
	}
}

// refreshEarly refreshes the keys for a token whose key is unknown, unless
// rate-limited, sharing a fetch already under way; it waits for the fetch
// within ctx. closed is the Authenticator's: after Close nobody runs fetches.
func (is *issuer) refreshEarly(ctx context.Context, now time.Time, closed <-chan struct{}) error {
	f := is.begin(now, false)
	if f == nil {
		return errRateLimited
	}
	select {
	case is.kick <- struct{}{}:
	default: // a kick is already queued
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	case <-closed:
		return errClosed
	}
}
