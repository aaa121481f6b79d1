package control_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

// serveTLS serves e's handler over TLS the way 'rampart server' does, on
// 127.0.0.1, and returns its address.
func (e *env) serveTLS(t *testing.T) string {
	t.Helper()
	cfg, err := control.TLSConfig(e.ca, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e.h, TLSConfig: cfg}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	return "https://" + ln.Addr().String()
}

// tlsClient trusts e's CA and presents cert, if any.
func (e *env) tlsClient(cert *tls.Certificate) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(e.ca.Certificate())
	cfg := &tls.Config{RootCAs: roots}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func post(t *testing.T, c *http.Client, url, auth string, body any) response {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// keyAndCSR returns a new key and a base64 CSR for it.
func keyAndCSR(t *testing.T) (crypto.Signer, string) { return keyAndCSRTB(t) }

func keyAndCSRTB(t testing.TB) (crypto.Signer, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, base64.StdEncoding.EncodeToString(der)
}

func TestRenewalWorksWithTheCurrentSVIDUntilRevoked(t *testing.T) {
	e := newEnv(t)
	base := e.serveTLS(t)
	anon := e.tlsClient(nil)

	key, csr := keyAndCSR(t)
	joined := decode[control.SVIDResponse](t, post(t, anon, base+"/v1/svid", "",
		control.SVIDRequest{Token: e.joinToken(t, "billing", ""), Service: "billing", CSR: csr}), http.StatusCreated)
	svid := &tls.Certificate{Certificate: [][]byte{parsePEMCerts(t, joined.SVIDPEM)[0].Raw}, PrivateKey: key}

	_, csr2 := keyAndCSR(t)
	renewed := decode[control.SVIDResponse](t, post(t, e.tlsClient(svid), base+"/v1/svid/renew", "", control.RenewRequest{CSR: csr2}), http.StatusOK)
	chain := parsePEMCerts(t, renewed.SVIDPEM)
	id, _, err := x509svid.Verify(chain, e.ca.Bundle())
	if err != nil || id.String() != "spiffe://rampart.test/svc/billing" {
		t.Errorf("renewed SVID: %v, %v", id, err)
	}

	wantError(t, post(t, anon, base+"/v1/svid/renew", "", control.RenewRequest{CSR: csr2}), http.StatusUnauthorized, "no_client_certificate")
	wantError(t, e.doWith(t, "POST", "/v1/svid/renew", control.RenewRequest{CSR: csr2}, "", "application/json"), http.StatusUnauthorized, "no_client_certificate")

	// An SVID from another CA of the same trust domain is refused.
	other, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	okey, ocsr := keyAndCSR(t)
	ocsrDER, _ := base64.StdEncoding.DecodeString(ocsr)
	ochain, err := other.SignCSR(ocsrDER, "billing", 0)
	if err != nil {
		t.Fatal(err)
	}
	forged := &tls.Certificate{Certificate: [][]byte{ochain[0].Raw}, PrivateKey: okey}
	wantError(t, post(t, e.tlsClient(forged), base+"/v1/svid/renew", "", control.RenewRequest{CSR: csr2}), http.StatusUnauthorized, control.CodeSVIDUntrusted)

	// After revocation, the same SVID renews nothing.
	admin := "Bearer " + e.admin
	svc := decode[map[string]any](t, post(t, anon, base+"/v1/services/billing/revoke", admin, nil), http.StatusOK)
	if svc["revoked"] == nil {
		t.Errorf("revoke returned %v", svc)
	}
	wantError(t, post(t, e.tlsClient(svid), base+"/v1/svid/renew", "", control.RenewRequest{CSR: csr2}), http.StatusForbidden, control.CodeServiceRevoked)
	wantError(t, post(t, anon, base+"/v1/services/billing/revoke", "", nil), http.StatusUnauthorized, "unauthorized")

	decode[map[string]any](t, post(t, anon, base+"/v1/services/billing/reinstate", admin, nil), http.StatusOK)
	decode[control.SVIDResponse](t, post(t, e.tlsClient(svid), base+"/v1/svid/renew", "", control.RenewRequest{CSR: csr2}), http.StatusOK)
}

func get(t *testing.T, c *http.Client, url string) response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func TestAgentsAuthenticateWithTheirSVID(t *testing.T) {
	e := newEnv(t)
	base := e.serveTLS(t)
	anon := e.tlsClient(nil)
	key, csr := keyAndCSR(t)
	joined := decode[control.SVIDResponse](t, post(t, anon, base+"/v1/svid", "",
		control.SVIDRequest{Token: e.joinToken(t, "orders", ""), Service: "orders", CSR: csr}), http.StatusCreated)
	agent := e.tlsClient(&tls.Certificate{Certificate: [][]byte{parsePEMCerts(t, joined.SVIDPEM)[0].Raw}, PrivateKey: key})

	now := time.Now().UTC()
	got := decode[control.EventBatchResult](t, post(t, agent, base+"/v1/events", "",
		batchOf(event("a1", "sql_injection", "orders", now))), http.StatusOK)
	if got.Inserted != 1 {
		t.Errorf("agent's own events: %+v", got)
	}
	eb := wantError(t, post(t, agent, base+"/v1/events", "",
		batchOf(event("a2", "x", "orders", now), event("a3", "x", "payments", now))), http.StatusForbidden, "forbidden")
	if eb.Field != "events[1].service" {
		t.Errorf("events of another service: field %q", eb.Field)
	}
	if r := post(t, agent, base+"/v1/heartbeat", "", control.Heartbeat{Service: "orders", ID: "pod-1"}); r.status != http.StatusNoContent {
		t.Errorf("agent's heartbeat: %d %s", r.status, r.body)
	}
	wantError(t, post(t, agent, base+"/v1/heartbeat", "", control.Heartbeat{Service: "payments", ID: "pod-1"}), http.StatusForbidden, "forbidden")

	for _, path := range []string{"/v1/decisions", "/v1/watch?timeout=0s"} {
		if r := get(t, agent, base+path); r.status != http.StatusOK {
			t.Errorf("agent GET %s: %d %s", path, r.status, r.body)
		}
	}
	// What only admins do stays closed to services.
	wantError(t, post(t, agent, base+"/v1/decisions", "", control.DecisionRequest{Scope: store.ScopeIP, Value: "10.0.0.1", Action: store.ActionBlock}),
		http.StatusUnauthorized, "unauthorized")
	wantError(t, get(t, agent, base+"/v1/events"), http.StatusUnauthorized, "unauthorized")
	wantError(t, post(t, agent, base+"/v1/tokens", "", control.TokenRequest{Service: "orders"}), http.StatusUnauthorized, "unauthorized")

	if err := e.store.SetServiceRevoked(t.Context(), "orders", true); err != nil {
		t.Fatal(err)
	}
	wantError(t, get(t, agent, base+"/v1/decisions"), http.StatusForbidden, control.CodeServiceRevoked)
	if evs, _ := e.store.QueryEvents(t.Context(), store.EventFilter{}); len(evs) != 1 {
		t.Errorf("%d events stored, want only a1", len(evs))
	}
}
