package ca_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func TestSignCSR(t *testing.T) {
	c := newCA(t, ca.Config{})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The bundle as a service receives it: PEM, parsed by go-spiffe.
	bundle, err := x509bundle.Parse(td, c.BundlePEM())
	if err != nil {
		t.Fatalf("parse BundlePEM: %v", err)
	}
	if !bundle.Equal(c.Bundle()) {
		t.Fatal("BundlePEM and Bundle disagree")
	}
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"P-256", p256(t)},
		{"Ed25519", ed(t)},
		{"P-384", p384},
		{"RSA-2048", rsaKey},
	} {
		t.Run("an SVID from a "+tc.name+" CSR verifies and names the service", func(t *testing.T) {
			before := time.Now()
			svid, err := c.SignCSR(csr(t, tc.key, nil), "orders", 0)
			if err != nil {
				t.Fatalf("SignCSR: %v", err)
			}
			after := time.Now()
			if len(svid) != 1 {
				t.Fatalf("chain of %d certificates, want the leaf alone", len(svid))
			}
			id, chains, err := x509svid.Verify(svid, bundle)
			if err != nil {
				t.Fatalf("x509svid.Verify: %v", err)
			}
			if want := spiffeid.RequireFromString("spiffe://rampart.test/svc/orders"); id != want {
				t.Errorf("SPIFFE ID %s, want %s", id, want)
			}
			if len(chains) != 1 || len(chains[0]) != 2 || !chains[0][1].Equal(c.Certificate()) {
				t.Errorf("verified chains %v, want leaf → root", chains)
			}
			leaf := svid[0]
			checkLeaf(t, leaf, "orders")
			if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.key.Public()) {
				t.Error("SVID's public key is not the CSR's")
			}
			if lo, hi := before.Add(-ca.Backdate-time.Second), after.Add(-ca.Backdate); leaf.NotBefore.Before(lo) || leaf.NotBefore.After(hi) {
				t.Errorf("NotBefore %v, want issuance time minus %v", leaf.NotBefore, ca.Backdate)
			}
			if lo, hi := before.Add(ca.DefaultSVIDTTL-time.Second), after.Add(ca.DefaultSVIDTTL); leaf.NotAfter.Before(lo) || leaf.NotAfter.After(hi) {
				t.Errorf("NotAfter %v, want issuance time plus %v", leaf.NotAfter, ca.DefaultSVIDTTL)
			}
		})
	}
}

// checkLeaf checks what an SVID must say and nothing else.
func checkLeaf(t *testing.T, leaf *x509.Certificate, service string) {
	t.Helper()
	want := serviceID(t, service).String()
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != want {
		t.Errorf("URI SANs %v, want exactly [%s]", leaf.URIs, want)
	}
	if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("other SANs: DNS %v, IP %v, email %v; want none", leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses)
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Errorf("IsCA %v, BasicConstraintsValid %v; want a leaf with valid basic constraints", leaf.IsCA, leaf.BasicConstraintsValid)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage %v, want digitalSignature only", leaf.KeyUsage)
	}
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(leaf.ExtKeyUsage, want) || len(leaf.UnknownExtKeyUsage) != 0 {
		t.Errorf("ExtKeyUsage %v (unknown %v), want %v", leaf.ExtKeyUsage, leaf.UnknownExtKeyUsage, want)
	}
	if n := leaf.SerialNumber; n.Sign() <= 0 || n.BitLen() > 128 || n.BitLen() < 64 {
		t.Errorf("serial %v (%d bits), want random positive 128-bit", n, n.BitLen())
	}
	for _, ext := range leaf.Extensions {
		switch {
		case ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 15}), // key usage
			ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 37}), // ext key usage
			ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 19}), // basic constraints
			ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}), // subject alt name
			ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 35}): // authority key id
		default:
			t.Errorf("unexpected extension %v", ext.Id)
		}
	}
}

