package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/ca"
)

// workloadAPI is a SPIFFE Workload API server, as a SPIRE agent runs one,
// handing out one SVID issued by authority.
type workloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	resp *workload.X509SVIDResponse
}

func (w *workloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
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
// its address.
func startWorkloadAPI(t *testing.T, authority *ca.CA, service string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	chain, err := authority.SignCSR(csr, service, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	var certs []byte
	for _, c := range chain {
		certs = append(certs, c.Raw...)
	}
	id, _ := identity.ServiceID(authority.TrustDomain(), service)
	api := &workloadAPI{resp: &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
		SpiffeId: id.String(), X509Svid: certs, X509SvidKey: keyDER, Bundle: authority.Certificate().Raw,
	}}}}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, api)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return "unix://" + sock
}

// A deployment that runs SPIRE gets its identities from the Workload API;
// from there on the code path is the one of Join.
func TestWorkloadAPIIdentitiesTalkOverMutualTLS(t *testing.T) {
	authority, err := ca.Generate(spiffeid.RequireTrustDomainFromString("spire.example"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]identity.Source{}
	for _, name := range []string{"orders", "web"} {
		src, err := identity.FromWorkloadAPI(t.Context(), startWorkloadAPI(t, authority, name))
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
	ordersID, _ := identity.ServiceID(sources["web"].TrustDomain(), "orders")
	got, err := call(sources["web"], url, ordersID)
	if err != nil || got != "spiffe://spire.example/svc/web" {
		t.Fatalf("web → orders with Workload API SVIDs: %q, %v", got, err)
	}
	webID, _ := identity.ServiceID(sources["web"].TrustDomain(), "web")
	if _, err := call(sources["web"], url, webID); err == nil {
		t.Fatal("a client expecting web accepted orders")
	}
}
