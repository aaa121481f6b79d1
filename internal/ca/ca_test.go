package ca_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func TestGenerate(t *testing.T) {
	c := newCA(t, ca.Config{})
	root := c.Certificate()
	if c.TrustDomain() != td {
		t.Errorf("TrustDomain %v, want %v", c.TrustDomain(), td)
	}
	if !root.IsCA || !root.BasicConstraintsValid || root.MaxPathLen != 0 || !root.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA %v valid %v MaxPathLen %d zero %v; want CA with path length 0",
			root.IsCA, root.BasicConstraintsValid, root.MaxPathLen, root.MaxPathLenZero)
	}
	if root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsage %v, want certSign|cRLSign", root.KeyUsage)
	}
	if k, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("root key %T, want ECDSA P-256", root.PublicKey)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if len(root.URIs) != 1 || root.URIs[0].String() != "spiffe://rampart.test" {
		t.Errorf("URIs %v, want [spiffe://rampart.test]", root.URIs)
	}
	if len(root.PermittedURIDomains) != 1 || root.PermittedURIDomains[0] != "rampart.test" || !root.PermittedDNSDomainsCritical {
		t.Errorf("name constraints %v (critical %v), want critical [rampart.test]", root.PermittedURIDomains, root.PermittedDNSDomainsCritical)
	}
	if life := root.NotAfter.Sub(time.Now()); life < ca.DefaultRootLifetime-time.Minute || life > ca.DefaultRootLifetime {
		t.Errorf("root valid for %v more, want about %v", life, ca.DefaultRootLifetime)
	}

	t.Run("refuses an empty trust domain", func(t *testing.T) {
		if _, err := ca.Generate(spiffeid.TrustDomain{}, ca.Config{}); err == nil || !strings.Contains(err.Error(), "trust domain") {
			t.Errorf("err = %v, want one naming the trust domain", err)
		}
	})
	t.Run("refuses a lifetime under an hour", func(t *testing.T) {
		if _, err := ca.Generate(td, ca.Config{Lifetime: time.Minute}); err == nil || !strings.Contains(err.Error(), "Config.Lifetime") {
			t.Errorf("err = %v, want one naming Config.Lifetime", err)
		}
	})
}

func TestTrustDomains(t *testing.T) {
	// Name constraints must not break issuance for any trust domain form.
	for _, name := range []string{"rampart.local", "localhost", "my_org.example", "10.0.0.1", "a-b.c-d.e"} {
		t.Run(name+" issues SVIDs that verify", func(t *testing.T) {
			td := spiffeid.RequireTrustDomainFromString(name)
			c, err := ca.Generate(td, ca.Config{})
			if err != nil {
				t.Fatal(err)
			}
			svid, err := c.SignCSR(csr(t, p256(t), nil), "orders", 0)
			if err != nil {
				t.Fatal(err)
			}
			id, _, err := x509svid.Verify(svid, c.Bundle())
			if err != nil {
				t.Fatal(err)
			}
			if want := "spiffe://" + name + "/svc/orders"; id.String() != want {
				t.Errorf("ID %s, want %s", id, want)
			}
		})
	}
}

func TestNameConstraints(t *testing.T) {
	// A leaf that the root signed for another trust domain (as a bug or a
	// stolen key might) fails verification with the root's name constraint.
	// The test signs it directly with the root's key, bypassing SignCSR.
	dir := t.TempDir()
	c := newCA(t, ca.Config{})
	if err := c.Save(filepath.Join(dir, "ca")); err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca", ca.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	rootKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := url.Parse("spiffe://other.test/svc/orders")
	leafKey := p256(t)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(7),
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		URIs:         []*url.URL{other},
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}, c.Certificate(), leafKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.Certificate())
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	var invalid x509.CertificateInvalidError
	if !errors.As(err, &invalid) || invalid.Reason != x509.CANotAuthorizedForThisName {
		t.Fatalf("Verify of a leaf for another trust domain: %v, want CANotAuthorizedForThisName", err)
	}
}

