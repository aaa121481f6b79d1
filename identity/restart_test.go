package identity_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// These tests run services as real processes: the test binary started
// again with RAMPART_TEST_SERVICE set runs serviceMain, a service that
// joins (or renews with what it saved), serves mutual TLS on 127.0.0.1 and
// prints its address; the tests kill it with SIGKILL and start it again,
// with no admin action in between.

func TestMain(m *testing.M) {
	if os.Getenv("RAMPART_TEST_SERVICE") != "" {
		os.Exit(serviceMain())
	}
	os.Exit(m.Run())
}

// serviceMain is a service's main: its configuration comes from the
// environment, as a deployment would give it. A failure to start is one
// line on stderr and exit status 1.
func serviceMain() int {
	bundle, err := os.ReadFile(os.Getenv("RAMPART_TEST_BUNDLE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := identity.Join(context.Background(), identity.JoinConfig{
		ControlPlane:       os.Getenv("RAMPART_TEST_CONTROL_PLANE"),
		ControlPlaneBundle: bundle,
		Service:            os.Getenv("RAMPART_TEST_SERVICE"),
		Token:              os.Getenv("RAMPART_JOIN_TOKEN"),
		Dir:                os.Getenv("RAMPART_TEST_DIR"),
		RetryInterval:      200 * time.Millisecond,
		Logger:             log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		return 1
	}
	fmt.Printf("serving https://%s\n", ln.Addr())
	srv := &http.Server{
		TLSConfig: identity.ServerTLSConfig(src),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
			io.WriteString(w, id.String())
		}),
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintln(os.Stderr, "service: serve:", srv.ServeTLS(ln, "", ""))
	return 1
}

// service is a serviceMain process.
type service struct {
	cmd    *exec.Cmd
	url    string // "" if it did not start
	stderr *lockedBuffer
	urls   chan string
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startService starts serviceMain as name with its state in dir, and
// waits (up to a minute) until it serves or exits.
func startService(t *testing.T, cp *controltest.ControlPlane, name, token, dir string) *service {
	t.Helper()
	s := launchService(t, cp, name, token, dir)
	s.wait(t)
	return s
}

// launchService starts serviceMain as name with its state in dir; wait
// waits until it serves or exits.
func launchService(t *testing.T, cp *controltest.ControlPlane, name, token, dir string) *service {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(bundle, cp.BundlePEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"RAMPART_TEST_SERVICE="+name, "RAMPART_TEST_CONTROL_PLANE="+cp.URL, "RAMPART_TEST_BUNDLE="+bundle,
		"RAMPART_JOIN_TOKEN="+token, "RAMPART_TEST_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &service{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.urls = make(chan string, 1)
	urls := s.urls
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "serving "); ok {
				urls <- u
			}
		}
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { s.kill(t) })
	return s
}

// wait waits (up to a minute) until the service serves or exits.
func (s *service) wait(t *testing.T) {
	t.Helper()
	select {
	case s.url = <-s.urls:
	case <-s.exited:
	case <-time.After(time.Minute):
		t.Fatalf("service neither served nor exited within a minute; stderr:\n%s", s.stderr)
	}
}

// kill sends SIGKILL to the process and waits for it to exit.
func (s *service) kill(t *testing.T) {
	t.Helper()
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Kill() // SIGKILL, to this process only
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		t.Errorf("process %d did not exit within a minute of SIGKILL", s.cmd.Process.Pid)
	}
}

// failure returns the one line a service that could not start printed as
// it exited with status 1.
func (s *service) failure(t *testing.T) string {
	t.Helper()
	if s.url != "" {
		t.Fatalf("the service started (%s), want it refused", s.url)
	}
	var ee *exec.ExitError
	if !errors.As(s.err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1; stderr:\n%s", s.err, s.stderr)
	}
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		if msg, ok := strings.CutPrefix(line, "service: "); ok {
			t.Logf("refused as it should be: %s", msg)
			return msg
		}
	}
	t.Fatalf("no error line on stderr:\n%s", s.stderr)
	return ""
}

