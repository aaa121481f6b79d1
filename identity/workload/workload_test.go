package workload_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/identity/workload"
	"github.com/rampartsec/rampart/internal/ca"
)

// workloadAPI is a SPIFFE Workload API server, as a SPIRE agent runs one,
// handing out one SVID issued by authority.
type workloadAPI struct {
	workloadpb.UnimplementedSpiffeWorkloadAPIServer
	resp *workloadpb.X509SVIDResponse
}

func (w *workloadAPI) FetchX509SVID(_ *workloadpb.X509SVIDRequest, stream grpc.ServerStreamingServer[workloadpb.X509SVIDResponse]) error {
	// The Workload API requires this header, so that a workload cannot be
	// tricked into calling it from a browser.
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "missing security header")
	}
	if err := stream.Send(w.resp); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

// startWorkloadAPI serves an SVID for service on a Unix socket and returns
// its address and the server, stopped when the test ends.
func startWorkloadAPI(t *testing.T, authority *ca.CA, service string) (string, *grpc.Server) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := authority.SignCSR(csr, service, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var certs []byte
	for _, c := range chain {
		certs = append(certs, c.Raw...)
	}
	id, err := identity.ServiceID(authority.TrustDomain(), service)
	if err != nil {
		t.Fatal(err)
	}
	api := &workloadAPI{resp: &workloadpb.X509SVIDResponse{Svids: []*workloadpb.X509SVID{{
		SpiffeId: id.String(), X509Svid: certs, X509SvidKey: keyDER, Bundle: authority.Certificate().Raw,
	}}}}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	workloadpb.RegisterSpiffeWorkloadAPIServer(srv, api)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return "unix://" + sock, srv
}

// serve runs an HTTPS server with src's identity that answers with the
// caller's SPIFFE ID.
func serve(t *testing.T, src identity.Source) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: identity.ServerTLSConfig(src),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			io.WriteString(w, id.String())
		}),
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func call(src identity.Source, url string, server spiffeid.ID) (string, error) {
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: identity.ClientTLSConfig(src, server)}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func newAuthority(t *testing.T) *ca.CA {
	t.Helper()
	authority, err := ca.Generate(spiffeid.RequireTrustDomainFromString("spire.example"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return authority
}

// A deployment that runs SPIRE gets its identities from the Workload API;
// from there on the code path is the one of Join.
func TestWorkloadAPIIdentitiesTalkOverMutualTLS(t *testing.T) {
	authority := newAuthority(t)
	sources := map[string]identity.Source{}
	for _, name := range []string{"orders", "web"} {
		addr, _ := startWorkloadAPI(t, authority, name)
		src, err := workload.NewSource(t.Context(), workload.Config{Addr: addr, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		sources[name] = src
	}
	if td := sources["orders"].TrustDomain().Name(); td != "spire.example" {
		t.Fatalf("trust domain %q", td)
	}
	url := serve(t, sources["orders"])
	ordersID, err := identity.ServiceID(sources["web"].TrustDomain(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	got, err := call(sources["web"], url, ordersID)
	if err != nil || got != "spiffe://spire.example/svc/web" {
		t.Fatalf("web → orders with Workload API SVIDs: %q, %v", got, err)
	}
	webID, err := identity.ServiceID(sources["web"].TrustDomain(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call(sources["web"], url, webID); err == nil {
		t.Fatal("a client expecting web accepted orders")
	}
}

// recorder is a slog.Handler that keeps the messages it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}

func (r *recorder) find(substr string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, substr) {
			return m, true
		}
	}
	return "", false
}

// When the agent goes away the SVID is no longer renewed: the service's
// own logger must hear of it, not a logger nobody reads.
func TestLostWorkloadAPIIsLoggedToTheConfiguredLogger(t *testing.T) {
	addr, srv := startWorkloadAPI(t, newAuthority(t), "orders")
	rec := &recorder{}
	src, err := workload.NewSource(t.Context(), workload.Config{Addr: addr, Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srv.Stop()
	deadline := time.Now().Add(time.Minute)
	for {
		if msg, ok := rec.find("Failed to watch the Workload API"); ok {
			if !strings.HasPrefix(msg, "ERROR rampart: workload API: ") {
				t.Fatalf("logged as %q", msg)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no watch failure logged in a minute; got %q", rec.msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewSourceFailsWhenNoAgentAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	addr := "unix://" + filepath.Join(t.TempDir(), "nobody.sock")
	src, err := workload.NewSource(ctx, workload.Config{Addr: addr, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		src.Close()
		t.Fatal("NewSource returned a Source with no agent behind it")
	}
	if !strings.HasPrefix(err.Error(), "workload: ") {
		t.Fatalf("error %q does not say where it came from", err)
	}
}
