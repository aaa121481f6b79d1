package rampart

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"go.opentelemetry.io/otel/trace"

	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/decision"
	"github.com/rampartsec/rampart/internal/policy"
)

// A Call is one call that reached the service by a transport other than
// net/http, such as gRPC, as [Agent.StartCall] admits it. The gRPC
// interceptors of contrib/grpc fill it.
type Call struct {
	// Method and Path are what the policy authorizes: gRPC calls are
	// "POST" to "/<package>.<Service>/<Method>", as on the wire, so that
	// a policy names gRPC methods beside HTTP routes.
	Method, Path string
	// Route names the call in events and in the inventory; "" means Path.
	Route string
	// ID is the request id of the call's events when it is one
	// ([A-Za-z0-9._-], at most 128 bytes); otherwise a fresh one.
	ID string
	// PeerCertificates are the client's certificates from the mTLS
	// handshake, leaf first, verified by the server's TLS configuration
	// (Agent.ServerTLSConfig). With Config.Identity a call without them
	// is refused.
	PeerCertificates []*x509.Certificate
	// RemoteAddr is the client's address, for events.
	RemoteAddr string
	// ActorToken, Traceparent and Tracestate are what the call carried
	// (gRPC metadata rampart-actor, traceparent, tracestate).
	ActorToken, Traceparent, Tracestate string
}

// StartCall admits a call as [Agent.Handler] admits a request, and returns
// the context to serve it in, or an error when it must not be served.
//
// With Config.Identity: the caller must present an SVID of the trust
// domain, of a service that is not revoked, that the policy allows to call
// Method on Path; the actor token, required where the policy says so,
// must verify and name the caller as a holder; the control plane's
// decisions about the actor apply as they do to a request with Method. A
// refusal is reported as an event (mtls_refused, authz_denied,
// actor_missing, actor_invalid, decision_enforced) and returned as a
// *BlockedError, whose Event.Kind says which; ErrNotReady is returned
// until the agent has its policy. Without an identity, the call is
// admitted and its token ignored.
//
// In the returned context, guards see the inputs the transport adds with
// [AddInputs] (the call's messages), events name the call's route, request
// id, trace, caller and actor, and [CallBlocked] tells whether a guard
// blocked a call of it.
func (a *Agent) StartCall(ctx context.Context, c Call) (context.Context, error) {
	route := c.Route
	if route == "" {
		route = c.Path
	}
	req, ctx := a.newCallRequest(ctx, c.Method, c.Path, route, c.ID, c.Traceparent, c.Tracestate)
	req.r.RemoteAddr = c.RemoteAddr
	z := a.zt
	if z == nil {
		return ctx, nil
	}
	select {
	case <-z.sync.Ready():
	default:
		return nil, ErrNotReady
	}
	if len(c.PeerCertificates) == 0 {
		return nil, a.refuseCall(ctx, req, KindMTLSRefused, "", "a client SVID is required (mTLS)")
	}
	id, err := x509svid.IDFromCert(c.PeerCertificates[0])
	if err != nil || id.TrustDomain() != z.td {
		return nil, a.refuseCall(ctx, req, KindMTLSRefused, "", "client certificate is not an SVID of this trust domain")
	}
	req.caller = id.String()
	caller, _ := identity.ServiceName(id)
	if z.revoked.Revoked(caller) {
		return nil, a.refuseCall(ctx, req, KindMTLSRefused, "", "service "+caller+" is revoked")
	}
	path, ok := canonicalCallPath(c.Path)
	authz := z.authz.Load()
	if !ok || caller == "" || !authz.Allow(caller, c.Method, path) {
		if c.ActorToken != "" {
			if act, ok := z.verifier.Cached(c.ActorToken); ok && act.HeldBy(req.caller) {
				req.actor, req.actorToken = &act, c.ActorToken
			}
		}
		return nil, a.refuseCall(ctx, req, KindAuthzDenied, "", fmt.Sprintf("%s may not call %s %s", id, c.Method, truncate(c.Path, 256)))
	}
	z.see(z.routes, route)
	if c.ActorToken == "" {
		if authz.ActorRequired(c.Method, path) {
			return nil, a.refuseCall(ctx, req, KindActorMissing, "", fmt.Sprintf("an actor token is required on %s %s", c.Method, truncate(c.Path, 256)))
		}
		return ctx, nil
	}
	act, err := z.verifier.Verify(c.ActorToken)
	if err == nil && !act.HeldBy(req.caller) {
		err = fmt.Errorf("%w: %s", actor.ErrHolder, req.caller)
	}
	if err != nil {
		return nil, a.refuseCall(ctx, req, KindActorInvalid, "", "actor token refused: "+err.Error())
	}
	return a.applyDecisions(ctx, req, act, c.ActorToken, c.Method, func() bool { return authz.Sensitive(c.Method, path) })
}

// canonicalCallPath refuses the paths CanonicalPath refuses for HTTP.
func canonicalCallPath(p string) (string, bool) {
	u := &url.URL{Path: p}
	if p == "" || p[0] != '/' {
		return p, false
	}
	return policy.CanonicalPath(u)
}

