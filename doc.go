// Package rampart is the in-app protection SDK of Rampart.
//
// A service builds one [Agent] at start-up, wraps its HTTP handler with
// [Agent.Handler], and opens its database through a guard such as
// github.com/rampartsec/rampart/sqlguard. The middleware records the
// request's untrusted inputs in its context; at the dangerous call the guard
// looks for those inputs and blocks only when one of them changes the
// structure of what is executed. A blocked call returns an error that wraps
// [ErrBlocked]; the middleware then answers 403 with a JSON body carrying the
// request id. Every detection becomes an [Event] delivered asynchronously to
// the configured sinks.
//
// Code without an HTTP request (queue workers, consumers) marks its untrusted
// input with [WithUntrusted] and gets the same protection.
package rampart