func TestSignCSRIgnoresRequestedIdentity(t *testing.T) {
	c := newCA(t, ca.Config{})
	evil := func(s string) *url.URL { u, _ := url.Parse(s); return u }
	caTrue, err := asn1.Marshal(struct {
		IsCA bool `asn1:"optional"`
	}{true})
	if err != nil {
		t.Fatal(err)
	}
	req := &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "admin", Organization: []string{"Evil"}},
		URIs:           []*url.URL{evil("spiffe://rampart.test/svc/admin"), evil("spiffe://other.test/svc/orders")},
		DNSNames:       []string{"admin.internal", "*.rampart.test"},
		EmailAddresses: []string{"root@rampart.test"},
		IPAddresses:    []net.IP{net.ParseIP("10.0.0.1")},
		// Ask to be a CA too.
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: caTrue}},
	}
	svid, err := c.SignCSR(csr(t, p256(t), req), "orders", 0)
	if err != nil {
		t.Fatalf("SignCSR: %v", err)
	}
	checkLeaf(t, svid[0], "orders")
	if cn := svid[0].Subject.CommonName; cn != "orders" {
		t.Errorf("subject CN %q, want the service name, not the CSR's", cn)
	}
	if slices.Contains(svid[0].Subject.Organization, "Evil") {
		t.Errorf("subject %v copied from the CSR", svid[0].Subject)
	}
	id, _, err := x509svid.Verify(svid, c.Bundle())
	if err != nil {
		t.Fatal(err)
	}
	if id != serviceID(t, "orders") {
		t.Errorf("SPIFFE ID %s, want %s", id, serviceID(t, "orders"))
	}
}

