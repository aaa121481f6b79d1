package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// bearerToken extracts the token of an Authorization header value. Its
// shape is checked by checkShape, after the cache is asked.
func bearerToken(header string) (string, error) {
	scheme, token, ok := strings.Cut(header, " ")
	// RFC 9110 makes the scheme case-insensitive.
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: Authorization scheme is not Bearer", ErrMalformed)
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrMalformed)
	}
	if len(token) > maxTokenBytes {
		return "", fmt.Errorf("%w: bearer token of %d bytes exceeds %d", ErrMalformed, len(token), maxTokenBytes)
	}
	return token, nil
}

// checkShape checks that token is a JWS in compact serialization (three
// parts; encrypted tokens are not accepted) spelled in canonical base64url.
//
// go-jose decodes base64url leniently, ignoring the unused low bits of the
// last digit, so without the canonical check one token would have several
// spellings, each with its own SHA-256: a deny list of CredentialHash
// values could be dodged.
func checkShape(token string) error {
	dots, start := 0, 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c == '.' {
			if !canonicalBase64URL(token[start:i]) {
				return fmt.Errorf("%w: bearer token is not canonical base64url", ErrMalformed)
			}
			dots, start = dots+1, i+1
			continue
		}
		if base64URL[c] < 0 {
			return fmt.Errorf("%w: bearer token has a byte outside base64url at offset %d", ErrMalformed, i)
		}
	}
	if dots != 2 {
		return fmt.Errorf("%w: bearer token has %d parts, want 3 (a signed JWT)", ErrMalformed, dots+1)
	}
	if !canonicalBase64URL(token[start:]) {
		return fmt.Errorf("%w: bearer token is not canonical base64url", ErrMalformed)
	}
	return nil
}

// verifyToken authenticates a bearer token that bearerToken extracted.
func (a *Authenticator) verifyToken(ctx context.Context, token string) (Principal, error) {
	sum := tokenSum(token)
	now := a.now()
	if p, found, err := a.cached(sum, now); found {
		return p, err
	}
	// Only the shape of a token that is not in the cache needs checking:
	// a cached token is byte for byte one that passed every check.
	if err := checkShape(token); err != nil {
		return Principal{}, err
	}
	tok, is, err := a.parse(token)
	if err != nil {
		return Principal{}, err
	}
	keys, err := is.keysFor(ctx, tok.Headers[0], now, a.closed)
	if err != nil {
		return Principal{}, err
	}
	a.verifications.Add(1)
	claims, used, err := verifySignature(tok, keys, is)
	if err != nil {
		return Principal{}, err
	}
	if err := is.checkClaims(&claims, now); err != nil {
		return Principal{}, err
	}
	p := Principal{
		Subject:        claims.Subject,
		Issuer:         is.cfg.Issuer,
		Method:         MethodJWT,
		CredentialHash: hexSum(sum),
		Expires:        claims.Expiry.Time(),
	}
	a.tokens.put(sum, cachedToken{
		principal:  p,
		validUntil: p.Expires.Add(is.cfg.ClockSkew),
		issuer:     is,
		thumbprint: used.thumbprint,
	}, now)
	return p, nil
}

// cached answers for a token verified before: its principal, or the error
// if it has expired since (found is true for both). A token not in the
// cache, or whose key has left its issuer's JWKS, is not found.
func (a *Authenticator) cached(sum [sha256.Size]byte, now time.Time) (p Principal, found bool, err error) {
	e, ok := a.tokens.get(sum)
	if !ok {
		return Principal{}, false, nil
	}
	switch {
	case now.After(e.validUntil):
		a.tokens.remove(sum)
		return Principal{}, true, fmt.Errorf("%w: exp %s", ErrExpired, e.principal.Expires.UTC().Format(time.RFC3339))
	case e.issuer.hasKey(e.thumbprint):
		return e.principal, true, nil
	}
	// The key that signed the token has left the issuer's JWKS since
	// (rotated out, or revoked): verify again, which refuses it.
	a.tokens.remove(sum)
	return Principal{}, false, nil
}

// parse parses a signed token, before verification, and returns it with
// its issuer if that is configured and accepts the token's algorithm.
func (a *Authenticator) parse(token string) (*jwt.JSONWebToken, *issuer, error) {
	if len(a.algorithms) == 0 {
		return nil, nil, fmt.Errorf("%w: no issuers are configured", ErrIssuer)
	}
	tok, err := jwt.ParseSigned(token, a.algorithms)
	if err != nil {
		var unexpected *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &unexpected) {
			return nil, nil, fmt.Errorf("%w: alg %q", ErrAlgorithm, clip(string(unexpected.Got)))
		}
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// The issuer decides the keys, so it is read before verification; only
	// the exact string of a configured issuer selects anything.
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	is, ok := a.issuers[unverified.Issuer]
	if !ok {
		return nil, nil, fmt.Errorf("%w: iss %q", ErrIssuer, clip(unverified.Issuer))
	}
	if alg := jose.SignatureAlgorithm(tok.Headers[0].Algorithm); !is.accepts(alg) {
		return nil, nil, fmt.Errorf("%w: alg %s for issuer %s", ErrAlgorithm, alg, is.cfg.Issuer)
	}
	return tok, is, nil
}

