// Package authn authenticates end users at the edge gateway, with one of
// two credentials per request:
//
//   - an OIDC/JWT bearer token (Authorization: Bearer <JWS>), verified
//     against the JSON Web Key Set of a configured issuer, which it must name
//     exactly in "iss", for a configured audience, with an asymmetric
//     algorithm the issuer is configured to use;
//   - an API key (X-API-Key by default), configured by its SHA-256 only.
//
// Each route says whether authentication is [Required], [Optional] or [Off].
// A credential that is presented but does not check out is an error even
// where authentication is optional: a client that believes it is
// authenticated must not be served silently as anonymous.
//
// Each issuer's JWKS is fetched at [New] (after OIDC discovery when no
// JWKS URL is configured), refreshed in the background, and refreshed early
// when a token names a key it does not hold, which is how a key rotation is
// picked up; those early refreshes are shared by concurrent requests and
// happen at most once per 30 seconds per issuer, so tokens with random key
// IDs cannot make the gateway hammer the issuer.
//
// A verified token is remembered, under its SHA-256, until it expires (for
// at most 10,000 tokens): a returning user costs a hash and a map lookup
// instead of a signature check. A remembered token is refused as soon as
// the key that signed it leaves the issuer's JWKS.
package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The values of [Principal.Method].
const (
	// MethodJWT: the principal presented a bearer token.
	MethodJWT = "jwt"
	// MethodAPIKey: the principal presented an API key.
	MethodAPIKey = "api-key"
)

const (
	// maxTokenBytes bounds the bearer token: real ID and access tokens are
	// 1–2 KiB, and the bound caps the work an anonymous request can cause
	// (hashing, base64 and JSON decoding) before any signature check.
	maxTokenBytes = 8 << 10
	// maxAPIKeyBytes bounds the API key for the same reason.
	maxAPIKeyBytes = 1 << 10
	// maxDocumentBytes bounds a discovery document or JWKS: a compromised
	// or broken issuer must not exhaust the gateway's memory.
	maxDocumentBytes = 1 << 20
	// maxJWKSKeys bounds the keys of a JWKS; a token without "kid" is tried
	// against each key of the right type, so this also bounds that work.
	maxJWKSKeys = 64
	// minEarlyRefreshGap rate-limits refreshes caused by unknown key IDs.
	minEarlyRefreshGap = 30 * time.Second
	// fetchTimeout bounds one discovery or JWKS request, whatever client
	// the configuration supplies.
	fetchTimeout = 15 * time.Second
	// tokenCacheCapacity bounds the verified-token cache: about 250 bytes an
	// entry, so a few MiB at most.
	tokenCacheCapacity = 10_000

	defaultClockSkew       = time.Minute
	maxClockSkew           = 10 * time.Minute
	defaultRefreshInterval = 10 * time.Minute
	minRefreshInterval     = time.Second
	defaultAPIKeyHeader    = "X-API-Key"
)

// Config configures an [Authenticator]. The zero value accepts no
// credentials at all: every route in [Required] mode refuses every request.
type Config struct {
	// Issuers are the OIDC providers whose tokens are accepted.
	Issuers []IssuerConfig
	// APIKeys are the accepted API keys. When empty, the API key header is
	// not examined (it may well be meant for the upstream service).
	APIKeys []APIKey
	// APIKeyHeader is the request header that carries an API key;
	// "X-API-Key" if empty. It cannot be Authorization.
	APIKeyHeader string
	// HTTPClient fetches discovery documents and JWKS; a client with a
	// 10-second timeout if nil. It is not modified: each issuer uses a
	// shallow copy whose redirect policy also enforces the issuer's URL
	// rules (https, or loopback http when allowed).
	HTTPClient *http.Client
	// Logger receives background JWKS refresh failures and ignored keys;
	// nothing is logged if nil.
	Logger *slog.Logger
	// Now is the clock for token validity and the refresh rate limit;
	// time.Now if nil.
	Now func() time.Time
}