// newCallRequest makes the request state of a call or a job, which have
// no *http.Request: one is made up with what events show of it.
func (a *Agent) newCallRequest(ctx context.Context, method, path, route, id, traceparent, tracestate string) (*request, context.Context) {
	r := &http.Request{Method: method, URL: &url.URL{Path: path}, Header: http.Header{}}
	if validRequestID(id) {
		r.Header.Set("X-Request-Id", id)
	}
	req := &request{agent: a, r: r}
	req.set.req = req
	rt := func() Route { return Route{Template: route} }
	req.routeFn.Store(&rt)
	ctx = context.WithValue(ctx, inputSetKey{}, &req.set)
	if traceparent != "" {
		h := http.Header{}
		h.Set(traceparentHeader, traceparent)
		if tracestate != "" {
			h.Set(tracestateHeader, tracestate)
		}
		if sc, ok := extractTrace(h); ok {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
			req.traceID = sc.TraceID().String()
		}
	}
	return req, ctx
}

// refuseCall reports a refused call or job and returns its error.
func (a *Agent) refuseCall(ctx context.Context, req *request, kind Kind, decisionID, reason string) error {
	ev := Event{ID: newID(), Time: time.Now().UTC(), Service: a.service, Kind: kind, Action: ActionBlocked,
		Reason: truncate(reason, MaxEventDetail), Sink: "rampart.StartCall", Decision: decisionID}
	if req.r.Method == jobMethod {
		ev.Sink = "rampart.StartJob"
	}
	req.describe(&ev)
	a.enqueue(ev)
	return &BlockedError{Event: ev}
}

// applyDecisions records the verified actor of a call or job, and refuses
// it when a decision about the actor does, as the Handler does a request
// with method.
func (a *Agent) applyDecisions(ctx context.Context, req *request, act actor.Actor, token, method string, sensitive func() bool) (context.Context, error) {
	z := a.zt
	req.actor, req.actorToken = &act, token
	ctx = actor.NewTokenContext(actor.NewContext(ctx, act), token)
	sub := decision.Subject{IP: act.IP, User: act.User, Session: act.Session}
	set, now := z.decisions.Load(), time.Now()
	var d decision.Decision
	var refused bool
	if z.readOnlyAtQuery {
		d, refused = set.Blocking(sub, sensitive, now)
	} else {
		d, refused = set.Refusal(sub, method, sensitive, now)
	}
	if refused {
		return nil, a.refuseCall(ctx, req, KindDecisionEnforced, d.ID, fmt.Sprintf("%s decision %s on %s %s (%s)", d.Action, d.ID, d.Scope, d.Value, d.Reason))
	}
	if set.Len() > 0 {
		if d, ok := set.ReadOnly(sub, now); ok {
			req.readOnly = d.ID
		}
	}
	return ctx, nil
}

// AddInputs records ins as untrusted inputs of the request, call or job
// that ctx belongs to, after those already known, for values that arrive
// while it is served: the messages of a gRPC stream, as contrib/grpc does.
// Each value is read as a request's values are (JSON or an encoding nested
// in it is decoded). Past Config.MaxInputs the request is incomplete, and
// its guarded calls fail closed (see CheckInputsComplete). It reports
// whether ctx belongs to one that can record more: false tells a caller
// feeding values one batch at a time that it may stop.
func AddInputs(ctx context.Context, ins ...Input) bool {
	req := requestFor(ctx)
	if req == nil {
		return false
	}
	req.added.Lock()
	defer req.added.Unlock()
	c := &req.added.c
	if c.truncated != "" {
		return false
	}
	c.max = req.agent.maxInputs
	for _, in := range ins {
		if !c.add(in.Source, in.Name, in.Value, 0) {
			break
		}
	}
	return c.truncated == ""
}

// addedInputs are the inputs of AddInputs: one collector for the whole
// request, so that values are deduplicated across calls and the cap
// counts them all.
type addedInputs struct {
	sync.Mutex
	c collector
}

func (q *request) addedInputs() ([]Input, string) {
	q.added.Lock()
	defer q.added.Unlock()
	ins := q.added.c.ins
	return ins[:len(ins):len(ins)], q.added.c.truncated
}

// CallBlocked returns the error of the first call a guard blocked while
// serving the request, call or job of ctx, nil if none was. A transport
// other than net/http (gRPC) answers with a refusal when it is not nil,
// whatever the handler returned, as the Handler answers 403.
func CallBlocked(ctx context.Context) error {
	req := requestFor(ctx)
	if req == nil {
		return nil
	}
	if be := req.blocked.Load(); be != nil {
		return be
	}
	return nil
}

// RequestID returns the request id of the request, call or job of ctx
// (the one its events carry), "" if ctx belongs to none.
func RequestID(ctx context.Context) string {
	req := requestFor(ctx)
	if req == nil {
		return ""
	}
	return req.requestID()
}
