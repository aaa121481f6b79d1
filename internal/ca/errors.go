package ca

import "errors"

// Errors callers branch on with errors.Is. Each is wrapped with the detail
// of what was wrong.
var (
	// ErrInvalidCSR: the CSR is malformed, too large, or its signature does
	// not verify (no proof that the requester holds the private key).
	ErrInvalidCSR = errors.New("ca: invalid CSR")
	// ErrUnsupportedKey: the CSR's public key is of an algorithm or size the
	// CA does not certify (RSA under 2048 bits, P-521, DSA…).
	ErrUnsupportedKey = errors.New("ca: unsupported public key")
	// ErrInvalidServiceName: not 1–63 of lowercase letters, digits and '-'.
	ErrInvalidServiceName = errors.New("ca: invalid service name")
	// ErrUntrustedSVID: a presented SVID does not chain to this CA, or its
	// SPIFFE ID is not a service of this trust domain.
	ErrUntrustedSVID = errors.New("ca: SVID not issued by this CA")
	// ErrSVIDExpired: a presented SVID is past its NotAfter (or before its
	// NotBefore); it cannot authenticate a renewal.
	ErrSVIDExpired = errors.New("ca: SVID expired")
	// ErrCAExpired: the CA certificate is outside its validity period
	// (expired, or not yet valid), so it issues nothing.
	ErrCAExpired = errors.New("ca: CA certificate expired or not yet valid")
	// ErrRevoked is for the API layer: the CA keeps no revocation state, so
	// it never returns ErrRevoked itself. A caller that refuses a renewal
	// because the store marks the service revoked wraps it, so that every
	// refusal of the identity endpoints is a sentinel of this package.
	ErrRevoked = errors.New("ca: service revoked")
)