// keysFor returns the keys of is that may have signed a token with header,
// refreshing the JWKS first if its key ID is unknown (perhaps the issuer
// rotated its keys); an error if there are none.
func (is *issuer) keysFor(ctx context.Context, header jose.Header, now time.Time, closed <-chan struct{}) ([]*verifyKey, error) {
	alg := jose.SignatureAlgorithm(header.Algorithm)
	keys, kidKnown := is.keys.Load().candidates(header.KeyID, alg)
	if len(keys) > 0 {
		return keys, nil
	}
	var refreshErr error
	if !kidKnown {
		// The refresh may be rate-limited: look again whatever it did.
		refreshErr = is.refreshEarly(ctx, now, closed)
		keys, kidKnown = is.keys.Load().candidates(header.KeyID, alg)
	}
	switch {
	case len(keys) > 0:
		return keys, nil
	case kidKnown:
		return nil, fmt.Errorf("%w: alg %s does not fit key %q of %s", ErrAlgorithm, alg, clip(header.KeyID), is.cfg.Issuer)
	case refreshErr != nil:
		return nil, fmt.Errorf("%w: kid %q not in the JWKS of %s (refresh: %w)", ErrUnknownKey, clip(header.KeyID), is.cfg.Issuer, refreshErr)
	}
	return nil, fmt.Errorf("%w: kid %q not in the JWKS of %s, even after a refresh", ErrUnknownKey, clip(header.KeyID), is.cfg.Issuer)
}

// verifySignature returns the claims of tok and the key among keys that
// signed it.
func verifySignature(tok *jwt.JSONWebToken, keys []*verifyKey, is *issuer) (jwt.Claims, *verifyKey, error) {
	var (
		claims jwt.Claims
		err    error
	)
	for _, k := range keys {
		if err = tok.Claims(k.key, &claims); err == nil {
			return claims, k, nil
		}
	}
	if errors.Is(err, jose.ErrCryptoFailure) {
		return claims, nil, fmt.Errorf("%w: kid %q of %s", ErrSignature, clip(tok.Headers[0].KeyID), is.cfg.Issuer)
	}
	return claims, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
}

// MaxSubject is the longest sub a token may carry: OpenID Connect's limit
// of 255 ASCII characters.
const MaxSubject = 255

// checkClaims checks the verified claims of a token of is at now, within
// the issuer's clock skew.
func (is *issuer) checkClaims(claims *jwt.Claims, now time.Time) error {
	skew := is.cfg.ClockSkew
	switch {
	case claims.Issuer != is.cfg.Issuer:
		// Unreachable unless the two decodings of the payload disagree.
		return fmt.Errorf("%w: iss %q", ErrIssuer, clip(claims.Issuer))
	case claims.Subject == "":
		return fmt.Errorf("%w: token has no sub claim", ErrMalformed)
	case len(claims.Subject) > MaxSubject:
		// OpenID Connect caps sub at 255 ASCII characters; a longer one
		// would be the actor's user everywhere downstream, past what the
		// control plane stores.
		return fmt.Errorf("%w: sub is %d bytes, at most %d", ErrMalformed, len(claims.Subject), MaxSubject)
	case claims.Expiry == nil:
		// A token without expiry would be valid, and cached, forever.
		return fmt.Errorf("%w: token has no exp claim", ErrMalformed)
	case !claims.Audience.Contains(is.cfg.Audience):
		return fmt.Errorf("%w: aud %q, want %q", ErrAudience, clip(strings.Join(claims.Audience, ",")), is.cfg.Audience)
	case now.After(claims.Expiry.Time().Add(skew)):
		return fmt.Errorf("%w: exp %s", ErrExpired, claims.Expiry.Time().UTC().Format(time.RFC3339))
	case claims.NotBefore != nil && now.Add(skew).Before(claims.NotBefore.Time()):
		return fmt.Errorf("%w: nbf %s", ErrNotYetValid, claims.NotBefore.Time().UTC().Format(time.RFC3339))
	case claims.IssuedAt != nil && now.Add(skew).Before(claims.IssuedAt.Time()):
		return fmt.Errorf("%w: iat %s is in the future", ErrNotYetValid, claims.IssuedAt.Time().UTC().Format(time.RFC3339))
	}
	return nil
}

// tokenBuffers holds buffers for tokenSum: converting the token to a
// []byte would allocate, a fifth of the cost of a cache hit.
var tokenBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, maxTokenBytes)
	return &b
}}

// tokenSum is the SHA-256 of token, the key of the verified-token cache.
func tokenSum(token string) [sha256.Size]byte {
	bp := tokenBuffers.Get().(*[]byte)
	b := append((*bp)[:0], token...)
	sum := sha256.Sum256(b)
	*bp = b
	tokenBuffers.Put(bp)
	return sum
}

// base64URL maps a byte to its value as a base64url digit, or -1.
var base64URL = func() (t [256]int8) {
	const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = -1
	}
	for i := range len(digits) {
		t[digits[i]] = int8(i)
	}
	return t
}()

// canonicalBase64URL reports whether s, made of base64url digits (a digit
// outside is caught by its caller), is the one unpadded encoding of its bytes: a valid length, and zeros in the bits
// of the last digit that encode nothing.
func canonicalBase64URL(s string) bool {
	var unused uint
	switch len(s) % 4 {
	case 0:
		return true
	case 1:
		return false
	case 2:
		unused = 4
	case 3:
		unused = 2
	}
	return base64URL[s[len(s)-1]]&(1<<unused-1) == 0
}
