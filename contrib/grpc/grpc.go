// Package rampartgrpc protects gRPC services (google.golang.org/grpc) with
// Rampart, and makes gRPC clients members of its mesh.
//
// A server, with its interceptors and the agent's mTLS credentials:
//
//	srv := grpc.NewServer(rampartgrpc.ServerOptions(agent)...)
//
// Each call is admitted by agent.StartCall: with an identity, the caller's
// SVID, the policy (a gRPC method is "POST /<package>.<Service>/<Method>",
// so the policy names methods beside HTTP routes: paths:
// ["/shop.v1.Orders/Get"] or the whole service "/shop.v1.Orders/"), the
// actor token and trace context from the metadata (rampart-actor,
// traceparent), and the decisions about the actor. Every string and bytes
// field of each request message is an input of source "grpc", named by its
// field path ("profile.manager.name"), found through protobuf reflection
// in nested messages, repeated fields and maps (keys and values), as are
// the text values of the metadata; past Config.MaxInputs the call's
// guarded calls fail closed. The full method is the route in events and
// the inventory. Refusals are status codes, with the request id in the
// message and the event kind in the trailer rampart-refusal:
//
//   - Unauthenticated: no SVID of the trust domain, a revoked caller, an
//     actor token missing where the policy requires one, or refused;
//   - PermissionDenied: a caller the policy does not allow on the method,
//     a decision about the actor, or a guarded call blocked (whatever the
//     handler returned, as agent.Handler answers 403);
//   - Unavailable: the agent is waiting for its policy.
//
// A client of another mesh service:
//
//	opts, err := rampartgrpc.DialOptions(agent, "users")
//	conn, err := grpc.NewClient(addr, opts...)
//
// presents the service's SVID, accepts only the server's SPIFFE ID
// (spiffe://<trust domain>/svc/users), and forwards the actor token and
// trace context of each call's context.
package rampartgrpc

import (
	"context"
	"errors"
	"maps"
	"net"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
)

// Source is the source of a gRPC call's inputs in events.
const Source rampart.Source = "grpc"

// actorKey is actor.Header as gRPC metadata keys are written: lower case.
var actorKey = strings.ToLower(actor.Header)

// ServerOptions returns the options that protect a gRPC server with
// agent: with Config.Identity, the agent's mTLS credentials
// (agent.ServerTLSConfig), and the unary and stream interceptors.
func ServerOptions(agent *rampart.Agent) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(UnaryServerInterceptor(agent)),
		grpc.ChainStreamInterceptor(StreamServerInterceptor(agent)),
	}
	if tc := agent.ServerTLSConfig(); tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	return opts
}

// UnaryServerInterceptor returns the interceptor that admits each unary
// call with agent and records its request message as inputs.
func UnaryServerInterceptor(agent *rampart.Agent) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := start(ctx, agent, info.FullMethod)
		if err != nil {
			return nil, err
		}
		if m, ok := req.(proto.Message); ok {
			addMessage(ctx, m)
		}
		resp, err := handler(ctx, req)
		if blocked := rampart.CallBlocked(ctx); blocked != nil {
			return nil, refusal(ctx, blocked)
		}
		return resp, err
	}
}

// StreamServerInterceptor returns the interceptor that admits each
// streaming call with agent and records each message it receives as
// inputs, as it arrives.
func StreamServerInterceptor(agent *rampart.Agent) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := start(ss.Context(), agent, info.FullMethod)
		if err != nil {
			return err
		}
		err = handler(srv, &stream{ServerStream: ss, ctx: ctx})
		if blocked := rampart.CallBlocked(ctx); blocked != nil {
			return refusal(ctx, blocked)
		}
		return err
	}
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

func (s *stream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		if pm, ok := m.(proto.Message); ok {
			addMessage(s.ctx, pm)
		}
	}
	return err
}

// start admits the call and records its metadata as inputs.
func start(ctx context.Context, agent *rampart.Agent, fullMethod string) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	call := rampart.Call{
		Method: "POST", Path: fullMethod, ID: first("x-request-id"),
		ActorToken: first(actorKey), Traceparent: first("traceparent"), Tracestate: first("tracestate"),
	}
	if p, ok := peer.FromContext(ctx); ok {
		if p.Addr != nil {
			call.RemoteAddr = p.Addr.String()
		}
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			call.PeerCertificates = ti.State.PeerCertificates
		}
	}
	ctx, err := agent.StartCall(ctx, call)
	if err != nil {
		return nil, refusal(context.Background(), err)
	}
	var ins []rampart.Input
	for _, k := range slices.Sorted(maps.Keys(md)) { // an order that is the same every time
		vs := md[k]
		// The actor token verified, the trace context parsed, gRPC's own
		// fields and binary values are not text an application reads.
		if k == actorKey || k == "traceparent" || strings.HasPrefix(k, "grpc-") || strings.HasPrefix(k, ":") || strings.HasSuffix(k, "-bin") {
			continue
		}
		for _, v := range vs {
			ins = append(ins, rampart.Input{Source: rampart.SourceHeader, Name: k, Value: v})
		}
	}
	rampart.AddInputs(ctx, ins...)
	return ctx, nil
}

