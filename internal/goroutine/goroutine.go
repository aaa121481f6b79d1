// Package goroutine identifies the running goroutine cheaply.
//
// The SDK needs it for one thing: database/sql calls made without a
// context.Context (db.Query instead of db.QueryContext) still run on the
// goroutine that serves the HTTP request, so the middleware records which
// goroutine serves which request and a guard looks that up when its context
// carries no inputs.
package goroutine

// ID returns an identifier of the calling goroutine that stays the same for
// the goroutine's lifetime and differs from every other live goroutine. It
// may be reused once the goroutine has exited, so callers must forget an ID
// before the goroutine that registered it returns.
func ID() uintptr { return id() }
