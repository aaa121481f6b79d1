package rampart_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/controltest"
)

// Three services that may all call each other, without actors.
const revocationPolicy = `
services:
  alpha:
    allow:
      - callers: ["*"]
        actor: optional
  beta:
    allow:
      - callers: ["*"]
        actor: optional
  gamma:
    allow:
      - callers: ["*"]
        actor: optional
`

// closeConn records when the transport closes its connection.
type closeConn struct {
	net.Conn
	closed *atomic.Bool
}

func (c closeConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

// keepAliveClient returns a client with src's identity for service that
// keeps one connection alive (HTTP/1.1), and a flag set when that
// connection is closed.
func keepAliveClient(t *testing.T, src identity.Source, service string) (*http.Client, *atomic.Bool) {
	t.Helper()
	id, _ := identity.ServiceID(src.TrustDomain(), service)
	closed := new(atomic.Bool)
	dialer := &net.Dialer{Timeout: time.Minute}
	tr := &http.Transport{
		TLSClientConfig: identity.ClientTLSConfig(src, id),
		MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return closeConn{c, closed}, nil
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}, closed
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &statusError{resp.Status + " " + strings.TrimSpace(string(body))}
	}
	return nil
}

// statusError is get's error when the server answered, with another
// status than 200: the call got past the handshake.
type statusError struct{ msg string }

func (e *statusError) Error() string { return e.msg }

// TestARevokedServiceIsCutOffFromTheMesh revokes gamma through the control
// plane's API, as 'rampart service revoke' does, and checks that within
// the watch's latency its kept-alive connection to alpha is closed, its new
// handshakes with alpha are refused, alpha refuses to call it, and alpha
// and beta go on calling each other.
func TestARevokedServiceIsCutOffFromTheMesh(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, revocationPolicy)
	ping := func(name string) func(*rampart.Agent, *http.ServeMux) {
		return func(_ *rampart.Agent, mux *http.ServeMux) {
			mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
		}
	}
	alpha := startService(t, cp, "alpha", ping("alpha"))
	beta := startService(t, cp, "beta", ping("beta"))
	gamma := startService(t, cp, "gamma", ping("gamma"))

	gammaToAlpha, gammaConnClosed := keepAliveClient(t, gamma.src, "alpha")
	betaToAlpha, betaConnClosed := keepAliveClient(t, beta.src, "alpha")
	alphaToGamma, err := alpha.agent.Client("gamma")
	if err != nil {
		t.Fatal(err)
	}
	alphaToBeta, err := alpha.agent.Client("beta")
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"gamma → alpha": func() error { return get(gammaToAlpha, alpha.url+"/ping") },
		"beta → alpha":  func() error { return get(betaToAlpha, alpha.url+"/ping") },
		"alpha → gamma": func() error { return get(alphaToGamma, gamma.url+"/ping") },
		"alpha → beta":  func() error { return get(alphaToBeta, beta.url+"/ping") },
	} {
		if err := call(); err != nil {
			t.Fatalf("before the revocation, %s: %v", name, err)
		}
	}
	refusedBefore := alpha.agent.RefusedHandshakes()

	revoked := time.Now()
	cp.MustDo(t, http.MethodPost, "/v1/services/gamma/revoke", nil, http.StatusOK, nil)

	// The kept-alive connection gamma → alpha is closed by alpha, without
	// gamma sending anything on it.
	deadline := time.Now().Add(time.Minute)
	for !gammaConnClosed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("gamma's kept-alive connection to alpha still open a minute after the revocation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("gamma's connection to alpha closed %v after the revocation", time.Since(revoked).Round(time.Millisecond))

	// New connections from gamma are refused at the handshake.
	fresh := client(t, gamma.src, "alpha")
	err = get(fresh, alpha.url+"/ping")
	if err == nil {
		t.Fatal("gamma, revoked, opened a new connection to alpha and was served")
	}
	// By type, not by "401" or "403" in the message, which the URL's
	// port may hold.
	if se := (*statusError)(nil); errors.As(err, &se) {
		t.Fatalf("gamma was refused by HTTP (%v), not at the handshake", err)
	}
	if got := alpha.agent.RefusedHandshakes() - refusedBefore; got < 1 {
		t.Errorf("alpha counted %d refused handshakes, want at least 1", got)
	}
	ev := cp.WaitEvent(t, "kind=mtls_refused&service=alpha")
	if reason, _ := ev["reason"].(string); !strings.Contains(reason, "revoked") {
		t.Errorf("event reason %q, want it to say revoked", reason)
	}
	// gamma's own agent fares no better.
	gammaAgent, _ := gamma.agent.Client("alpha")
	if err := get(gammaAgent, alpha.url+"/ping"); err == nil {
		t.Error("gamma's agent client was served by alpha")
	}
	// alpha refuses to call gamma: a revoked server is not trusted either.
	if err := get(alphaToGamma, gamma.url+"/ping"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("alpha → gamma after the revocation: %v, want refused as revoked", err)
	}

	// The others are unaffected: beta's kept-alive connection stays, on
	// the same connection, and alpha calls beta.
	if err := get(betaToAlpha, alpha.url+"/ping"); err != nil {
		t.Errorf("beta → alpha: %v", err)
	}
	if betaConnClosed.Load() {
		t.Error("beta's connection to alpha was closed")
	}
	if err := get(alphaToBeta, beta.url+"/ping"); err != nil {
		t.Errorf("alpha → beta: %v", err)
	}

	// Reinstated, gamma is admitted again.
	cp.MustDo(t, http.MethodPost, "/v1/services/gamma/reinstate", nil, http.StatusOK, nil)
	deadline = time.Now().Add(time.Minute)
	for get(client(t, gamma.src, "alpha"), alpha.url+"/ping") != nil {
		if time.Now().After(deadline) {
			t.Fatal("gamma still refused a minute after it was reinstated")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
