// Package ca is the control plane's identity core: the certificate
// authority of a trust domain, which signs X.509-SVIDs from service CSRs,
// and the key set that signs actor tokens, published as a JSON Web Key Set.
//
// The CA is one self-signed ECDSA P-256 root (or an imported root) that
// signs short-lived leaf SVIDs directly: it is marked CA with path length 0
// and, where the trust domain is a DNS-style name, name-constrained to URIs
// of its trust domain. A service's identity is spiffe://<trust domain>/svc/<name>.
//
// The CA takes CSRs only: a service's private key never leaves it. What a
// CSR asks for (subject, SANs, extensions) is ignored; the CA alone decides
// what the SVID says. Join tokens, revocation and transport are the API
// layer's: it authenticates the requester, then calls [CA.SignCSR] or
// [CA.Renew].
//
// Key custody: the CA's private key is kept on disk sealed (AES-256-GCM,
// [SealedKeyFile]) under a key-encryption key that is not kept beside it:
// the operator supplies it at start ([CA.SaveSealed], [LoadSealed]), from a
// file on another volume or a secrets manager's mount, or an environment
// variable. A copy of the CA directory alone gives no key. [CA.Save] and
// [Load] keep the key in the clear ([KeyFile]) for tests and for directories
// from before sealing; [Seal] seals such a directory in place.
package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Defaults and bounds of the CA.
const (
	DefaultRootLifetime = 10 * 365 * 24 * time.Hour // root certificate validity when Config.Lifetime is 0
	MinRootLifetime     = time.Hour
	DefaultSVIDTTL      = time.Hour // SVID lifetime when SignCSR is given 0

	// backdate is how far before issuance certificates become valid, so that
	// a peer whose clock is a little behind accepts them at once.
	backdate = time.Minute
)

// Files that Save writes and Load reads in a CA directory.
const (
	CertFile        = "ca.crt"       // the root certificate, PEM, 0644
	KeyFile         = "ca.key"       // its private key, PKCS #8 PEM, 0600
	TrustDomainFile = "trust-domain" // the trust domain name and a newline, 0644
)

// Config configures Generate. The zero value is a good root.
type Config struct {
	// Lifetime is how long the root is valid; 0 means DefaultRootLifetime.
	// SVIDs never outlive it.
	Lifetime time.Duration
	// CommonName of the root; "" means "Rampart CA <trust domain>".
	CommonName string
}

// CA is the certificate authority of one trust domain. It is immutable and
// safe for concurrent use.
type CA struct {
	td      spiffeid.TrustDomain
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	bundle  *x509bundle.Bundle // private: callers get clones
	now     func() time.Time
}

// Generate creates a CA for td with a new ECDSA P-256 root key.
func Generate(td spiffeid.TrustDomain, cfg Config) (*CA, error) {
	if td.IsZero() {
		return nil, errors.New("ca: generate: trust domain is empty")
	}
	lifetime := cfg.Lifetime
	switch {
	case lifetime == 0:
		lifetime = DefaultRootLifetime
	case lifetime < MinRootLifetime:
		return nil, fmt.Errorf("ca: generate: Config.Lifetime %v is shorter than %v", lifetime, MinRootLifetime)
	}
	cn := cfg.CommonName
	if cn == "" {
		cn = "Rampart CA " + td.Name()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("ca: generate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Rampart"}, CommonName: cn},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true, // signs leaves only
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{td.ID().URL()},
	}
	// Name constraints make the root useless for any other trust domain,
	// should it ever be trusted beyond this one. Go's verifier refuses URIs
	// whose host is an IP address under a URI constraint, so a trust domain
	// named like an IP address goes without.
	if net.ParseIP(td.Name()) == nil {
		tmpl.PermittedURIDomains = []string{td.Name()}
		tmpl.PermittedDNSDomainsCritical = true
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca: generate root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: generate root: %w", err)
	}
	c, err := newCA(td, cert, key, time.Now)
	if err != nil {
		return nil, fmt.Errorf("ca: generate: %w", err)
	}
	return c, nil
}

// Import makes a CA for td from an existing root: a self-signed CA
// certificate (one PEM CERTIFICATE block) and its private key (PEM: PKCS #8,
// SEC 1 "EC PRIVATE KEY" or PKCS #1 "RSA PRIVATE KEY"; not encrypted). The
// key may be ECDSA P-256 or P-384, Ed25519, or RSA of 2048 bits or more. If
// the certificate carries a SPIFFE ID, it must be td's. Import checks that
// the key matches the certificate, that the root is valid now, and that an
// SVID it signs verifies (name constraints and path length included).
func Import(td spiffeid.TrustDomain, certPEM, keyPEM []byte) (*CA, error) {
	ca, err := importCA(td, certPEM, keyPEM, time.Now)
	if err != nil {
		return nil, fmt.Errorf("ca: import: %w", err)
	}
	return ca, nil
}

func importCA(td spiffeid.TrustDomain, certPEM, keyPEM []byte, now func() time.Time) (*CA, error) {
	if td.IsZero() {
		return nil, errors.New("trust domain is empty")
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if err := checkSigningKey(key.Public()); err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, errors.New("private key does not match the certificate's public key")
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, errors.New("certificate is not a CA certificate (basic constraints CA:true missing)")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("certificate's key usage does not allow signing certificates")
	}
	if !bytes.Equal(cert.RawIssuer, cert.RawSubject) {
		return nil, errors.New("certificate is not self-signed: import a root, not an intermediate")
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("certificate's self-signature does not verify (corrupted or tampered with?): %w", err)
	}
	if len(cert.URIs) > 0 {
		id, err := x509svid.IDFromCert(cert)
		if err != nil {
			return nil, fmt.Errorf("certificate's URI SAN: %w", err)
		}
		if id.TrustDomain() != td {
			return nil, fmt.Errorf("certificate is for trust domain %q, not %q", id.TrustDomain().Name(), td.Name())
		}
	}
	return newCA(td, cert, key, now)
}

// newCA checks that the root is valid now and works: an SVID it signs for a
// throwaway key verifies against its bundle.
func newCA(td spiffeid.TrustDomain, cert *x509.Certificate, key crypto.Signer, now func() time.Time) (*CA, error) {
	c := &CA{
		td:      td,
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		key:     key,
		bundle:  x509bundle.FromX509Authorities(td, []*x509.Certificate{cert}),
		now:     now,
	}
	t := now()
	if t.Before(cert.NotBefore) || !t.Before(cert.NotAfter) {
		return nil, fmt.Errorf("%w (valid from %s to %s); generate or import a new root", ErrCAExpired,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	probe, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	const probeService = "ca-self-check"
	svid, err := c.sign(probe.Public(), probeService, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("self-check: %w", err)
	}
	id, _, err := x509svid.Verify(svid, c.bundle, x509svid.WithTime(t))
	if err != nil {
		return nil, fmt.Errorf("self-check: an SVID signed by this root does not verify against it: %w", err)
	}
	if want := c.mustServiceID(probeService); id != want {
		return nil, fmt.Errorf("self-check: SVID has SPIFFE ID %s, want %s", id, want)
	}
	return c, nil
}

// Load reads a CA saved by Save from dir. It refuses a private key file that
// group or others can read, a key that does not match the certificate, and
// a certificate or trust domain that disagree.
func Load(dir string) (*CA, error) {
	c, err := load(dir, time.Now)
	if err != nil {
		return nil, fmt.Errorf("ca: load %s: %w", dir, err)
	}
	return c, nil
}

func load(dir string, now func() time.Time) (*CA, error) {
	td, certPEM, err := readPublic(dir)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile(filepath.Join(dir, KeyFile), true)
	if err != nil {
		return nil, err
	}
	return importCA(td, certPEM, keyPEM, now)
}

// readPublic reads the trust domain and the root certificate's PEM from
// dir: what a CA directory holds besides the key, however the key is kept.
func readPublic(dir string) (spiffeid.TrustDomain, []byte, error) {
	tdText, err := readFile(filepath.Join(dir, TrustDomainFile), false)
	if err != nil {
		return spiffeid.TrustDomain{}, nil, err
	}
	td, err := spiffeid.TrustDomainFromString(strings.TrimSpace(string(tdText)))
	if err != nil {
		return spiffeid.TrustDomain{}, nil, fmt.Errorf("%s: %w", TrustDomainFile, err)
	}
	certPEM, err := readFile(filepath.Join(dir, CertFile), false)
	if err != nil {
		return spiffeid.TrustDomain{}, nil, err
	}
	return td, certPEM, nil
}

// Save writes the CA into dir, creating it with mode 0700 if needed: the
// certificate (CertFile), the private key (KeyFile, mode 0600) and the trust
// domain (TrustDomainFile). It refuses a dir that group or others can enter
// and never overwrites: if a file is already there, Save writes nothing.
func (c *CA) Save(dir string) error {
	if err := privateDir(dir); err != nil {
		return fmt.Errorf("ca: save: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return fmt.Errorf("ca: save: %w", err)
	}
	err = writeNewFiles(dir, []newFile{
		{KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		{CertFile, c.certPEM, 0o644},
		{TrustDomainFile, []byte(c.td.Name() + "\n"), 0o644},
	})
	if err != nil {
		return fmt.Errorf("ca: save: %w", err)
	}
	return nil
}

// TrustDomain returns the CA's trust domain.
func (c *CA) TrustDomain() spiffeid.TrustDomain { return c.td }

// Certificate returns the root certificate. It must not be modified.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// Bundle returns the X.509 trust bundle of the trust domain: the root
// certificate, as go-spiffe's bundle type. Each call returns a new bundle.
func (c *CA) Bundle() *x509bundle.Bundle { return c.bundle.Clone() }

// BundlePEM returns the X.509 trust bundle as PEM (CERTIFICATE blocks), the
// form x509bundle.Parse reads.
func (c *CA) BundlePEM() []byte { return bytes.Clone(c.certPEM) }

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("certificate: no PEM block found")
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certificate: PEM block is %q, want CERTIFICATE", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("certificate: more than one PEM block (give the root certificate alone)")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return cert, nil
}

func parseKeyPEM(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("private key: no PEM block found")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("private key: more than one PEM block")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return nil, errors.New("private key: encrypted keys are not supported; decrypt it first")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("private key: PEM block is %q, want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key: %T cannot sign", key)
	}
	return signer, nil
}

// checkSigningKey accepts the keys a root may have.
func checkSigningKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ECDSA curve %s not supported (want P-256 or P-384)", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits, want at least %d", k.N.BitLen(), minRSABits)
		}
	default:
		return fmt.Errorf("key type %T not supported", pub)
	}
	return nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
