package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/rampartsec/rampart/internal/control"
)

// call sends a request to the server at addr and decodes a 2xx JSON answer
// into v.
func (cp *controlPlane) call(t *testing.T, c *http.Client, addr, method, path, auth string, body, v any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, "https://"+addr+path, r)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// joinGateway joins the service "gateway" through the server at addr and
// returns a client that presents its SVID.
func (cp *controlPlane) joinGateway(t *testing.T, addr string) *http.Client {
	t.Helper()
	admin := cp.httpClient(t)
	var tok control.TokenResponse
	cp.call(t, admin, addr, "POST", "/v1/tokens", cp.token, control.TokenRequest{Service: "gateway"}, &tok)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	var svid control.SVIDResponse
	cp.call(t, admin, addr, "POST", "/v1/svid", "", control.SVIDRequest{
		Token: tok.Token, Service: "gateway", CSR: base64.StdEncoding.EncodeToString(csr),
	}, &svid)
	block, _ := pem.Decode([]byte(svid.SVIDPEM))
	tr := admin.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{block.Bytes}, PrivateKey: key}}
	return &http.Client{Transport: tr}
}

func TestTwoServersPublishTheSameActorKeysAndRotateThem(t *testing.T) {
	dsn := postgresDSN(t)
	a := initControlPlane(t)
	b := new(controlPlane)
	*b = *a // the same data directory: the same CA, KEK and admin token
	schedule := []string{"-postgres", dsn, "-actor-key-rotation", "1s", "-actor-key-publish-ahead", "300ms"}
	stopA := a.serve(t, schedule...)
	defer stopA()
	stopB := b.serve(t, schedule...)
	defer stopB()

	client := a.httpClient(t)
	jwks := func(cp *controlPlane) []byte {
		var bundle control.Bundle
		cp.call(t, client, cp.addr, "GET", "/v1/bundle", "", nil, &bundle)
		return bundle.JWKS
	}
	kids := func(data []byte) []string {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(data, &set); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.KeyID)
		}
		return out
	}

	// A gateway joined through A gets the signing key from B; its token
	// verifies against A's JWKS.
	gateway := b.joinGateway(t, a.addr)
	var key control.ActorKeyResponse
	b.call(t, gateway, b.addr, "GET", "/v1/actor-key", "", nil, &key)
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(key.JWK, &jwk); err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: jwk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: "user-7", Expiry: jwt.NewNumericDate(time.Now().Add(time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	json.Unmarshal(jwks(a), &set)
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.Claims
	if ks := set.Key(key.KeyID); len(ks) != 1 || parsed.Claims(ks[0].Key, &claims) != nil || claims.Subject != "user-7" {
		t.Fatalf("a token signed with B's key does not verify against A's JWKS (kid %s)", key.KeyID)
	}

	// Both servers rotate on one schedule: the key set grows by one key
	// per rotation, whoever took the step, and both publish it.
	first := kids(jwks(a))
	deadline := time.Now().Add(60 * time.Second)
	for len(kids(jwks(b))) < len(first)+2 {
		if time.Now().After(deadline) {
			t.Fatalf("no two rotations within 60 s on a 1 s schedule: %v then %v", first, kids(jwks(b)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopA()
	stopB()
	a.stop = a.serve(t, "-postgres", dsn, "-actor-key-rotation", "0")
	defer a.stop()
	b.stop = b.serve(t, "-postgres", dsn, "-actor-key-rotation", "0")
	defer b.stop()
	ja, jb := jwks(a), jwks(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("the servers publish different JWKS:\nA %s\nB %s", ja, jb)
	}
	if k := kids(ja); len(k) < len(first)+2 || !strings.Contains(strings.Join(k, " "), first[len(first)-1]) {
		t.Errorf("JWKS kids %v after two rotations from %v: want the new keys and the first, still in its overlap", k, first)
	}
}

func TestServerRefusesABadKeySchedule(t *testing.T) {
	var out, errOut strings.Builder
	for _, args := range [][]string{
		{"-actor-key-rotation", "-1s"},
		{"-actor-key-rotation", "1m", "-actor-key-publish-ahead", "1m"},
		{"-actor-key-publish-ahead", "0s"},
	} {
		var ue usageError
		err := run(t.Context(), append([]string{"server", "-data", t.TempDir()}, args...), &out, &errOut)
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "-actor-key") {
			t.Errorf("server %v: %v, want a usage error naming the flag", args, err)
		}
	}
}