// callService calls s as web over mutual TLS and returns the certificate
// s presented, which the handshake verified against the trust bundle.
func callService(t *testing.T, cp *controltest.ControlPlane, web *identity.CASource, s *service, name string) *x509.Certificate {
	t.Helper()
	if s.url == "" {
		t.Fatalf("service %s did not start: %v; stderr:\n%s", name, s.err, s.stderr)
	}
	id, _ := identity.ServiceID(cp.TrustDomain, name)
	tr := &http.Transport{TLSClientConfig: identity.ClientTLSConfig(web, id)}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(s.url)
	if err != nil {
		t.Fatalf("web → %s: %v; stderr:\n%s", name, err, s.stderr)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := "spiffe://example.org/svc/web"; string(body) != want {
		t.Fatalf("web → %s: %q, want %q", name, body, want)
	}
	return resp.TLS.PeerCertificates[0]
}

// backends runs fn against a control plane over SQLite and one over
// PostgreSQL (skipped without a server, except in CI).
func backends(t *testing.T, fn func(t *testing.T, cp *controltest.ControlPlane)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, controltest.Start(t, controltest.Config{}))
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := storetest.PostgresSchema(t, "rampart_identity_test_")
		fn(t, controltest.Start(t, controltest.Config{PostgresDSN: dsn}))
	})
}

// tokens lists the join tokens of service, used up ones included.
func tokens(t *testing.T, cp *controltest.ControlPlane, service string) control.TokenList {
	t.Helper()
	var list control.TokenList
	cp.MustDo(t, http.MethodGet, "/v1/tokens?all=true&service="+service, nil, http.StatusOK, &list)
	return list
}

// wantNoKeyMaterial fails if text shows a private key of dir's SVID file.
func wantNoKeyMaterial(t *testing.T, text, dir string) {
	t.Helper()
	if strings.Contains(text, "PRIVATE KEY") {
		t.Errorf("output shows a PEM private key:\n%s", text)
	}
	data, err := os.ReadFile(filepath.Join(dir, identity.SVIDFile))
	if err != nil {
		return
	}
	if b, _ := pem.Decode(data); b != nil && b.Type == "PRIVATE KEY" {
		enc := strings.Join(strings.Fields(string(pem.EncodeToMemory(b))), "")
		enc = strings.TrimSuffix(strings.TrimPrefix(enc, "-----BEGINPRIVATEKEY-----"), "-----ENDPRIVATEKEY-----")
		if len(enc) > 40 && strings.Contains(strings.Join(strings.Fields(text), ""), enc[10:40]) {
			t.Errorf("output shows the private key's bytes:\n%s", text)
		}
	}
}

func TestAKilledServiceComesBackFiveTimesWithoutAnAdmin(t *testing.T) {
	backends(t, func(t *testing.T, cp *controltest.ControlPlane) {
		web := cp.Join(t, "web")
		token := cp.JoinToken(t, "shop") // single use: spent by the first start
		dir := filepath.Join(t.TempDir(), "shop")
		var last *x509.Certificate
		for start := range 6 { // the first start, then 5 restarts
			began := time.Now()
			s := startService(t, cp, "shop", token, dir)
			t.Logf("start %d: serving %v after exec (a figure, not asserted)", start, time.Since(began).Round(time.Millisecond))
			cert := callService(t, cp, web, s, "shop")
			if last != nil && cert.SerialNumber.Cmp(last.SerialNumber) == 0 {
				t.Fatalf("start %d serves the SVID of the one before: it was not renewed", start)
			}
			if start > 0 && !strings.Contains(s.stderr.String(), "SVID renewed with the one saved before the restart") {
				t.Errorf("start %d did not say it renewed with the saved SVID; stderr:\n%s", start, s.stderr)
			}
			// What it serves is what it saved.
			saved, err := os.ReadFile(filepath.Join(dir, identity.SVIDFile))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(saved), strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))) {
				t.Fatalf("start %d serves a certificate that is not the one in %s", start, identity.SVIDFile)
			}
			for path, want := range map[string]os.FileMode{
				dir:                                     0o700 | os.ModeDir,
				filepath.Join(dir, identity.SVIDFile):   0o600,
				filepath.Join(dir, identity.BundleFile): 0o600,
			} {
				if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
					t.Fatalf("%s: %v, %v; want mode %v", path, fi.Mode(), err, want)
				}
			}
			wantNoKeyMaterial(t, s.stderr.String(), dir)
			s.kill(t)
			last = cert
		}
		// The restarts used no token: the one token was used once.
		if list := tokens(t, cp, "shop"); len(list.Tokens) != 1 || list.Tokens[0].UsesLeft != 0 || list.Tokens[0].Uses != 1 {
			t.Fatalf("tokens of shop after 6 starts: %+v", list.Tokens)
		}
	})
}

