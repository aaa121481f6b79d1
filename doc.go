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
//
// # Secrets in events
//
// An event shows the attacking input and the statement, URL, path or command
// it was found in, which may hold other inputs of the request. The value of an
// input that looks like a secret never leaves the process: every cookie, and
// every input whose name has a word such as password, passwd, pwd, pass,
// secret, token, key, apikey, auth, authorization, session, sid, credential,
// otp, jwt, bearer, signature, csrf, private or pin (names are split at
// punctuation and case changes, so "X-Api-Key" and "resetToken" are secrets
// and "monkey" is not; [Config.SecretNames] adds words). Its value is replaced
// by [Redacted] in the event's input, detail and reason, before any
// truncation; when the attacking input is itself a secret, the text between
// the detail's ⟦ and ⟧ marks is replaced, so the event still shows where it
// went and why it was refused. Values shorter than three bytes, and a value
// equal to its own parameter name, are not searched for.
package rampart