func TestSignCSRLifetime(t *testing.T) {
	t.Run("a given ttl sets NotAfter", func(t *testing.T) {
		c := newCA(t, ca.Config{})
		before := time.Now()
		svid, err := c.SignCSR(csr(t, p256(t), nil), "orders", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := svid[0].NotAfter; got.Before(before.Add(29*time.Second)) || got.After(time.Now().Add(30*time.Second)) {
			t.Errorf("NotAfter %v, want now+30s", got)
		}
	})
	t.Run("an SVID never outlives the CA", func(t *testing.T) {
		c := newCA(t, ca.Config{Lifetime: 2 * time.Hour})
		svid, err := c.SignCSR(csr(t, p256(t), nil), "orders", 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := svid[0].NotAfter, c.Certificate().NotAfter; !got.Equal(want) {
			t.Errorf("NotAfter %v, want the CA's %v", got, want)
		}
	})
	t.Run("a negative ttl is refused", func(t *testing.T) {
		c := newCA(t, ca.Config{})
		if _, err := c.SignCSR(csr(t, p256(t), nil), "orders", -time.Second); err == nil || !strings.Contains(err.Error(), "ttl") {
			t.Errorf("err = %v, want one naming the ttl", err)
		}
	})
	t.Run("an expired CA issues nothing", func(t *testing.T) {
		c := newCA(t, ca.Config{Lifetime: time.Hour})
		ca.SetClock(c, func() time.Time { return time.Now().Add(2 * time.Hour) })
		if _, err := c.SignCSR(csr(t, p256(t), nil), "orders", 0); !errors.Is(err, ca.ErrCAExpired) {
			t.Errorf("err = %v, want ErrCAExpired", err)
		}
	})
	t.Run("serial numbers differ", func(t *testing.T) {
		c := newCA(t, ca.Config{})
		der := csr(t, p256(t), nil)
		a, err := c.SignCSR(der, "orders", 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.SignCSR(der, "orders", 0)
		if err != nil {
			t.Fatal(err)
		}
		if a[0].SerialNumber.Cmp(b[0].SerialNumber) == 0 {
			t.Error("two SVIDs with the same serial")
		}
	})
}

func TestSignCSRRefuses(t *testing.T) {
	c := newCA(t, ca.Config{})
	good := csr(t, p256(t), nil)
	badSig := bytes.Clone(good)
	badSig[len(badSig)-3] ^= 0x40 // inside the signature value
	truncated := good[:len(good)/2]
	trailing := append(bytes.Clone(good), 0)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A certificate is not a CSR, even one for the right key.
	certDER := c.Certificate().Raw

	for _, tc := range []struct {
		name    string
		der     []byte
		service string
		want    error
		detail  string
	}{
		{"an empty CSR", nil, "orders", ca.ErrInvalidCSR, "empty"},
		{"garbage", []byte("not a CSR at all"), "orders", ca.ErrInvalidCSR, ""},
		{"a truncated CSR", truncated, "orders", ca.ErrInvalidCSR, ""},
		{"a CSR with trailing bytes", trailing, "orders", ca.ErrInvalidCSR, ""},
		{"a CSR whose signature does not verify", badSig, "orders", ca.ErrInvalidCSR, "signature"},
		{"a certificate instead of a CSR", certDER, "orders", ca.ErrInvalidCSR, ""},
		{"an oversized CSR", make([]byte, ca.MaxCSRSize+1), "orders", ca.ErrInvalidCSR, "at most"},
		{"an RSA-1024 key", csr(t, rsa1024, nil), "orders", ca.ErrUnsupportedKey, "1024 bits"},
		{"a P-521 key", csr(t, p521, nil), "orders", ca.ErrUnsupportedKey, "P-521"},
		{"an empty service name", good, "", ca.ErrInvalidServiceName, "empty"},
		{"an uppercase service name", good, "Orders", ca.ErrInvalidServiceName, "'O'"},
		{"a service name with '_'", good, "my_svc", ca.ErrInvalidServiceName, "'_'"},
		{"a service name with '.'", good, "a.b", ca.ErrInvalidServiceName, "'.'"},
		{"a service name with '/'", good, "svc/admin", ca.ErrInvalidServiceName, "'/'"},
		{"a non-ASCII service name", good, "ordérs", ca.ErrInvalidServiceName, ""},
		{"a 64-byte service name", good, strings.Repeat("a", 64), ca.ErrInvalidServiceName, "64 bytes"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			svid, err := c.SignCSR(tc.der, tc.service, 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if svid != nil {
				t.Errorf("got a certificate with the error")
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("err = %q, want it to say %q", err, tc.detail)
			}
		})
	}
	t.Run("a 63-byte service name is accepted", func(t *testing.T) {
		name := strings.Repeat("a-9", 21)
		svid, err := c.SignCSR(good, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkLeaf(t, svid[0], name)
	})
}

func TestSVIDFromAnotherCA(t *testing.T) {
	ours := newCA(t, ca.Config{})
	theirs := newCA(t, ca.Config{}) // same trust domain name, other key
	svid, err := theirs.SignCSR(csr(t, p256(t), nil), "orders", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("does not verify against our bundle", func(t *testing.T) {
		if _, _, err := x509svid.Verify(svid, ours.Bundle()); err == nil {
			t.Fatal("x509svid.Verify accepted an SVID of another CA")
		}
	})
	t.Run("cannot renew", func(t *testing.T) {
		_, err := ours.Renew(svid, csr(t, p256(t), nil), 0)
		if !errors.Is(err, ca.ErrUntrustedSVID) {
			t.Fatalf("err = %v, want ErrUntrustedSVID", err)
		}
	})
	t.Run("with its CA's certificate as intermediate still cannot renew", func(t *testing.T) {
		chain := []*x509.Certificate{svid[0], theirs.Certificate()}
		if _, err := ours.Renew(chain, csr(t, p256(t), nil), 0); !errors.Is(err, ca.ErrUntrustedSVID) {
			t.Fatalf("err = %v, want ErrUntrustedSVID", err)
		}
	})
}

func TestRenew(t *testing.T) {
	c := newCA(t, ca.Config{})
	current, err := c.SignCSR(csr(t, p256(t), nil), "billing", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("keeps the SPIFFE ID and certifies the new key", func(t *testing.T) {
		newKey := ed(t)
		// The CSR asks for another identity: renewal must not grant it.
		req := &x509.CertificateRequest{URIs: []*url.URL{serviceID(t, "admin").URL()}}
		renewed, err := c.Renew(current, csr(t, newKey, req), 0)
		if err != nil {
			t.Fatalf("Renew: %v", err)
		}
		checkLeaf(t, renewed[0], "billing")
		id, _, err := x509svid.Verify(renewed, c.Bundle())
		if err != nil {
			t.Fatal(err)
		}
		if want := serviceID(t, "billing"); id != want {
			t.Errorf("renewed SPIFFE ID %s, want %s", id, want)
		}
		if !renewed[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(newKey.Public()) {
			t.Error("renewed SVID does not certify the new key")
		}
		if renewed[0].SerialNumber.Cmp(current[0].SerialNumber) == 0 {
			t.Error("renewed SVID has the old serial")
		}
	})
	t.Run("VerifySVID names the service", func(t *testing.T) {
		service, err := c.VerifySVID(current)
		if err != nil || service != "billing" {
			t.Errorf("VerifySVID = %q, %v; want billing", service, err)
		}
	})
	t.Run("an expired SVID cannot renew", func(t *testing.T) {
		late := newCA(t, ca.Config{})
		svid, err := late.SignCSR(csr(t, p256(t), nil), "billing", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ca.SetClock(late, func() time.Time { return svid[0].NotAfter })
		renewed, err := late.Renew(svid, csr(t, p256(t), nil), 0)
		if !errors.Is(err, ca.ErrSVIDExpired) || renewed != nil {
			t.Fatalf("Renew = %v, %v; want ErrSVIDExpired", renewed, err)
		}
		ca.SetClock(late, func() time.Time { return svid[0].NotAfter.Add(-time.Second) })
		if _, err := late.Renew(svid, csr(t, p256(t), nil), 0); err != nil {
			t.Fatalf("one second before expiry: %v", err)
		}
	})
	t.Run("an SVID not yet valid cannot renew", func(t *testing.T) {
		early := newCA(t, ca.Config{})
		svid, err := early.SignCSR(csr(t, p256(t), nil), "billing", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ca.SetClock(early, func() time.Time { return svid[0].NotBefore.Add(-time.Second) })
		if _, err := early.Renew(svid, csr(t, p256(t), nil), 0); !errors.Is(err, ca.ErrSVIDExpired) {
			t.Fatalf("err = %v, want ErrSVIDExpired", err)
		}
	})
	t.Run("an empty chain cannot renew", func(t *testing.T) {
		if _, err := c.Renew(nil, csr(t, p256(t), nil), 0); !errors.Is(err, ca.ErrUntrustedSVID) {
			t.Fatalf("err = %v, want ErrUntrustedSVID", err)
		}
		if _, err := c.Renew([]*x509.Certificate{nil}, csr(t, p256(t), nil), 0); !errors.Is(err, ca.ErrUntrustedSVID) {
			t.Fatalf("err = %v, want ErrUntrustedSVID", err)
		}
	})
	t.Run("the CA's own certificate cannot renew", func(t *testing.T) {
		if _, err := c.Renew([]*x509.Certificate{c.Certificate()}, csr(t, p256(t), nil), 0); !errors.Is(err, ca.ErrUntrustedSVID) {
			t.Fatalf("err = %v, want ErrUntrustedSVID", err)
		}
	})
	t.Run("a bad CSR is refused even with a good SVID", func(t *testing.T) {
		if _, err := c.Renew(current, []byte("junk"), 0); !errors.Is(err, ca.ErrInvalidCSR) {
			t.Fatalf("err = %v, want ErrInvalidCSR", err)
		}
	})
}

func TestServiceFromID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want string // "" means an error
	}{
		{"spiffe://rampart.test/svc/orders", "orders"},
		{"spiffe://other.test/svc/orders", ""},
		{"spiffe://rampart.test/orders", ""},
		{"spiffe://rampart.test/svc/orders/extra", ""},
		{"spiffe://rampart.test/svc/Orders", ""},
		{"spiffe://rampart.test", ""},
	} {
		got, err := ca.ServiceFromID(td, spiffeid.RequireFromString(tc.id))
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("ServiceFromID(%s) = %q, %v; want %q", tc.id, got, err, tc.want)
		}
	}
}
