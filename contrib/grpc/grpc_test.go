package rampartgrpc_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	rampartgrpc "github.com/rampartsec/rampart/contrib/grpc"
	pb "github.com/rampartsec/rampart/contrib/grpc/internal/usersv1"
	"github.com/rampartsec/rampart/internal/contribtest"
	"github.com/rampartsec/rampart/ramparttest"
)

const (
	findMethod   = "/rampart.test.users.v1.Directory/Find"
	renameMethod = "/rampart.test.users.v1.Directory/Rename"
)

// The policy: web may call the directory's methods but Purge; no one else
// may call users.
const policy = `
services:
  users:
    allow:
      - callers: [web]
        methods: [POST]
        paths: ["/rampart.test.users.v1.Directory/Find", "/rampart.test.users.v1.Directory/Rename", "/rampart.test.users.v1.Directory/RenameMany"]
`

var mallory = actor.Actor{IP: netip.MustParseAddr("203.0.113.9"), User: "mallory"}

// directory is the vulnerable service: it concatenates request fields into
// its SQL.
type directory struct {
	pb.UnimplementedDirectoryServer
	db   contribtest.DB
	seen func(ctx context.Context) // called with each call's context, if set
}

func (d *directory) names(ctx context.Context, name string) (*pb.Users, error) {
	if d.seen != nil {
		d.seen(ctx)
	}
	names, err := d.db.UsersNamed(ctx, name)
	if err != nil {
		// Handlers lose the error's chain, as real ones do; the
		// interceptor answers for the blocked call all the same.
		return nil, status.Error(codes.Internal, "lookup failed")
	}
	return &pb.Users{Names: names}, nil
}

func (d *directory) Find(ctx context.Context, r *pb.FindRequest) (*pb.Users, error) {
	return d.names(ctx, r.GetName())
}

func (d *directory) Rename(ctx context.Context, r *pb.RenameRequest) (*pb.Users, error) {
	return d.names(ctx, r.GetProfile().GetManager().GetName())
}

func (d *directory) Purge(ctx context.Context, r *pb.FindRequest) (*pb.Users, error) {
	return d.names(ctx, r.GetName())
}

func (d *directory) RenameMany(s grpc.ClientStreamingServer[pb.RenameRequest, pb.Users]) error {
	out := &pb.Users{}
	for {
		r, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(out)
		}
		if err != nil {
			return err
		}
		u, err := d.names(s.Context(), r.GetProfile().GetName())
		if err != nil {
			return err
		}
		out.Names = append(out.Names, u.Names...)
	}
}

// serve runs the directory on 127.0.0.1 with opts and returns its address.
func serve(t *testing.T, d *directory, opts ...grpc.ServerOption) string {
	t.Helper()
	return serveDirectory(t, d, opts...)
}

func serveDirectory(t testing.TB, d pb.DirectoryServer, opts ...grpc.ServerOption) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	pb.RegisterDirectoryServer(srv, d)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

type meshFixture struct {
	m       *contribtest.Mesh
	addr    string
	web     pb.DirectoryClient
	webID   string
	token   string
	handled atomic.Int32
}

// startMesh runs users (the directory, protected) and web (its client).
func startMesh(t *testing.T) *meshFixture {
	t.Helper()
	m := contribtest.StartMesh(t, "users", policy, rampart.Config{})
	f := &meshFixture{m: m}
	d := &directory{db: contribtest.SQLite(t, m.Agent), seen: func(context.Context) { f.handled.Add(1) }}
	f.addr = serve(t, d, rampartgrpc.ServerOptions(m.Agent)...)
	web, _ := m.StartAgent(t, "web", rampart.Config{})
	f.web = pb.NewDirectoryClient(dial(t, web, "users", f.addr))
	f.token = m.Token(t, mallory, time.Time{}, 0, "web")
	return f
}

func dial(t *testing.T, a *rampart.Agent, service, addr string) *grpc.ClientConn {
	t.Helper()
	opts, err := rampartgrpc.DialOptions(a, service)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// actorContext is the context of web's handler for mallory's request.
func (f *meshFixture) actorContext() context.Context {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: [16]byte{0x4b, 0xf9}, SpanID: [8]byte{7}, TraceFlags: trace.FlagsSampled})
	return trace.ContextWithRemoteSpanContext(actor.NewTokenContext(context.Background(), f.token), sc)
}

