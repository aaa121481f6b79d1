package control_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
)

// initDir makes a data directory as 'rampart init' does.
func initDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := control.Init(t.Context(), dir, "rampart.test"); err != nil {
		t.Fatal(err)
	}
	return dir
}

func trusting(t *testing.T, dir string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, control.CADir, ca.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

func TestServerServesUntilShutdownThenReleasesItsStore(t *testing.T) {
	dir := initDir(t)
	client := trusting(t, dir)
	for range 2 { // the second start proves the first released the store and the port
		srv, err := control.StartServer(t.Context(), control.ServerConfig{Dir: dir, Addr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		if srv.URL() != "https://"+srv.Addr() || srv.TrustDomain().Name() != "rampart.test" {
			t.Errorf("URL %s, address %s, trust domain %s", srv.URL(), srv.Addr(), srv.TrustDomain())
		}
		resp, err := client.Get(srv.URL() + "/v1/bundle")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /v1/bundle: %s", resp.Status)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		cancel()
		select {
		case <-srv.Done():
		default:
			t.Error("Done is open after Shutdown")
		}
		if srv.Err() != nil {
			t.Errorf("Err after Shutdown: %v", srv.Err())
		}
		// Not a bare dial: once freed, the port may go to another test's
		// listener at once. Only this server answers with this CA's
		// certificate.
		client.CloseIdleConnections()
		if resp, err := client.Get(srv.URL() + "/v1/bundle"); err == nil {
			resp.Body.Close()
			t.Errorf("%s still serves after Shutdown", srv.Addr())
		}
		srv.Close() // after Shutdown: harmless
	}
}

func TestStartServerFailsCleanly(t *testing.T) {
	dir := initDir(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, err := control.StartServer(t.Context(), control.ServerConfig{Dir: dir, Addr: taken.Addr().String()}); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("StartServer on a taken address: %v", err)
	}
	// The failed start closed the store: the directory opens again.
	srv, err := control.StartServer(t.Context(), control.ServerConfig{Dir: dir, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("StartServer after a failed start: %v", err)
	}
	srv.Close()
	if _, err := control.StartServer(t.Context(), control.ServerConfig{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "rampart init") {
		t.Errorf("StartServer on an empty directory: %v", err)
	}
}

func ExampleStartServer() {
	dir, _ := os.MkdirTemp("", "rampart")
	defer os.RemoveAll(dir)
	// Init returns the admin token, to show the operator once.
	if _, err := control.Init(context.Background(), dir, "example.org"); err != nil {
		log.Fatal(err)
	}
	srv, err := control.StartServer(context.Background(), control.ServerConfig{Dir: dir, Addr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	fmt.Println(strings.HasPrefix(srv.URL(), "https://127.0.0.1:"), srv.TrustDomain().Name())
	// Output: true example.org
}
