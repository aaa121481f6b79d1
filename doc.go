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
// A queue worker runs each job in the context [Agent.StartJob] returns: the
// job's payload is read as a request body (each JSON field an input), and
// the actor whose request enqueued it (its token travels in the message's
// headers, [PropagationHeaders]) is named in the job's events and subject to its
// decisions; contrib/nats and contrib/amqp do both for their brokers. Other
// code without an HTTP request marks its untrusted values with
// [WithUntrusted] and gets the same protection for them.
//
// # Logging
//
// Every Rampart package that logs takes a *slog.Logger in its
// configuration ([Config.Logger]; identity.JoinConfig.Logger;
// workload.Config.Logger in package identity/workload), and nil means
// [slog.Default]: the application decides where Rampart's messages go, and
// in what format, with slog.SetDefault or by passing a logger. Rampart
// never configures global logging. Without [Config.Sinks] the agent logs
// each event through the same logger ([NewSlogSink]), at level Warn; a
// service that ships its events elsewhere ([NewControlSink]) still hears
// from the agent itself there (dropped events, a failing sink, the control
// plane unreachable). The packages that do not log (actor, the guards)
// return errors that say why, and the guards report through the agent.
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
//
// # What is captured
//
// Everything ordinary Go code reads from a request, in request order:
//
//   - the query string, each key and value, parsed in order from the raw
//     query (pairs url.ParseQuery drops, with a bad escape or a semicolon,
//     are recorded as sent);
//   - path wildcards (r.PathValue); for a subtree pattern ("/files/" or
//     "/files/{rest...}") what it matched and each of its segments, as code
//     reading r.URL.Path sees them; with no ServeMux pattern, every segment
//     of the path; with another router, the path parameters its adapter
//     reports with [SetRoute] (contrib/gin, contrib/echo, contrib/chi), in
//     the router's order, and the segments of a catch-all's value;
//   - cookies, each value as sent and unquoted, those net/http drops (a
//     double quote or a backslash in the value) included;
//   - every header, User-Agent, Referer and Config.Headers first, the
//     others in name order, the trailers of a chunked body (read with the
//     body when it fits the capture), and the Host. Not recorded: the actor token
//     (Rampart-Actor) when zero trust verified it for the request, and a
//     well-formed traceparent (hex and dashes), which cannot carry attacker
//     text; Cookie, recorded cookie by cookie; Content-Length, digits
//     net/http validated. An actor token nothing verified (an agent without
//     an identity), a malformed traceparent and tracestate (free text) are
//     inputs like any header;
//   - the body, read by its content, not its Content-Type, because a JSON
//     decoder never looks at the label: every string of it if it scans as
//     JSON (its first non-space byte is {, [ or "), its key=value pairs if it
//     is labelled as a urlencoded form or holds '=', and the whole text as
//     one input. A multipart body (labelled multipart/* with a boundary, as
//     net/http requires to parse it) gives each field's name and value and
//     each file's name, never a file's content. A body with a
//     Content-Encoding of gzip (x-gzip) or deflate, as the request declared
//     it when it arrived, is read decompressed, as a decompression
//     middleware inside [Agent.Handler] hands it to the handler;
//   - what these decode to: a JSON document inside a string (a JSON string
//     value, a query parameter) gives its strings too, a value that is
//     itself one JSON string ("x\u0027...", encoded twice) gives it
//     unescaped, and a value of at
//     least 8 characters that is base64 or base64url of printable text gives
//     the text, as name "<name> (base64)".
//
// What is not seen: the query is read as it arrived, but headers and
// cookies are read when a guard asks, from the request the handler holds, so
// a middleware inside [Agent.Handler] that deletes a header after reading it
// (to hand it on in the context) hides it: put such middleware outside. A
// guarded call made without the request's context from a goroutine other
// than the one serving the request (go func() { db.Exec(...) }()) sees no
// request inputs: pass r.Context() to it. Bodies are read as JSON, forms,
// multipart and text; other encodings a handler decodes (XML entities,
// UTF-16, protocol buffers) are seen only as the raw text.
//
// Empty values are skipped and, past the first 256, identical values are
// recorded once (a value met again with more decodings left than at first
// is decoded again). Nothing is parsed until a guard asks: a request that makes
// no guarded call pays for the body capture only. The capture reads the body
// (up to MaxBodyBytes, or to its end) before the handler runs, so a route
// whose client streams its body while it reads the response (gRPC
// streaming, full-duplex HTTP) must not be behind [Agent.Handler]: wrap the
// other routes one by one.
//
// # Caps, and what happens over them
//
//   - Config.MaxBodyBytes (1 MiB): how much of a body is captured. A longer
//     body reaches the handler whole. Until the handler reads past the
//     captured bytes, nothing uncaptured can reach a call; once it has, the
//     request is incomplete, unless the body is a form that net/http parsed
//     on the request the middleware passed down (r.FormValue,
//     r.ParseMultipartForm), whose fields are then read from r.PostForm or
//     r.MultipartForm (a multipart upload of any size stays usable), or the
//     body is binary (a NUL byte in its first 512 bytes, and not labelled as
//     a form), which no JSON or text decoder reads past.
//   - A compressed body is decompressed up to MaxBodyBytes: one longer once
//     decompressed (or a corrupt stream) is incomplete, unless what it holds
//     is binary as above. A body in a coding the SDK does not decode (br,
//     zstd, ...) makes the request incomplete once the handler reads it.
//   - Config.MaxInputs (DefaultMaxInputs, 16,384): distinct input values of
//     one request. A realistic JSON API body holds about 26 distinct strings
//     per KiB (an order of line items: 13,422 in 512 KiB), ordinary requests
//     a few dozen.
//   - JSON inside JSON strings is read three levels deep; a JSON document
//     deeper than that makes the request incomplete. Base64 is decoded once
//     per level, never more than three in all.
//   - A multipart body of more than 1,000 parts (net/http refuses more) is
//     incomplete, as is one that cannot be parsed to its end within the
//     captured bytes.
//
// A request whose inputs could not all be recorded is never guarded as if
// they had been: every guard calls [CheckInputsComplete] before it lets a
// call through. In block mode the call fails closed (an error wrapping
// [ErrBlocked], a 403 for the request) and one event of kind
// inputs_truncated is reported for the request; in monitor mode the event is
// reported and calls go on. [Stats].InputsTruncated counts such requests.
// At these caps the most expensive hostile request measured (1 MiB of
// distinct JSON keys) costs about 11 ms and 8.4 MB all told, the handler's
// own read of the body included (BenchmarkHostileCapture), as much as it
// cost when inputs past a cap of 2,048 were dropped.
//
// # Zero trust
//
// With Config.Identity the service joins the mesh, and [Agent.Handler]
// admits a call only when all of these hold:
//
//   - the caller presented, at the mTLS handshake, an SVID of the trust
//     domain of a service the control plane has not revoked;
//   - the policy allows that service on the route;
//   - the route does not require an actor, or the call carries an actor
//     token (401 and an actor_missing event otherwise). The policy says
//     which routes require one: by default every route the edge (the
//     gateway) may call and every sensitive route;
//   - the actor token, if any, is signed by a key the control plane
//     publishes, unexpired, names this service in its audience, and is
//     presented by the gateway that signed it or by a service it names
//     (401 and an actor_token_invalid event otherwise);
//   - no control-plane decision on the actor refuses the call.
//
// The actor token is a bearer credential of bounded reach (see package
// actor): the gateway mints one per actor and upstream service, naming the
// services a request entering there can reach by the policy, for five
// minutes. A service outside that set refuses it, and a service that
// captured it cannot present it unless the token names that service too.
// Between services the token travels unchanged ([Agent.Client],
// [Agent.Propagate]). Verifying a token costs one EdDSA signature check the
// first time a service sees it, then a map lookup.
//
// Revocation: the agent follows the control plane's watch. When a service
// is revoked, every agent refuses its SVID at the next handshake, closes
// the connections it has open with it (server and client side) and refuses
// to call it, within the watch's latency (well under a second), not when
// its last SVID expires.
//
// Events: an event that names an actor is sent to the control plane with
// the actor token the service received; the control plane stores the actor
// as verified only if that token backs it, and otherwise as claimed by the
// service, which never drives an automatic decision. A service therefore
// cannot frame a user or an IP it never served.
package rampart