func TestSaveLoad(t *testing.T) {
	c := newCA(t, ca.Config{})
	dir := filepath.Join(t.TempDir(), "data", "ca")
	if err := c.Save(dir); err != nil {
		t.Fatalf("Save: %v", err)
	}
	t.Run("the directory is 0700 and the key 0600", func(t *testing.T) {
		for path, want := range map[string]os.FileMode{
			dir:                                    0o700 | os.ModeDir,
			filepath.Join(dir, ca.KeyFile):         0o600,
			filepath.Join(dir, ca.CertFile):        0o644,
			filepath.Join(dir, ca.TrustDomainFile): 0o644,
		} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != want {
				t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 3 {
			t.Errorf("directory holds %d entries, want 3 (no temporary files left)", len(entries))
		}
	})
	t.Run("Load gives back a working CA", func(t *testing.T) {
		loaded, err := ca.Load(dir)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if !loaded.Certificate().Equal(c.Certificate()) || loaded.TrustDomain() != td {
			t.Fatal("loaded CA differs from the saved one")
		}
		svid, err := loaded.SignCSR(csr(t, p256(t), nil), "orders", 0)
		if err != nil {
			t.Fatal(err)
		}
		// Verified against the original's bundle: same root, same key.
		if _, _, err := x509svid.Verify(svid, c.Bundle()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Save never overwrites", func(t *testing.T) {
		before, _ := os.ReadFile(filepath.Join(dir, ca.KeyFile))
		other := newCA(t, ca.Config{})
		if err := other.Save(dir); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("Save over an existing CA: %v, want already exists", err)
		}
		after, _ := os.ReadFile(filepath.Join(dir, ca.KeyFile))
		if !bytes.Equal(before, after) {
			t.Fatal("Save overwrote the key")
		}
	})
	t.Run("Save refuses a directory others can enter", func(t *testing.T) {
		open := filepath.Join(t.TempDir(), "open")
		if err := os.Mkdir(open, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(open, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := c.Save(open); err == nil || !strings.Contains(err.Error(), "0700") {
			t.Fatalf("err = %v, want one asking for 0700", err)
		}
		if entries, _ := os.ReadDir(open); len(entries) != 0 {
			t.Errorf("Save wrote %d files into the refused directory", len(entries))
		}
	})
}

func TestLoadRefuses(t *testing.T) {
	c := newCA(t, ca.Config{})
	other := newCA(t, ca.Config{})
	otherTD, err := ca.Generate(spiffeid.RequireTrustDomainFromString("other.test"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	files := func(t *testing.T, c *ca.CA) (dir string, certPEM, keyPEM []byte) {
		dir = filepath.Join(t.TempDir(), "ca")
		if err := c.Save(dir); err != nil {
			t.Fatal(err)
		}
		certPEM, _ = os.ReadFile(filepath.Join(dir, ca.CertFile))
		keyPEM, _ = os.ReadFile(filepath.Join(dir, ca.KeyFile))
		return dir, certPEM, keyPEM
	}
	_, otherCert, otherKey := files(t, other)
	_, otherTDCert, otherTDKey := files(t, otherTD)

	// tamper edits the certificate's DER and re-encodes it.
	tamper := func(certPEM []byte, edit func(der []byte)) []byte {
		block, _ := pem.Decode(certPEM)
		der := bytes.Clone(block.Bytes)
		edit(der)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}

	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string, certPEM, keyPEM []byte)
		want   string
	}{
		{"a key readable by others", func(t *testing.T, dir string, _, _ []byte) {
			os.Chmod(filepath.Join(dir, ca.KeyFile), 0o644)
		}, "want 0600"},
		{"another CA's key", func(t *testing.T, dir string, _, _ []byte) {
			write(t, filepath.Join(dir, ca.KeyFile), otherKey, 0o600)
		}, "does not match"},
		{"another CA's certificate", func(t *testing.T, dir string, _, _ []byte) {
			write(t, filepath.Join(dir, ca.CertFile), otherCert, 0o644)
		}, "does not match"},
		{"a certificate and key of another trust domain", func(t *testing.T, dir string, _, _ []byte) {
			write(t, filepath.Join(dir, ca.CertFile), otherTDCert, 0o644)
			write(t, filepath.Join(dir, ca.KeyFile), otherTDKey, 0o600)
		}, `trust domain "other.test", not "rampart.test"`},
		{"a certificate with an altered extension", func(t *testing.T, dir string, certPEM, _ []byte) {
			// The name constraint's "rampart.test" is the last occurrence.
			write(t, filepath.Join(dir, ca.CertFile), tamper(certPEM, func(der []byte) {
				i := bytes.LastIndex(der, []byte("rampart.test"))
				der[i] = 'x'
			}), 0o644)
		}, "self-signature does not verify"},
		{"a certificate with an altered signature", func(t *testing.T, dir string, certPEM, _ []byte) {
			write(t, filepath.Join(dir, ca.CertFile), tamper(certPEM, func(der []byte) {
				der[len(der)-2] ^= 0x01
			}), 0o644)
		}, "signature"},
		{"a truncated key", func(t *testing.T, dir string, _, keyPEM []byte) {
			write(t, filepath.Join(dir, ca.KeyFile), keyPEM[:len(keyPEM)/2], 0o600)
		}, "private key"},
		{"a missing key", func(t *testing.T, dir string, _, _ []byte) {
			os.Remove(filepath.Join(dir, ca.KeyFile))
		}, "no such file"},
		{"an unreadable trust domain", func(t *testing.T, dir string, _, _ []byte) {
			write(t, filepath.Join(dir, ca.TrustDomainFile), []byte("Not A Domain!\n"), 0o644)
		}, ca.TrustDomainFile},
		{"two certificates", func(t *testing.T, dir string, certPEM, _ []byte) {
			write(t, filepath.Join(dir, ca.CertFile), append(bytes.Clone(certPEM), otherCert...), 0o644)
		}, "more than one PEM block"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			dir, certPEM, keyPEM := files(t, c)
			tc.change(t, dir, certPEM, keyPEM)
			loaded, err := ca.Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if loaded != nil {
				t.Error("Load returned a CA with its error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func write(t *testing.T, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
}

// selfSigned makes a root certificate from tmpl for key, PEM-encoded with
// its PKCS #8 key.
func selfSigned(t *testing.T, tmpl *x509.Certificate, key crypto.Signer) (certPEM, keyPEM []byte) {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(1)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func rootTemplate() *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: "Corp Root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
}

func TestImport(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a root without a SPIFFE ID, then saved and loaded", func(t *testing.T) {
		certPEM, keyPEM := selfSigned(t, rootTemplate(), p384)
		c, err := ca.Import(td, certPEM, keyPEM)
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		svid, err := c.SignCSR(csr(t, p256(t), nil), "orders", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := x509svid.Verify(svid, c.Bundle()); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "ca")
		if err := c.Save(dir); err != nil {
			t.Fatal(err)
		}
		loaded, err := ca.Load(dir)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if loaded.TrustDomain() != td {
			t.Errorf("loaded trust domain %v, want %v", loaded.TrustDomain(), td)
		}
	})
	t.Run("an Ed25519 root in a SEC 1 or PKCS #8 file", func(t *testing.T) {
		certPEM, keyPEM := selfSigned(t, rootTemplate(), ed(t))
		if _, err := ca.Import(td, certPEM, keyPEM); err != nil {
			t.Fatalf("Import: %v", err)
		}
		ecKey := p256(t)
		certPEM, _ = selfSigned(t, rootTemplate(), ecKey)
		sec1, err := x509.MarshalECPrivateKey(ecKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ca.Import(td, certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})); err != nil {
			t.Fatalf("Import SEC 1: %v", err)
		}
	})

	intermediateCert := func(t *testing.T) ([]byte, []byte) {
		parent := newCA(t, ca.Config{})
		dir := filepath.Join(t.TempDir(), "ca")
		if err := parent.Save(dir); err != nil {
			t.Fatal(err)
		}
		pk, _ := os.ReadFile(filepath.Join(dir, ca.KeyFile))
		block, _ := pem.Decode(pk)
		parentKey, _ := x509.ParsePKCS8PrivateKey(block.Bytes)
		key := p256(t)
		tmpl := rootTemplate()
		tmpl.SerialNumber = big.NewInt(2)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.Certificate(), key.Public(), parentKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	}

	for _, tc := range []struct {
		name string
		make func(t *testing.T) (certPEM, keyPEM []byte)
		want string
	}{
		{"a leaf certificate", func(t *testing.T) ([]byte, []byte) {
			tmpl := rootTemplate()
			tmpl.IsCA = false
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature
			return selfSigned(t, tmpl, p256(t))
		}, "not a CA certificate"},
		{"a CA that may not sign certificates", func(t *testing.T) ([]byte, []byte) {
			tmpl := rootTemplate()
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature
			return selfSigned(t, tmpl, p256(t))
		}, "does not allow signing certificates"},
		{"an expired root", func(t *testing.T) ([]byte, []byte) {
			tmpl := rootTemplate()
			tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
			return selfSigned(t, tmpl, p256(t))
		}, "expired"},
		{"an intermediate", intermediateCert, "not self-signed"},
		{"a root constrained to another trust domain", func(t *testing.T) ([]byte, []byte) {
			tmpl := rootTemplate()
			tmpl.PermittedURIDomains = []string{"other.test"}
			return selfSigned(t, tmpl, p256(t))
		}, "self-check"},
		{"a root for another SPIFFE trust domain", func(t *testing.T) ([]byte, []byte) {
			tmpl := rootTemplate()
			u, _ := url.Parse("spiffe://other.test")
			tmpl.URIs = []*url.URL{u}
			return selfSigned(t, tmpl, p256(t))
		}, `"other.test"`},
		{"a P-521 root", func(t *testing.T) ([]byte, []byte) {
			k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return selfSigned(t, rootTemplate(), k)
		}, "P-521"},
		{"an encrypted key", func(t *testing.T) ([]byte, []byte) {
			certPEM, _ := selfSigned(t, rootTemplate(), p256(t))
			return certPEM, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})
		}, "encrypted"},
		{"a public key instead of a private key", func(t *testing.T) ([]byte, []byte) {
			k := p256(t)
			certPEM, _ := selfSigned(t, rootTemplate(), k)
			der, _ := x509.MarshalPKIXPublicKey(k.Public())
			return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		}, `"PUBLIC KEY"`},
		{"no certificate at all", func(t *testing.T) ([]byte, []byte) {
			_, keyPEM := selfSigned(t, rootTemplate(), p256(t))
			return []byte("hello"), keyPEM
		}, "no PEM block"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			certPEM, keyPEM := tc.make(t)
			c, err := ca.Import(td, certPEM, keyPEM)
			if err == nil {
				t.Fatal("Import succeeded")
			}
			if c != nil {
				t.Error("Import returned a CA with its error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to say %q", err, tc.want)
			}
		})
	}
	t.Run("refuses an empty trust domain", func(t *testing.T) {
		certPEM, keyPEM := selfSigned(t, rootTemplate(), p256(t))
		if _, err := ca.Import(spiffeid.TrustDomain{}, certPEM, keyPEM); err == nil || !strings.Contains(err.Error(), "trust domain") {
			t.Errorf("err = %v, want one naming the trust domain", err)
		}
	})
}