func TestAnInjectionInANestedFieldIsBlockedWithTheActorNamed(t *testing.T) {
	f := startMesh(t)
	_, err := f.web.Rename(f.actorContext(), &pb.RenameRequest{Profile: &pb.Profile{Name: "alice", Manager: &pb.Profile{Name: contribtest.Injection}}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("injected Rename = %v, want PermissionDenied", err)
	}
	ev := f.m.Events.Wait(t, ramparttest.Want{Kind: rampart.KindSQLInjection}.Match)
	want := ramparttest.Want{Kind: rampart.KindSQLInjection, Action: rampart.ActionBlocked, Route: renameMethod,
		Input: rampart.Input{Source: rampartgrpc.Source, Name: "profile.manager.name", Value: contribtest.Injection}}
	if d := want.Diff(ev); d != "" {
		t.Error(d)
	}
	if ev.ActorIP != "203.0.113.9" || ev.ActorUser != "mallory" || ev.TraceID != "4bf90000000000000000000000000000" || ev.Caller != "spiffe://example.org/svc/web" {
		t.Errorf("event actor %q/%q trace %q caller %q; want mallory's, web's trace and web", ev.ActorIP, ev.ActorUser, ev.TraceID, ev.Caller)
	}
	got, err := f.web.Rename(f.actorContext(), &pb.RenameRequest{Profile: &pb.Profile{Manager: &pb.Profile{Name: "bob"}}})
	if err != nil || !slices.Equal(got.GetNames(), []string{"bob"}) {
		t.Errorf("benign Rename = %v, %v; want [bob]", got.GetNames(), err)
	}
	f.m.WaitRoute(t, renameMethod) // the full method is the route in the inventory
}

func TestAStreamedMessageIsAnInputWhenItArrives(t *testing.T) {
	f := startMesh(t)
	s, err := f.web.RenameMany(f.actorContext())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", contribtest.Injection} {
		if err := s.Send(&pb.RenameRequest{Profile: &pb.Profile{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CloseAndRecv(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stream with an injected second message = %v, want PermissionDenied", err)
	}
	want := ramparttest.Want{Kind: rampart.KindSQLInjection, Route: "/rampart.test.users.v1.Directory/RenameMany",
		Input: rampart.Input{Source: rampartgrpc.Source, Name: "profile.name", Value: contribtest.Injection}}
	f.m.Events.Wait(t, want.Match)
}

func TestCallersThePolicyDoesNotAllowAreRefused(t *testing.T) {
	f := startMesh(t)
	// web, on a method the policy does not give it.
	_, err := f.web.Purge(f.actorContext(), &pb.FindRequest{Name: "alice"})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("web's Purge = %v, want PermissionDenied", err)
	}
	ev := f.m.Events.Wait(t, ramparttest.Want{Kind: rampart.KindAuthzDenied}.Match)
	if ev.Route != "/rampart.test.users.v1.Directory/Purge" || ev.Caller != "spiffe://example.org/svc/web" {
		t.Errorf("authz event route %q caller %q", ev.Route, ev.Caller)
	}
	// A member of the mesh the policy does not name.
	intruder, _ := f.m.StartAgent(t, "intruder", rampart.Config{})
	_, err = pb.NewDirectoryClient(dial(t, intruder, "users", f.addr)).Find(context.Background(), &pb.FindRequest{Name: "alice"})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("intruder's Find = %v, want PermissionDenied", err)
	}
	// A client without an SVID does not get past the handshake.
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pb.NewDirectoryClient(conn).Find(context.Background(), &pb.FindRequest{Name: "alice"}); status.Code(err) != codes.Unavailable {
		t.Errorf("a client without an SVID = %v, want Unavailable (handshake refused)", err)
	}
	// A client that expects another server's SPIFFE ID refuses this one.
	web2, _ := f.m.StartAgent(t, "web", rampart.Config{})
	_, err = pb.NewDirectoryClient(dial(t, web2, "orders", f.addr)).Find(f.actorContext(), &pb.FindRequest{Name: "alice"})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("a client expecting orders = %v, want Unavailable (server refused)", err)
	}
	if n := f.handled.Load(); n != 0 {
		t.Errorf("the handler ran %d times for refused calls", n)
	}
}

func TestABlockedActorIsRefusedAndAnInvalidTokenUnauthenticated(t *testing.T) {
	f := startMesh(t)
	if _, err := f.web.Find(f.actorContext(), &pb.FindRequest{Name: "alice"}); err != nil {
		t.Fatalf("allowed Find = %v", err)
	}
	forged := actor.NewTokenContext(context.Background(), f.token[:len(f.token)-4]+"AAAA")
	if _, err := f.web.Find(forged, &pb.FindRequest{Name: "alice"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Find with a forged token = %v, want Unauthenticated", err)
	}
	id := f.m.Block(t, "203.0.113.9")
	var err error
	contribtest.Eventually(t, "the block decision refusing mallory", func() bool {
		_, err = f.web.Find(f.actorContext(), &pb.FindRequest{Name: "alice"})
		return err != nil
	})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("blocked actor's Find = %v, want PermissionDenied", err)
	}
	ev := f.m.Events.Wait(t, ramparttest.Want{Kind: rampart.KindDecisionEnforced}.Match)
	if ev.Decision != id || ev.Route != findMethod {
		t.Errorf("decision event %+v", ev)
	}
}

// Without an identity (no mesh), the interceptors still record every
// string and bytes field, nested, repeated and in maps, and the metadata,
// in field-number and key order, the same every time.
func TestEveryStringAndBytesFieldIsAnInput(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	var got []rampart.Input
	d := &directory{db: contribtest.SQLite(t, a), seen: func(ctx context.Context) {
		for in := range rampart.Inputs(ctx) {
			if in.Source == rampartgrpc.Source || in.Name == "x-tenant" {
				got = append(got, in)
			}
		}
	}}
	addr := serve(t, d, rampartgrpc.ServerOptions(a)...)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-tenant", "acme'--")
	_, err = pb.NewDirectoryClient(conn).Rename(ctx, &pb.RenameRequest{
		Profile: &pb.Profile{
			Name: "zed", Tags: []string{"t1", "t2"}, Labels: map[string]string{"team": "red", "area": "north"}, Note: []byte("n o t e"),
			Manager: &pb.Profile{Name: "boss"},
		},
		NewName: "zee", Version: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []rampart.Input{
		{Source: rampart.SourceHeader, Name: "x-tenant", Value: "acme'--"},
		{Source: rampartgrpc.Source, Name: "profile.name", Value: "zed"},
		{Source: rampartgrpc.Source, Name: "profile.tags", Value: "t1"},
		{Source: rampartgrpc.Source, Name: "profile.tags", Value: "t2"},
		{Source: rampartgrpc.Source, Name: "profile.labels", Value: "area"},
		{Source: rampartgrpc.Source, Name: "profile.labels", Value: "north"},
		{Source: rampartgrpc.Source, Name: "profile.labels", Value: "team"},
		{Source: rampartgrpc.Source, Name: "profile.labels", Value: "red"},
		{Source: rampartgrpc.Source, Name: "profile.note", Value: "n o t e"},
		{Source: rampartgrpc.Source, Name: "profile.manager.name", Value: "boss"},
		{Source: rampartgrpc.Source, Name: "new_name", Value: "zee"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("inputs\n%+v\nwant\n%+v", got, want)
	}
}

// A message with more string values than Config.MaxInputs makes the
// call's guarded calls fail closed.
func TestAMessagePastTheCapFailsClosed(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{MaxInputs: 100})
	addr := serve(t, &directory{db: contribtest.SQLite(t, a)}, rampartgrpc.ServerOptions(a)...)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tags := make([]string, 500)
	for i := range tags {
		tags[i] = "tag" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	_, err = pb.NewDirectoryClient(conn).Rename(context.Background(), &pb.RenameRequest{Profile: &pb.Profile{Tags: tags, Manager: &pb.Profile{Name: "alice"}}})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("Rename with 500 tags under a cap of 100 = %v, want PermissionDenied", err)
	}
}

// A stream's values add up past the SDK's first dedup stage (256 values)
// over several messages: every message is still recorded, and the call
// served.
func TestALongStreamIsRecordedMessageByMessage(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	addr := serve(t, &directory{db: contribtest.SQLite(t, a)}, rampartgrpc.ServerOptions(a)...)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := pb.NewDirectoryClient(conn).RenameMany(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		tags := make([]string, 50)
		for j := range tags {
			tags[j] = fmt.Sprintf("m%d-tag%d", i, j)
		}
		if err := s.Send(&pb.RenameRequest{Profile: &pb.Profile{Name: "alice", Tags: tags}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.CloseAndRecv()
	if err != nil || len(got.GetNames()) != 8 {
		t.Errorf("a stream of 8 messages with 400 values = %v, %v; want alice 8 times", got.GetNames(), err)
	}
}
