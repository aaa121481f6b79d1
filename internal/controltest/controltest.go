// Package controltest runs a real control plane — data directory, SQLite
// store, CA, HTTPS API on 127.0.0.1 — for the tests of the packages that talk
// to it (identity, the SDK, the gateway), like net/http/httptest does for
// handlers.
package controltest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
)

// Config configures Start.
type Config struct {
	// TrustDomain; "" means "example.org".
	TrustDomain string
	// SVIDTTL is the lifetime of SVIDs; 0 means the control plane's default.
	SVIDTTL time.Duration
	// WatchTimeout of long polls; 0 means 5 s, so tests end quickly.
	WatchTimeout time.Duration
	// Quotas per service identity; the zero value is the control plane's
	// defaults.
	Quotas control.Quotas
	// PostgresDSN, if set, stores in PostgreSQL (e.g. a schema of
	// storetest.PostgresSchema) instead of SQLite in the data directory.
	PostgresDSN string
}

// ControlPlane is a control plane serving on 127.0.0.1.
type ControlPlane struct {
	URL         string // https://127.0.0.1:port
	BundlePEM   []byte // verifies the API's certificate and every SVID
	AdminToken  string
	TrustDomain spiffeid.TrustDomain
	Dir         string

	cfg    Config
	addr   string
	client *http.Client

	mu  sync.Mutex
	srv *control.Server
}