func TestAReplicaSetOfThreeJoinsWithOneTokenAndAFourthIsRefused(t *testing.T) {
	backends(t, func(t *testing.T, cp *controltest.ControlPlane) {
		web := cp.Join(t, "web")
		token := cp.JoinTokenUses(t, "shop", 3)
		base := t.TempDir()
		replicas := make([]*service, 3)
		for i := range replicas { // three processes join at once
			replicas[i] = launchService(t, cp, "shop", token, filepath.Join(base, fmt.Sprint("replica-", i)))
		}
		for _, r := range replicas {
			r.wait(t)
		}
		serials := map[string]bool{}
		for _, r := range replicas {
			serials[callService(t, cp, web, r, "shop").SerialNumber.String()] = true
		}
		if len(serials) != 3 {
			t.Fatalf("3 replicas serve %d distinct SVIDs", len(serials))
		}
		fourth := startService(t, cp, "shop", token, filepath.Join(base, "replica-3"))
		line := fourth.failure(t)
		for _, want := range []string{"needs a new join token", "used up", "rampart token create shop"} {
			if !strings.Contains(line, want) {
				t.Errorf("the fourth replica's error %q does not say %q", line, want)
			}
		}
		// The set restarts, all at once, with no admin action.
		for _, r := range replicas {
			r.kill(t)
		}
		for i := range replicas { // three processes join at once
			replicas[i] = launchService(t, cp, "shop", token, filepath.Join(base, fmt.Sprint("replica-", i)))
		}
		for _, r := range replicas {
			r.wait(t)
		}
		for _, r := range replicas {
			callService(t, cp, web, r, "shop")
		}
	})
}

func TestARevokedServiceCannotComeBack(t *testing.T) {
	backends(t, func(t *testing.T, cp *controltest.ControlPlane) {
		web := cp.Join(t, "web")
		dir := filepath.Join(t.TempDir(), "shop")
		token := cp.JoinTokenUses(t, "shop", 2) // a use left: revocation must refuse it too
		s := startService(t, cp, "shop", token, dir)
		callService(t, cp, web, s, "shop")
		s.kill(t)
		cp.MustDo(t, http.MethodPost, "/v1/services/shop/revoke", nil, http.StatusOK, nil)

		line := startService(t, cp, "shop", token, dir).failure(t)
		for _, want := range []string{"shop was revoked", "rampart services reinstate shop"} {
			if !strings.Contains(line, want) {
				t.Errorf("the revoked service's error %q does not say %q", line, want)
			}
		}
		// Reinstated, it comes back on its own.
		cp.MustDo(t, http.MethodPost, "/v1/services/shop/reinstate", nil, http.StatusOK, nil)
		callService(t, cp, web, startService(t, cp, "shop", token, dir), "shop")
		if list := tokens(t, cp, "shop"); list.Tokens[0].UsesLeft != 1 {
			t.Errorf("coming back spent a token use: %+v", list.Tokens)
		}
	})
}

func TestAServiceThatLostItsDirectoryNeedsANewToken(t *testing.T) {
	backends(t, func(t *testing.T, cp *controltest.ControlPlane) {
		web := cp.Join(t, "web")
		dir := filepath.Join(t.TempDir(), "shop")
		token := cp.JoinToken(t, "shop")
		s := startService(t, cp, "shop", token, dir)
		callService(t, cp, web, s, "shop")
		s.kill(t)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		line := startService(t, cp, "shop", token, dir).failure(t)
		for _, want := range []string{"shop needs a new join token", "no SVID is saved in " + dir, "the join token is used up", "'rampart token create shop'"} {
			if !strings.Contains(line, want) {
				t.Errorf("error %q does not say %q", line, want)
			}
		}
		// The line it asks for is enough.
		callService(t, cp, web, startService(t, cp, "shop", cp.JoinToken(t, "shop"), dir), "shop")
	})
}