// IssuerConfig is one trusted OIDC provider.
type IssuerConfig struct {
	// Issuer is the issuer identifier, an https URL; a token's "iss" must
	// equal it byte for byte (no normalization of a trailing slash).
	Issuer string
	// Audience must be one of a token's "aud" values: the client ID, or the
	// API identifier, that this gateway's tokens are minted for. Required.
	Audience string
	// JWKSURL is where the issuer publishes its keys. If empty, it is the
	// "jwks_uri" of the issuer's discovery document,
	// <Issuer>/.well-known/openid-configuration, read once at New.
	JWKSURL string
	// Algorithms are the accepted "alg" values; RS256, ES256 and EdDSA if
	// empty. Only asymmetric algorithms are allowed (RS*, PS*, ES*, EdDSA):
	// a symmetric one would let anybody who holds the public key sign.
	Algorithms []string
	// ClockSkew is the leeway on "exp", "nbf" and "iat"; one minute if zero,
	// at most ten minutes.
	ClockSkew time.Duration
	// RefreshInterval is how often the JWKS is fetched in the background;
	// ten minutes if zero, at least one second.
	RefreshInterval time.Duration
	// AllowInsecureHTTP allows http (instead of https) for the issuer,
	// discovery and JWKS URLs, and only when their host is a loopback IP
	// address: it exists for test issuers on 127.0.0.1.
	AllowInsecureHTTP bool
}

// APIKey is one accepted API key.
type APIKey struct {
	// Name identifies the key's holder; it becomes the Principal's Subject.
	// Several keys may share a name, so a holder can rotate keys.
	Name string
	// SHA256 is the hex SHA-256 of the key: the configuration never holds
	// the key itself. Because the hash is unsalted, keys must be random
	// (128 bits or more), or a leaked configuration could be brute-forced.
	SHA256 string
}

// Mode is how a route treats authentication. The zero value is Required,
// so a route whose mode was forgotten fails closed.
type Mode int

const (
	// Required: a valid credential is needed; none is ErrNoCredentials.
	Required Mode = iota
	// Optional: no credential gives the anonymous Principal; a credential
	// that is presented must be valid.
	Optional
	// Off: credentials are not examined; always the anonymous Principal.
	Off
)

