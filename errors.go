package rampart

import (
	"errors"
	"fmt"
)

// ErrBlocked is wrapped by every error a guard returns when it refused a call
// because untrusted input would have exploited it. Branch on it with
// errors.Is(err, rampart.ErrBlocked).
var ErrBlocked = errors.New("rampart: blocked")

// BlockedError is the error a guard returns for a blocked call. It carries the
// security event that was reported for it.
type BlockedError struct {
	Event Event
}

// Error describes the attack in one line without repeating the input.
func (e *BlockedError) Error() string {
	if e.Event.Input.Source == "" {
		// Findings that need no input, such as a request to a cloud
		// metadata endpoint.
		return fmt.Sprintf("rampart: blocked %s at %s", e.Event.Kind, e.Event.Location)
	}
	return fmt.Sprintf("rampart: blocked %s from %s input at %s", e.Event.Kind, e.Event.Input.Source, e.Event.Location)
}

// Is reports whether target is ErrBlocked.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }
