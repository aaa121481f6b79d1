package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader in different
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// controlPlane is a data directory made by 'rampart init' and a 'rampart
// server' over it, listening on 127.0.0.1.
type controlPlane struct {
	dir, addr, token, caFile string
	kekFile                  string // the CA key's key-encryption key, outside dir
	stop                     func() // stops the server
}

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	cp := initControlPlane(t)
	cp.stop = cp.serve(t)
	t.Cleanup(func() { cp.stop() })
	return cp
}

// initControlPlane runs 'rampart init' in a temporary directory.
func initControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	kekFile := filepath.Join(t.TempDir(), "ca.kek")
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"init", "-data", dir, "-trust-domain", "cli.test", "-ca-kek-file", kekFile}, &out, &errOut); err != nil {
		t.Fatalf("init: %v\n%s", err, errOut.String())
	}
	token := regexp.MustCompile(`rat_[A-Za-z0-9_-]+`).FindString(out.String())
	if token == "" {
		t.Fatalf("init printed no admin token:\n%s", out.String())
	}
	return &controlPlane{dir: dir, token: token, caFile: filepath.Join(dir, "ca", "ca.crt"), kekFile: kekFile}
}

// serve runs 'rampart server' over cp.dir until stop is called, and sets
// cp.addr.
func (cp *controlPlane) serve(t *testing.T, extra ...string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var srvOut, srvErr syncBuffer
	done := make(chan error, 1)
	args := append([]string{"server", "-data", cp.dir, "-addr", "127.0.0.1:0"}, extra...)
	if cp.kekFile != "" {
		args = append(args, "-ca-kek-file", cp.kekFile)
	}
	go func() {
		done <- run(ctx, args, &srvOut, &srvErr)
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server returned %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("server did not stop within a minute of its context's end")
		}
	}
	addrRE := regexp.MustCompile(`https://(127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := addrRE.FindStringSubmatch(srvOut.String()); m != nil {
			cp.addr = m[1]
			return stop
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("server exited: %v\n%s", err, srvErr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("server printed no address within a minute:\n%s\n%s", srvOut.String(), srvErr.String())
		}
	}
}

func TestDecisionsAndEventsSurviveARestart(t *testing.T) {
	cp := startControlPlane(t)
	out, err := cp.cli(t, "decisions", "add", "-o", "json", "session", "5e551011")
	var d store.Decision
	if err != nil || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("decisions add: %q, %v", out, err)
	}
	// A recent time: the server prunes events older than its retention as
	// it starts, which would race the test for an old one.
	batch := `{"events":[{"id":"ev-r","time":"` + time.Now().UTC().Format(time.RFC3339) + `","kind":"ssrf","service":"feeds"}]}`
	cp.post(t, "/v1/events", batch)

	cp.stop()
	cp.stop = cp.serve(t)

	out, err = cp.cli(t, "decisions", "list")
	if err != nil || !strings.Contains(out, d.ID) {
		t.Errorf("decisions after restart: %q, %v", out, err)
	}
	cp.post(t, "/v1/events", batch) // retried after the restart: not stored twice
	out, err = cp.cli(t, "events", "-o", "json")
	var page control.EventPage
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Events) != 1 || page.Events[0].ID != "ev-r" {
		t.Errorf("events after restart and retry: %q, %v", out, err)
	}
}

// cli runs a client command against the control plane.
func (cp *controlPlane) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	args = append(args, "-addr", cp.addr, "-ca", cp.caFile, "-token", cp.token)
	return cp.runArgs(t, args...)
}

func (cp *controlPlane) runArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut strings.Builder
	err := run(t.Context(), args, &out, &errOut)
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("run(%q) error spans lines: %q", args, err)
	}
	return out.String(), err
}

func TestInitMakesAPrivateDataDirectoryOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"init", "-data", dir}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		dir: 0o700 | os.ModeDir,
		filepath.Join(dir, "ca", ca.SealedKeyFile): 0o600,
		filepath.Join(dir, "ca", control.KEKFile):  0o600,
		filepath.Join(dir, control.AdminTokenFile): 0o600,
		filepath.Join(dir, sqlite.FileName):        0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		}
	}
	token := regexp.MustCompile(`rat_[A-Za-z0-9_-]+`).FindString(out.String())
	hash, _ := os.ReadFile(filepath.Join(dir, control.AdminTokenFile))
	if token == "" || bytes.Contains(hash, []byte(token)) {
		t.Errorf("admin token %q printed, and kept in the clear?", token)
	}
	err := run(t.Context(), []string{"init", "-data", dir}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second init: %v, want a refusal of a non-empty directory", err)
	}
	var ue usageError
	if err := run(t.Context(), []string{"init"}, &out, &errOut); !errors.As(err, &ue) {
		t.Errorf("init without -data: %v, want a usage error", err)
	}
}

func TestClientCommandsAgainstARealServer(t *testing.T) {
	cp := startControlPlane(t)

	t.Run("token create prints a join token", func(t *testing.T) {
		out, err := cp.cli(t, "token", "create", "payments")
		if err != nil || !strings.HasPrefix(out, "rjt_") {
			t.Errorf("token create: %q, %v", out, err)
		}
		out, err = cp.cli(t, "token", "create", "-o", "json", "-ttl", "5m", "web")
		var tok control.TokenResponse
		if err != nil || json.Unmarshal([]byte(out), &tok) != nil || tok.Service != "web" || time.Until(tok.Expires) > 5*time.Minute {
			t.Errorf("token create -o json: %q, %v", out, err)
		}
		if _, err := cp.cli(t, "token", "create", "Not_A_Name"); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
			t.Errorf("invalid service name: %v", err)
		}
	})

	t.Run("tokens of several uses are listed without their secret and revoked", func(t *testing.T) {
		out, err := cp.cli(t, "token", "create", "-uses", "3", "-o", "json", "replicas")
		var tok control.TokenResponse
		if err != nil || json.Unmarshal([]byte(out), &tok) != nil || tok.Uses != 3 || tok.ID == "" {
			t.Fatalf("token create -uses 3: %q, %v", out, err)
		}
		out, err = cp.cli(t, "tokens", "list", "-service", "replicas")
		if err != nil || !strings.HasPrefix(out, "ID") || !strings.Contains(out, tok.ID) || !strings.Contains(out, "3 of 3") || !strings.Contains(out, "usable") {
			t.Fatalf("tokens list: %q, %v", out, err)
		}
		if secret := tok.Token[strings.Index(tok.Token, ".")+1:]; strings.Contains(out, secret) {
			t.Fatalf("tokens list shows the secret: %q", out)
		}
		out, err = cp.cli(t, "token", "revoke", tok.ID)
		if err != nil || !strings.Contains(out, "revoked "+tok.ID) || !strings.Contains(out, "3 of 3 uses were left") {
			t.Fatalf("token revoke: %q, %v", out, err)
		}
		if out, err := cp.cli(t, "token", "list", "-service", "replicas"); err != nil || strings.Contains(out, tok.ID) {
			t.Errorf("token list after revoke: %q, %v; want it gone from the usable ones", out, err)
		}
		out, err = cp.cli(t, "token", "list", "-all", "-o", "json")
		var list control.TokenList
		if err != nil || json.Unmarshal([]byte(out), &list) != nil || !slices.ContainsFunc(list.Tokens, func(t store.JoinToken) bool { return t.ID == tok.ID && !t.Revoked.IsZero() }) {
			t.Errorf("token list -all -o json: %q, %v", out, err)
		}
		if _, err := cp.cli(t, "token", "revoke", "0123456789abcdef"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
			t.Errorf("revoking an unknown token: %v, want a 404", err)
		}
		var ue usageError
		if _, err := cp.cli(t, "token", "create", "-uses", "0", "replicas"); !errors.As(err, &ue) {
			t.Errorf("-uses 0: %v, want a usage error", err)
		}
		if _, err := cp.cli(t, "token", "revoke"); !errors.As(err, &ue) {
			t.Errorf("revoke without an id: %v, want a usage error", err)
		}
	})

	t.Run("decisions are added, listed and removed", func(t *testing.T) {
		out, err := cp.cli(t, "decisions", "add", "-action", "read-only", "-ttl", "1h", "-reason", "scraping", "ip", "203.0.113.9")
		if err != nil || !strings.Contains(out, "203.0.113.9") || !strings.Contains(out, "read-only") || !strings.HasPrefix(out, "ID") {
			t.Fatalf("decisions add: %q, %v", out, err)
		}
		out, err = cp.cli(t, "decisions", "add", "cidr", "198.51.100.7/24", "-o", "json")
		var d store.Decision
		if err != nil || json.Unmarshal([]byte(out), &d) != nil || d.Value != "198.51.100.0/24" || d.Action != store.ActionBlock {
			t.Fatalf("decisions add -o json: %q, %v", out, err)
		}
		out, err = cp.cli(t, "decisions", "list", "-o", "json")
		var list control.DecisionList
		if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Decisions) != 2 {
			t.Fatalf("decisions list -o json: %q, %v", out, err)
		}
		out, err = cp.cli(t, "decisions", "rm", d.ID)
		if err != nil || !strings.Contains(out, d.ID) {
			t.Errorf("decisions rm: %q, %v", out, err)
		}
		out, err = cp.cli(t, "decisions", "list")
		if err != nil || strings.Contains(out, d.ID) || !strings.Contains(out, "scraping") {
			t.Errorf("decisions list after rm: %q, %v", out, err)
		}
		if _, err := cp.cli(t, "decisions", "rm", d.ID); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
			t.Errorf("removing it again: %v, want a 404", err)
		}
		if _, err := cp.cli(t, "decisions", "add", "planet", "earth"); err == nil || !strings.Contains(err.Error(), "scope") {
			t.Errorf("invalid scope: %v", err)
		}
		var ue usageError
		if _, err := cp.cli(t, "decisions", "add", "ip"); !errors.As(err, &ue) {
			t.Errorf("one argument: %v, want a usage error", err)
		}
	})

	t.Run("events lists what agents sent", func(t *testing.T) {
		// A recent time, which the server's pruning at start leaves alone.
		body := `{"events":[{"id":"ev-1","time":"` + time.Now().UTC().Format(time.RFC3339) + `","kind":"sql_injection","action":"blocked","service":"orders","route":"GET /orders/{id}","actor_ip":"203.0.113.50"}]}`
		cp.post(t, "/v1/events", body)
		out, err := cp.cli(t, "events", "-kind", "sql_injection")
		if err != nil || !strings.Contains(out, "orders") || !strings.Contains(out, "203.0.113.50") {
			t.Errorf("events: %q, %v", out, err)
		}
		out, err = cp.cli(t, "events", "-o", "json", "-service", "nobody")
		var page control.EventPage
		if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Events) != 0 {
			t.Errorf("events -o json for another service: %q, %v", out, err)
		}
		out, err = cp.cli(t, "events", "-o", "json", "-actor", "cidr:203.0.113.0/24", "-attacks")
		if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Events) != 1 || page.Events[0].ID != "ev-1" {
			t.Errorf("events -actor cidr:203.0.113.0/24 -attacks: %q, %v", out, err)
		}
		out, err = cp.cli(t, "events", "-o", "json", "-actor", "cidr:198.51.100.0/24")
		if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Events) != 0 {
			t.Errorf("events of another network: %q, %v", out, err)
		}
		if _, err := cp.cli(t, "events", "-actor", "device:x"); err == nil || !strings.Contains(err.Error(), "actor") {
			t.Errorf("events -actor device:x: %v, want an error naming actor", err)
		}
	})

	t.Run("services lists the inventory", func(t *testing.T) {
		s, err := sqlite.Open(t.Context(), sqlite.Config{Dir: cp.dir})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Heartbeat(t.Context(), store.Instance{Service: "checkout", ID: "pod-1", Exposed: true})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cp.cli(t, "services")
		if err != nil || !strings.Contains(out, "checkout") || !strings.HasPrefix(out, "SERVICE") {
			t.Errorf("services: %q, %v", out, err)
		}
		out, err = cp.cli(t, "services", "-o", "json")
		var list control.ServiceList
		if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Services) != 1 {
			t.Errorf("services -o json: %q, %v", out, err)
		}
	})

	t.Run("services revoke and reinstate", func(t *testing.T) {
		out, err := cp.cli(t, "services", "revoke", "checkout")
		if err != nil || !strings.Contains(out, "revoked checkout") {
			t.Errorf("services revoke: %q, %v", out, err)
		}
		out, err = cp.cli(t, "services", "-o", "json")
		var list control.ServiceList
		if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Services) != 1 || list.Services[0].Revoked.IsZero() {
			t.Errorf("services after revoke: %q, %v", out, err)
		}
		out, err = cp.cli(t, "services", "reinstate", "-o", "json", "checkout")
		var s store.Service
		if err != nil || json.Unmarshal([]byte(out), &s) != nil || !s.Revoked.IsZero() {
			t.Errorf("services reinstate -o json: %q, %v", out, err)
		}
		if _, err := cp.cli(t, "services", "revoke", "Bad Name"); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
			t.Errorf("revoke an invalid name: %v", err)
		}
	})

	t.Run("policy apply and show", func(t *testing.T) {
		dir := t.TempDir()
		good := filepath.Join(dir, "policy.yaml")
		os.WriteFile(good, []byte("services:\n  orders:\n    allow:\n      - callers: [web]\n        methods: [GET]\n"), 0o644)
		bad := filepath.Join(dir, "bad.yaml")
		os.WriteFile(bad, []byte("services:\n  orders:\n    allow:\n      - callers: [web]\n        methods: [get]\n"), 0o644)

		out, err := cp.cli(t, "policy", "apply", "-f", good)
		if err != nil || !strings.Contains(out, "version 1") {
			t.Fatalf("policy apply: %q, %v", out, err)
		}
		_, err = cp.cli(t, "policy", "apply", "-f", bad)
		if err == nil || !strings.Contains(err.Error(), "bad.yaml: line 5: services.orders.allow[0].methods[0]") {
			t.Errorf("invalid policy: %v", err)
		}
		if _, err := cp.cli(t, "policy", "apply", "-base", "0", "-f", good); err == nil || !strings.Contains(err.Error(), "HTTP 409") {
			t.Errorf("applying over a newer version: %v, want a conflict", err)
		}
		out, err = cp.cli(t, "policy", "show")
		if err != nil || !strings.HasPrefix(out, "# policy version 1") || !strings.Contains(out, "callers: [web]") {
			t.Errorf("policy show: %q, %v", out, err)
		}
		out, err = cp.cli(t, "policy", "show", "-o", "json")
		var p store.Policy
		if err != nil || json.Unmarshal([]byte(out), &p) != nil || p.Version != 1 {
			t.Errorf("policy show -o json: %q, %v", out, err)
		}
		var ue usageError
		if _, err := cp.cli(t, "policy", "apply"); !errors.As(err, &ue) {
			t.Errorf("apply without -f: %v, want a usage error", err)
		}
	})

	t.Run("mistakes are one-line errors that say what to do", func(t *testing.T) {
		_, err := cp.runArgs(t, "services", "-addr", cp.addr, "-ca", cp.caFile, "-token", "rat_wrong")
		if err == nil || !strings.Contains(err.Error(), "RAMPART_TOKEN") || !strings.Contains(err.Error(), "HTTP 401") {
			t.Errorf("wrong token: %v", err)
		}
		_, err = cp.runArgs(t, "services", "-addr", cp.addr, "-token", cp.token)
		if err == nil || !strings.Contains(err.Error(), "RAMPART_CA") {
			t.Errorf("no CA: %v", err)
		}
		_, err = cp.runArgs(t, "services", "-addr", "127.0.0.1:1", "-ca", cp.caFile, "-token", cp.token)
		if err == nil || !strings.Contains(err.Error(), "cannot reach") {
			t.Errorf("nothing listening: %v", err)
		}
		var ue usageError
		if _, err := cp.runArgs(t, "services", "-ca", cp.caFile, "-addr", cp.addr, "-token", ""); !errors.As(err, &ue) {
			t.Errorf("no token: %v, want a usage error", err)
		}
		if _, err := cp.cli(t, "services", "-o", "yaml"); !errors.As(err, &ue) {
			t.Errorf("-o yaml: %v, want a usage error", err)
		}
	})

	t.Run("the environment configures the client", func(t *testing.T) {
		t.Setenv("RAMPART_ADDR", cp.addr)
		t.Setenv("RAMPART_CA", cp.caFile)
		t.Setenv("RAMPART_TOKEN", cp.token)
		if out, err := cp.runArgs(t, "decisions", "list"); err != nil || !strings.HasPrefix(out, "ID") {
			t.Errorf("decisions list from the environment: %q, %v", out, err)
		}
	})
}

// httpClient trusts the data directory's CA.
func (cp *controlPlane) httpClient(t *testing.T) *http.Client {
	t.Helper()
	pemData, err := os.ReadFile(cp.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// post sends a JSON body to the server with the admin token.
func (cp *controlPlane) post(t *testing.T, path, body string) {
	t.Helper()
	c := cp.httpClient(t)
	req, _ := http.NewRequest("POST", "https://"+cp.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+cp.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}
