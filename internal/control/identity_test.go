package control_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

func newCSR(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "admin"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func parsePEMCerts(t *testing.T, data string) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	rest := []byte(data)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		t.Fatalf("no certificate in %q", data)
	}
	return certs
}

func (e *env) joinToken(t *testing.T, service, ttl string) string {
	t.Helper()
	return decode[control.TokenResponse](t, e.do(t, "POST", "/v1/tokens", control.TokenRequest{Service: service, TTL: ttl}), http.StatusCreated).Token
}

// join posts to /v1/svid without the admin token, as a joining service does.
func (e *env) join(t *testing.T, token, service, csr string) response {
	t.Helper()
	return e.doWith(t, "POST", "/v1/svid", control.SVIDRequest{Token: token, Service: service, CSR: csr}, "", "application/json")
}

func TestAValidJoinTokenGetsAnSVIDThatVerifiesAgainstTheBundle(t *testing.T) {
	e := newEnv(t)
	resp := decode[control.SVIDResponse](t, e.join(t, e.joinToken(t, "payments", ""), "payments", newCSR(t)), http.StatusCreated)

	td := spiffeid.RequireTrustDomainFromString("rampart.test")
	bundle, err := x509bundle.Parse(td, []byte(resp.BundlePEM))
	if err != nil {
		t.Fatal(err)
	}
	chain := parsePEMCerts(t, resp.SVIDPEM)
	id, _, err := x509svid.Verify(chain, bundle)
	if err != nil {
		t.Fatalf("SVID does not verify against the bundle: %v", err)
	}
	if want := "spiffe://rampart.test/svc/payments"; id.String() != want || resp.SPIFFEID != want {
		t.Errorf("SPIFFE ID %s (response says %s), want %s", id, resp.SPIFFEID, want)
	}
	if d := time.Until(resp.Expires); d < 55*time.Minute || d > 61*time.Minute {
		t.Errorf("SVID expires in %v, want about an hour", d)
	}

	// The bundle endpoint, without authentication, serves the same roots and
	// the actor-token keys.
	b := decode[control.Bundle](t, e.doWith(t, "GET", "/v1/bundle", nil, "", ""), http.StatusOK)
	if b.TrustDomain != "rampart.test" || b.X509PEM != resp.BundlePEM {
		t.Errorf("bundle %+v", b)
	}
	var jwks struct{ Keys []map[string]any }
	if err := json.Unmarshal(b.JWKS, &jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0]["kid"] == "" {
		t.Errorf("JWKS %s: %v", b.JWKS, err)
	}
}

func TestRefusedJoinTokensGetDistinctErrors(t *testing.T) {
	e := newEnv(t)
	csr := newCSR(t)

	used := e.joinToken(t, "api", "")
	decode[control.SVIDResponse](t, e.join(t, used, "api", csr), http.StatusCreated)
	wantError(t, e.join(t, used, "api", csr), http.StatusConflict, control.CodeTokenUsed)

	expired := e.joinToken(t, "api", "1ms")
	time.Sleep(20 * time.Millisecond)
	wantError(t, e.join(t, expired, "api", csr), http.StatusGone, control.CodeTokenExpired)

	forWeb := e.joinToken(t, "web", "")
	wantError(t, e.join(t, forWeb, "api", csr), http.StatusForbidden, control.CodeTokenWrongService)
	// …and the token stays good for its own service.
	decode[control.SVIDResponse](t, e.join(t, forWeb, "web", csr), http.StatusCreated)

	forged, _, _ := store.NewJoinToken() // well formed, never issued
	wantError(t, e.join(t, forged, "api", csr), http.StatusUnauthorized, control.CodeTokenUnknown)
	wantError(t, e.join(t, "rjt_"+strings.Repeat("A", 10), "api", csr), http.StatusUnauthorized, control.CodeTokenUnknown)
	eb := wantError(t, e.join(t, "", "api", csr), http.StatusBadRequest, "invalid")
	if eb.Field != "token" {
		t.Errorf("empty token: field %q", eb.Field)
	}
}

func TestABadCSRLeavesTheTokenUsable(t *testing.T) {
	e := newEnv(t)
	tok := e.joinToken(t, "api", "")
	for _, csr := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte("garbage"))} {
		eb := wantError(t, e.join(t, tok, "api", csr), http.StatusBadRequest, "invalid")
		if eb.Field != "csr" {
			t.Errorf("csr %q: field %q", csr, eb.Field)
		}
	}
	eb := wantError(t, e.join(t, tok, "API", newCSR(t)), http.StatusBadRequest, "invalid")
	if eb.Field != "service" {
		t.Errorf("bad service name: field %q", eb.Field)
	}
	decode[control.SVIDResponse](t, e.join(t, tok, "api", newCSR(t)), http.StatusCreated)
}

func TestARevokedServiceCannotJoin(t *testing.T) {
	e := newEnv(t)
	tok := e.joinToken(t, "api", "")
	if err := e.store.SetServiceRevoked(t.Context(), "api", true); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.join(t, tok, "api", newCSR(t)), http.StatusForbidden, control.CodeServiceRevoked)
}
