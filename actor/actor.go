// Package actor carries the external actor behind a request — the client IP,
// the end user and a hash of their session, as the edge gateway saw them — to
// every service the request reaches, in a token the gateway signs and each
// service verifies.
//
// A service must never take the actor from a header a client could write:
// the edge strips client-sent actor headers, and services accept only
// tokens signed with a key the control plane publishes.
//
// # Token format
//
// The token is a JWS in compact form (a JWT), header
// {"alg":"ES256"|"EdDSA","kid":<key id>,"typ":"rampart-actor+jwt"}, with
// claims:
//
//	iss  the minting gateway's SPIFFE ID
//	aud  the SPIFFE IDs of the services that may accept it (see below)
//	sub  the authenticated end user, absent for an anonymous actor
//	ip   the external client IP
//	sid  hex SHA-256 of the session cookie or bearer credential (never the credential)
//	dev  the device fingerprint the gateway computed (see package internal/gateway), absent if none
//	iat, nbf, exp   issued-at and expiry; a token lives minutes, not hours
//
// # Trust model
//
// A token is a bearer credential of limited reach. What bounds its replay:
//
//   - Audience per destination. The gateway mints a token per actor and
//     upstream service, whose "aud" lists the services a request entering
//     there can reach by the policy's allow rules (policy.Reach): the
//     upstream, the services it may call, and so on. A service accepts only
//     tokens that name it (VerifierConfig.Audience is its own SPIFFE ID), so
//     a token minted for one part of the mesh is refused by another.
//   - Binding to the caller. A service also checks that the mTLS peer that
//     presents a token may hold it ([Actor.HeldBy]): the gateway that
//     signed it, or a service it names. A service outside a token's
//     audience, compromised, that captured the token (from a log, a
//     response, a shared cache) cannot present it anywhere: the mTLS
//     handshake authenticates the caller, and the caller is not named.
//   - Lifetime. Tokens live minutes (DefaultLifetime, at most MaxLifetime)
//     and a gateway reuses one for half of that; a service inside the
//     audience can replay a token it received to another service of the
//     audience only within that window, which is what it could do anyway
//     while it serves the actor's request.
//
// Which routes require a token at all is the policy's to say (see package
// internal/policy: by default every route the edge may call and every
// sensitive route); a service refuses a call without one there.
//
// The token names an actor, not a request: a gateway signs one per actor and
// session and reuses it until it nears expiry, and a service that has
// verified it once recognises it again with a map lookup. The request's own
// trace travels beside it in the W3C traceparent header; a per-request claim
// would make every hop pay a signature check (~50 µs for EdDSA, the control
// plane's default, ~70 µs for ES256) for data that carries no authority.
//
// # Events
//
// A service that reports an event about a request sends the token it
// received beside the event; the control plane verifies it (with a relaxed
// expiry, for late delivery, and the audience naming that service) and
// stores the event's actor as verified only if the token names the same IP,
// user, session and device. Otherwise the actor is stored as claimed by the
// service and never drives an automatic decision (see package
// internal/control).
//
// # Logging
//
// Package actor logs nothing: Verify's errors (ErrExpired, ErrAudience,
// ...) say why a token was refused, and the caller logs them through its
// own *slog.Logger (see Logging in package rampart).
package actor

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"
)

// Header is the HTTP request header that carries the actor token between
// the gateway and services, and from service to service.
const Header = "Rampart-Actor"

// TokenType is the JWS "typ" of an actor token, so that no other JWT signed
// by the same key can pass for one.
const TokenType = "rampart-actor+jwt"

// MaxTokenSize bounds the tokens Verify parses: room for an audience of
// MaxAudience services. A token for a handful of services is under 1 KiB.
const MaxTokenSize = 32 << 10

// MaxAudience bounds the services one token names.
const MaxAudience = 256

// MaxLifetime bounds a token's lifetime (exp - iat): Verify refuses longer
// ones whoever signed them.
const MaxLifetime = time.Hour

// Actor is the external actor behind a request.
type Actor struct {
	IP      netip.Addr // the external client's IP address
	User    string     // the authenticated end user; "" if anonymous
	Session string     // hex SHA-256 of the session or bearer credential; "" if none
	// Device is the gateway's fingerprint of the client device: a hash
	// of the signed device cookie it issued (or, for a client that
	// returns none, of its network and traits), "" if none. It tells
	// two browsers behind one address apart; the client can drop it (and
	// become a new device), not choose another's.
	Device string

	// Set by Verify from the token.
	Issuer   string    // the gateway that vouched for the actor
	IssuedAt time.Time //
	Expires  time.Time //
	KeyID    string    // the key that signed the token
	Audience []string  // the SPIFFE IDs the token names, sorted
}

// HeldBy reports whether the service with SPIFFE ID id may present the
// token: it is the gateway that signed it, or a service the token names.
// A service checks it against the mTLS peer of every call that carries the
// token.
func (a Actor) HeldBy(id string) bool {
	if id == "" {
		return false
	}
	if id == a.Issuer {
		return true
	}
	_, found := slices.BinarySearch(a.Audience, id)
	return found
}

// Errors returned by Verify; the gateway and services branch on them with
// errors.Is to log why a token was refused.
var (
	ErrMalformed   = errors.New("actor: malformed token")
	ErrAlgorithm   = errors.New("actor: signature algorithm not allowed")
	ErrUnknownKey  = errors.New("actor: token signed with an unknown key")
	ErrSignature   = errors.New("actor: bad signature")
	ErrExpired     = errors.New("actor: token expired")
	ErrNotYetValid = errors.New("actor: token not valid yet")
	ErrAudience    = errors.New("actor: token for another audience")
	ErrHolder      = errors.New("actor: token presented by a service it does not name")
)

type contextKey struct{}

// The context helpers follow the standard library's convention (as in
// net/http/httptrace and runtime/pprof): NewXContext puts a value in a
// context, XFromContext takes it out.

// NewContext returns a copy of ctx that carries a, for the handlers of a
// request whose actor token was verified.
func NewContext(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, contextKey{}, &a)
}

// FromContext returns the actor in ctx, if any.
func FromContext(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(contextKey{}).(*Actor)
	if !ok {
		return Actor{}, false
	}
	return *a, true
}

// tokenContextKey keeps the verified token itself, so that outbound calls
// forward it unchanged.
type tokenContextKey struct{}

// NewTokenContext returns a copy of ctx that carries the verified token of
// the request's actor, for outbound calls to forward unchanged.
func NewTokenContext(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, tokenContextKey{}, token)
}

// TokenFromContext returns the token put in ctx by NewTokenContext.
func TokenFromContext(ctx context.Context) (string, bool) {
	t, ok := ctx.Value(tokenContextKey{}).(string)
	return t, ok && t != ""
}

// WithToken returns NewTokenContext(ctx, token).
//
// Deprecated: use NewTokenContext, named like NewContext. WithToken will
// be removed in the next release.
func WithToken(ctx context.Context, token string) context.Context {
	return NewTokenContext(ctx, token)
}
