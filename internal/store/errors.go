package store

import "errors"

// Errors callers branch on with errors.Is.
var (
	ErrInvalid  = errors.New("store: invalid input") // wrapped by *InvalidError
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: conflict")       // e.g. a policy written from an outdated base
	ErrClosed   = errors.New("store: closed")         // Subscribe after Close
	ErrBusy     = errors.New("store: busy")           // Prune while another replica prunes
	ErrQuota    = errors.New("store: quota exceeded") // HeartbeatQuota: the service has its most live instances

	ErrTokenUnknown      = errors.New("store: join token unknown") // never issued, forged or malformed
	ErrTokenUsed         = errors.New("store: join token used up") // every use it allowed is spent
	ErrTokenExpired      = errors.New("store: join token expired") // past its expiry
	ErrTokenRevoked      = errors.New("store: join token revoked") // by an admin, before it was used up
	ErrTokenWrongService = errors.New("store: join token for another service")
)

// InvalidError reports input a store refused, naming the field, e.g.
// "events[3].id" or "value". It wraps ErrInvalid.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return "store: invalid " + e.Field + ": " + e.Reason }

// Unwrap returns ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

func invalid(field, reason string) error { return &InvalidError{Field: field, Reason: reason} }
