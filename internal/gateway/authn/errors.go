package authn

import "errors"

// Errors Authenticate returns, each wrapped with the detail of what was
// wrong. The gateway answers every one of them with the same 401 and logs
// the error: the sentinel says why, for dashboards and alerts, and the
// detail never contains the credential itself.
var (
	// ErrNoCredentials: the route requires authentication and the request
	// carries neither an Authorization header nor an API key.
	ErrNoCredentials = errors.New("authn: no credentials")
	// ErrMalformed: the credential cannot be parsed (not "Bearer <JWS>", bad
	// base64url, not three parts, too large, missing sub or exp claim), or
	// the request carries more than one credential.
	ErrMalformed = errors.New("authn: malformed credential")
	// ErrAlgorithm: the token's "alg" is not one the issuer is configured to
	// accept (this is where "none" and HS256 signed with a public key end),
	// or does not match the type of the key its "kid" names.
	ErrAlgorithm = errors.New("authn: signature algorithm not accepted")
	// ErrUnknownKey: no key of the issuer's JWKS matches the token's "kid",
	// even after a refresh of the JWKS (or the refresh was rate-limited).
	ErrUnknownKey = errors.New("authn: unknown signing key")
	// ErrSignature: the signature does not verify with the issuer's key.
	ErrSignature = errors.New("authn: invalid signature")
	// ErrIssuer: the token's "iss" is not a configured issuer.
	ErrIssuer = errors.New("authn: untrusted issuer")
	// ErrAudience: the token's "aud" does not contain the issuer's
	// configured audience (a token minted for another service).
	ErrAudience = errors.New("authn: wrong audience")
	// ErrExpired: the token's "exp" is past, beyond the clock skew.
	ErrExpired = errors.New("authn: token expired")
	// ErrNotYetValid: the token's "nbf" or "iat" is in the future, beyond
	// the clock skew (often a clock out of sync on one side).
	ErrNotYetValid = errors.New("authn: token not yet valid")
	// ErrAPIKey: the presented API key is not one of the configured keys.
	ErrAPIKey = errors.New("authn: unknown API key")
)
