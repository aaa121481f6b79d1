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