// Start initializes a data directory in t.TempDir and serves its API until
// the test ends.
func Start(t testing.TB, cfg Config) *ControlPlane {
	t.Helper()
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = "example.org"
	}
	if cfg.WatchTimeout == 0 {
		cfg.WatchTimeout = 5 * time.Second
	}
	dir := filepath.Join(t.TempDir(), "data")
	token, err := control.Init(context.Background(), dir, cfg.TrustDomain)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := os.ReadFile(filepath.Join(dir, control.CADir, ca.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	td := spiffeid.RequireTrustDomainFromString(cfg.TrustDomain)
	c := &ControlPlane{BundlePEM: bundle, AdminToken: token, TrustDomain: td, Dir: dir, cfg: cfg}
	if err := c.start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c.URL = "https://" + c.addr
	c.client = c.newClient()
	t.Cleanup(func() {
		c.Stop()
		c.client.CloseIdleConnections()
	})
	return c
}

func (c *ControlPlane) newClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = c.ClientTLS()
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (c *ControlPlane) start(addr string) error {
	cfg := control.ServerConfig{Dir: c.Dir, Addr: addr, SVIDTTL: c.cfg.SVIDTTL, WatchTimeout: c.cfg.WatchTimeout, Quotas: c.cfg.Quotas,
		PostgresDSN: c.cfg.PostgresDSN}
	var srv *control.Server
	var err error
	// A restarted control plane comes back on its address; the port may
	// be taken for a moment after the old listener closed.
	for range 50 {
		srv, err = control.StartServer(context.Background(), cfg)
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.srv, c.addr = srv, srv.Addr()
	c.mu.Unlock()
	return nil
}

// ClientTLS returns a TLS client configuration that trusts the API's
// certificate.
func (c *ControlPlane) ClientTLS() *tls.Config {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(c.BundlePEM)
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// Stop stops serving, as if the control plane went down; its data stays.
func (c *ControlPlane) Stop() {
	c.mu.Lock()
	srv := c.srv
	c.srv = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Restart serves again on the same address after Stop.
func (c *ControlPlane) Restart(t testing.TB) {
	t.Helper()
	if err := c.start(c.addr); err != nil {
		t.Fatal(err)
	}
}

// JoinToken creates a single-use join token for service.
func (c *ControlPlane) JoinToken(t testing.TB, service string) string {
	t.Helper()
	return c.JoinTokenUses(t, service, 1)
}

// JoinTokenUses creates a join token for service that uses processes may
// join with.
func (c *ControlPlane) JoinTokenUses(t testing.TB, service string, uses int) string {
	t.Helper()
	var got control.TokenResponse
	c.MustDo(t, http.MethodPost, "/v1/tokens", control.TokenRequest{Service: service, Uses: uses}, http.StatusCreated, &got)
	return got.Token
}

// Do calls the API as the admin; body is JSON-encoded unless it is a
// string (sent as YAML, for the policy).
func (c *ControlPlane) Do(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		r, contentType = bytes.NewReader([]byte(b)), "application/yaml"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.URL+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// MustDo is Do that fails the test unless the answer has status want; it
// decodes the answer into out if out is not nil.
func (c *ControlPlane) MustDo(t testing.TB, method, path string, body any, want int, out any) {
	t.Helper()
	status, data, err := c.Do(method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// ApplyPolicy applies a policy document.
func (c *ControlPlane) ApplyPolicy(t testing.TB, yaml string) {
	t.Helper()
	c.MustDo(t, http.MethodPut, "/v1/policy", yaml, http.StatusCreated, nil)
}

// Decision is what AddDecision creates.
type Decision struct {
	Scope   string `json:"scope"` // ip, cidr, user, session
	Value   string `json:"value"`
	Action  string `json:"action"` // block, block-sensitive, read-only, rate-limit
	Reason  string `json:"reason,omitempty"`
	Expires string `json:"expires,omitempty"`
}

// AddDecision creates a decision and returns its id.
func (c *ControlPlane) AddDecision(t testing.TB, d Decision) string {
	t.Helper()
	var got struct {
		ID string `json:"id"`
	}
	c.MustDo(t, http.MethodPost, "/v1/decisions", d, http.StatusCreated, &got)
	if got.ID == "" {
		t.Fatal("decision created without an id")
	}
	return got.ID
}

// DeleteDecision deletes a decision.
func (c *ControlPlane) DeleteDecision(t testing.TB, id string) {
	t.Helper()
	status, data, err := c.Do(http.MethodDelete, "/v1/decisions/"+id, nil)
	if err != nil || status/100 != 2 {
		t.Fatalf("delete decision %s: %d %s %v", id, status, data, err)
	}
}

// Events returns the events stored, newest first, as raw JSON objects.
func (c *ControlPlane) Events(t testing.TB, query string) []json.RawMessage {
	t.Helper()
	var got struct {
		Events []json.RawMessage `json:"events"`
	}
	c.MustDo(t, http.MethodGet, "/v1/events?"+query, nil, http.StatusOK, &got)
	return got.Events
}

// WaitEvent waits up to a minute (a deadline for a busy machine, not an
// expectation of speed) for an event matching query (the
// parameters of GET /v1/events) to be stored, and returns the newest one's
// data: the event as the agent or gateway sent it.
func (c *ControlPlane) WaitEvent(t testing.TB, query string) map[string]any {
	t.Helper()
	const wait = time.Minute
	deadline := time.Now().Add(wait)
	for {
		if evs := c.Events(t, query); len(evs) > 0 {
			var stored struct {
				Data map[string]any `json:"data"`
			}
			if err := json.Unmarshal(evs[0], &stored); err != nil {
				t.Fatal(err)
			}
			return stored.Data
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event for %s after %v", query, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Join joins the control plane as service and returns its identity,
// renewed until the test ends.
func (c *ControlPlane) Join(t testing.TB, service string) *identity.CASource {
	t.Helper()
	src, err := identity.Join(context.Background(), identity.JoinConfig{
		ControlPlane: c.URL, ControlPlaneBundle: c.BundlePEM, Service: service, Token: c.JoinToken(t, service),
		RetryInterval: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// SigningKey fetches the actor-token signing key with gw's SVID, as a
// gateway does.
func (c *ControlPlane) SigningKey(t testing.TB, gw *identity.CASource) (keyID string, key crypto.Signer) {
	t.Helper()
	resp, err := gw.ControlPlaneClient().Get(c.URL + "/v1/actor-key")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /v1/actor-key: %d %s", resp.StatusCode, msg)
	}
	var got struct {
		JWK jose.JSONWebKey `json:"jwk"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	key, ok := got.JWK.Key.(crypto.Signer)
	if !ok {
		t.Fatalf("actor key is %T", got.JWK.Key)
	}
	return got.JWK.KeyID, key
}

// Signer returns an actor-token Signer with the signing key, issuing as the
// service gw.
func (c *ControlPlane) Signer(t testing.TB, gw *identity.CASource) *actor.Signer {
	t.Helper()
	svid, err := gw.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	s, err := actor.NewSigner(actor.SignerConfig{Issuer: svid.ID.String(), Audience: c.TrustDomain.IDString()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetKey(c.SigningKey(t, gw)); err != nil {
		t.Fatal(err)
	}
	return s
}