// String returns "required", "optional" or "off".
func (m Mode) String() string {
	switch m {
	case Required:
		return "required"
	case Optional:
		return "optional"
	case Off:
		return "off"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Principal is an authenticated end user. The zero value is the anonymous
// principal.
type Principal struct {
	// Subject is the token's "sub", or the API key's Name. A "sub" is
	// unique per issuer only: key users by Issuer and Subject together.
	Subject string
	// Issuer is the issuer's identifier for a token, empty for an API key.
	Issuer string
	// Method is MethodJWT or MethodAPIKey, empty when anonymous.
	Method string
	// CredentialHash is the hex SHA-256 of the bearer token or API key, for
	// logs and correlation: never the credential itself.
	CredentialHash string
	// Expires is the token's "exp"; zero for an API key.
	Expires time.Time
}

// IsAnonymous reports whether p is the anonymous principal.
func (p Principal) IsAnonymous() bool { return p.Method == "" }

// Authenticator checks the credentials of requests. It is safe for
// concurrent use. Close stops its background JWKS refreshes.
type Authenticator struct {
	issuers      map[string]*issuer // by exact issuer identifier
	algorithms   []jose.SignatureAlgorithm
	apiKeys      map[[sha256.Size]byte]Principal
	apiKeyHeader string
	tokens       *tokenCache
	now          func() time.Time

	stop      context.CancelFunc // ends the refresh goroutines
	closed    chan struct{}      // closed by Close: nobody runs refreshes any more
	closeOnce sync.Once
	wg        sync.WaitGroup

	// verifications counts signature checks, so tests can tell a cache hit
	// from a verification.
	verifications atomic.Int64
}

// New validates cfg and fetches the keys of every issuer (after discovery
// where no JWKSURL is given), with ctx bounding that start-up I/O only. It
// fails if any issuer's keys cannot be fetched: a typo in a URL shows at
// start, not as 401s. The background refreshes it starts run until Close.
func New(ctx context.Context, cfg Config) (*Authenticator, error) {
	a := &Authenticator{
		issuers: make(map[string]*issuer, len(cfg.Issuers)),
		tokens:  newTokenCache(tokenCacheCapacity),
		now:     cfg.Now,
		closed:  make(chan struct{}),
	}
	if a.now == nil {
		a.now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}

	if err := a.setAPIKeys(cfg.APIKeys, cfg.APIKeyHeader); err != nil {
		return nil, err
	}

	var issuers []*issuer
	seenAlg := map[jose.SignatureAlgorithm]bool{}
	for i, ic := range cfg.Issuers {
		is, err := newIssuer(i, ic, client, log)
		if err != nil {
			return nil, err
		}
		if _, dup := a.issuers[is.cfg.Issuer]; dup {
			return nil, fmt.Errorf("authn: Issuers[%d].Issuer %q is configured twice", i, is.cfg.Issuer)
		}
		a.issuers[is.cfg.Issuer] = is
		issuers = append(issuers, is)
		for _, alg := range is.algorithms {
			if !seenAlg[alg] {
				seenAlg[alg] = true
				a.algorithms = append(a.algorithms, alg)
			}
		}
	}

	for i, is := range issuers {
		if err := is.start(ctx, a.now()); err != nil {
			return nil, fmt.Errorf("authn: Issuers[%d] (%s): %w", i, is.cfg.Issuer, err)
		}
	}

	// The refresh goroutines outlive New's context, which bounds start-up
	// only; Close ends them.
	runCtx, stop := context.WithCancel(context.Background())
	a.stop = stop
	for _, is := range issuers {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			is.run(runCtx, a.now)
		}()
	}
	return a, nil
}

// Close stops the background JWKS refreshes and waits for them to end. The
// Authenticator still verifies tokens afterwards, with the keys it holds,
// but no longer refreshes them. Close is idempotent.
func (a *Authenticator) Close() {
	a.closeOnce.Do(func() {
		close(a.closed)
		a.stop()
		a.wg.Wait()
	})
}

// Authenticate checks the credential of r as mode requires. It returns the
// anonymous Principal and no error when mode is Off, or when it is Optional
// and r carries no credential. Otherwise r must carry exactly one
// credential (an Authorization header, or the API key header when API keys
// are configured) and it must be valid: the error wraps one of the package's
// sentinel errors. Any mode other than Optional and Off is treated as
// Required.
//
// Authenticate may wait, within r's context, for a JWKS refresh when a token
// names a key the issuer's JWKS lacked.
func (a *Authenticator) Authenticate(r *http.Request, mode Mode) (Principal, error) {
	if mode == Off {
		return Principal{}, nil
	}
	p, err := a.authenticate(r)
	if err != nil {
		if mode == Optional && errors.Is(err, ErrNoCredentials) {
			return Principal{}, nil
		}
		return Principal{}, err
	}
	return p, nil
}

func (a *Authenticator) authenticate(r *http.Request) (Principal, error) {
	bearer := r.Header.Values("Authorization")
	var keys []string
	if len(a.apiKeys) > 0 {
		keys = r.Header.Values(a.apiKeyHeader)
	}
	// Two credentials are refused rather than ranked: whichever one a proxy
	// behind us would pick, the identity must be the one we checked.
	switch n := len(bearer) + len(keys); {
	case n == 0:
		return Principal{}, ErrNoCredentials
	case n > 1:
		return Principal{}, fmt.Errorf("%w: %d credentials in the request, want one", ErrMalformed, n)
	}
	if len(keys) == 1 {
		return a.checkAPIKey(keys[0])
	}
	token, err := bearerToken(bearer[0])
	if err != nil {
		return Principal{}, err
	}
	return a.verifyToken(r.Context(), token)
}

// clip shortens attacker-controlled text quoted in an error, so that a
// token cannot fill the gateway's logs.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// hexSum is the hex SHA-256 that Principal.CredentialHash holds.
func hexSum(sum [sha256.Size]byte) string { return hex.EncodeToString(sum[:]) }

// validHeaderName reports whether name is an HTTP header field name (an
// RFC 9110 token).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