// refusal is the status of a refused call.
func refusal(ctx context.Context, err error) error {
	if errors.Is(err, rampart.ErrNotReady) {
		return status.Error(codes.Unavailable, "service not ready: waiting for its policy from the control plane")
	}
	var be *rampart.BlockedError
	if !errors.As(err, &be) {
		return status.Error(codes.Internal, err.Error())
	}
	code, msg := codes.PermissionDenied, be.Event.Reason
	switch be.Event.Kind {
	case rampart.KindMTLSRefused, rampart.KindActorMissing, rampart.KindActorInvalid:
		code = codes.Unauthenticated
	case rampart.KindAuthzDenied, rampart.KindDecisionEnforced:
	default:
		msg = "request blocked by Rampart: a security policy was violated"
	}
	_ = grpc.SetTrailer(ctx, metadata.Pairs("rampart-refusal", string(be.Event.Kind), "x-request-id", be.Event.RequestID))
	return status.Errorf(code, "%s (request id %s)", msg, be.Event.RequestID)
}

// addMessage records every string and bytes field of m as an input, in
// field order, a batch at a time, until the call can record no more.
func addMessage(ctx context.Context, m proto.Message) {
	w := walker{ctx: ctx, batch: make([]rampart.Input, 0, 64)}
	if w.message(m.ProtoReflect(), "") {
		w.flush()
	}
}

type walker struct {
	ctx   context.Context
	batch []rampart.Input
}

// add queues one value; it returns false once the call records no more.
func (w *walker) add(name, value string) bool {
	if value == "" {
		return true
	}
	w.batch = append(w.batch, rampart.Input{Source: Source, Name: name, Value: value})
	if len(w.batch) == cap(w.batch) {
		return w.flush()
	}
	return true
}

func (w *walker) flush() bool {
	ok := rampart.AddInputs(w.ctx, w.batch...)
	w.batch = w.batch[:0]
	return ok
}

// message walks m's populated fields in field-number order, and a map's
// entries in key order, so that which values fit under the cap is the
// same every time (protoreflect's Range has no defined order).
func (w *walker) message(m protoreflect.Message, prefix string) bool {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		name := string(fd.Name())
		if prefix != "" {
			name = prefix + "." + name
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				if !w.value(fd, name, l.Get(i)) {
					return false
				}
			}
		case fd.IsMap():
			mv := v.Map()
			keys := make([]protoreflect.MapKey, 0, mv.Len())
			mv.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				if !w.add(name, k.String()) || !w.value(fd.MapValue(), name, mv.Get(k)) {
					return false
				}
			}
		default:
			if !w.value(fd, name, v) {
				return false
			}
		}
	}
	return true
}

func (w *walker) value(fd protoreflect.FieldDescriptor, name string, v protoreflect.Value) bool {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return w.add(name, v.String())
	case protoreflect.BytesKind:
		return w.add(name, string(v.Bytes()))
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return w.message(v.Message(), name)
	}
	return true
}

// DialOptions returns the options that make a gRPC client a member of
// agent's mesh calling service: transport credentials that present the
// agent's SVID and accept only spiffe://<trust domain>/svc/<service>, a
// dialer that refuses a revoked server, and interceptors that forward the
// actor token and W3C trace context of each call's context. It needs
// Config.Identity.
func DialOptions(agent *rampart.Agent, service string) ([]grpc.DialOption, error) {
	tr, err := agent.MeshTransport(service)
	if err != nil {
		return nil, err
	}
	dial := tr.DialContext
	return []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(tr.TLSClientConfig)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dial(ctx, "tcp", addr) }),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(propagate(ctx), method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(propagate(ctx), desc, cc, method, opts...)
		}),
	}, nil
}

// propagate puts the actor token and trace context of ctx in its outgoing
// metadata, replacing any the code set: code cannot speak for another
// actor.
func propagate(ctx context.Context) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	md.Delete(actorKey)
	md.Delete("traceparent")
	md.Delete("tracestate")
	for k, v := range rampart.PropagationHeaders(ctx) {
		md.Set(strings.ToLower(k), v)
	}
	return metadata.NewOutgoingContext(ctx, md)
}
