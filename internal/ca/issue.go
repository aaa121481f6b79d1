package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Limits on what the CA certifies.
const (
	MaxCSRSize        = 64 << 10 // bytes of a DER CSR
	MaxServiceNameLen = 63

	minRSABits = 2048
	maxRSABits = 8192 // larger keys only make verification slow
)

// servicePathPrefix is the SPIFFE ID path of services: spiffe://<td>/svc/<name>.
const servicePathPrefix = "/svc/"

// ValidateServiceName checks a service name: 1 to 63 lowercase ASCII
// letters, digits and '-'. The error wraps ErrInvalidServiceName.
func ValidateServiceName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidServiceName)
	}
	if len(name) > MaxServiceNameLen {
		return fmt.Errorf("%w: %d bytes long, at most %d", ErrInvalidServiceName, len(name), MaxServiceNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("%w: %q has %q at byte %d (want lowercase letters, digits and '-')", ErrInvalidServiceName, name, c, i)
		}
	}
	return nil
}

// ServiceID returns the SPIFFE ID of a service in td:
// spiffe://<td>/svc/<service>.
func ServiceID(td spiffeid.TrustDomain, service string) (spiffeid.ID, error) {
	if err := ValidateServiceName(service); err != nil {
		return spiffeid.ID{}, err
	}
	if td.IsZero() {
		return spiffeid.ID{}, errors.New("ca: trust domain is empty")
	}
	return spiffeid.FromPath(td, servicePathPrefix+service)
}

// ServiceFromID returns the service name in a SPIFFE ID of td; it fails for
// IDs of another trust domain or not of the form spiffe://<td>/svc/<name>.
func ServiceFromID(td spiffeid.TrustDomain, id spiffeid.ID) (string, error) {
	if !id.MemberOf(td) {
		return "", fmt.Errorf("SPIFFE ID %s is not in trust domain %s", id, td.Name())
	}
	service, ok := strings.CutPrefix(id.Path(), servicePathPrefix)
	if !ok {
		return "", fmt.Errorf("SPIFFE ID %s is not a service's (want %s%s<name>)", id, td.IDString(), servicePathPrefix)
	}
	if err := ValidateServiceName(service); err != nil {
		return "", fmt.Errorf("SPIFFE ID %s: %w", id, err)
	}
	return service, nil
}

func (c *CA) mustServiceID(service string) spiffeid.ID {
	id, err := ServiceID(c.td, service)
	if err != nil {
		panic(err) // only called with constant, valid names
	}
	return id
}

// SignCSR issues an X.509-SVID for service from a DER-encoded PKCS #10 CSR
// and returns its chain, leaf first (the root is in the bundle, not the
// chain). The CSR's signature must verify: it proves that the requester
// holds the private key. Its public key may be ECDSA P-256 or P-384, Ed25519,
// or RSA of 2048 to 8192 bits. Everything else in the CSR (subject, SANs,
// extensions) is ignored: the SVID's only identity is the URI SAN
// spiffe://<td>/svc/<service>, its key usage digitalSignature, its extended
// key usages serverAuth and clientAuth.
//
// The SVID is valid from a minute ago (for clock skew) for ttl (0 means
// DefaultSVIDTTL), and never beyond the CA's own expiry. The caller is
// responsible for having authenticated the requester as service (a join
// token, or the current SVID: see Renew).
func (c *CA) SignCSR(csrDER []byte, service string, ttl time.Duration) ([]*x509.Certificate, error) {
	if err := ValidateServiceName(service); err != nil {
		return nil, err
	}
	pub, err := parseCSR(csrDER)
	if err != nil {
		return nil, err
	}
	return c.sign(pub, service, ttl)
}

// parseCSR parses a CSR, checks its signature and returns its public key.
func parseCSR(der []byte) (crypto.PublicKey, error) {
	if len(der) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidCSR)
	}
	if len(der) > MaxCSRSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidCSR, len(der), MaxCSRSize)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCSR, err)
	}
	// The key is checked before the signature, so that an oversized RSA key
	// costs nothing to refuse.
	if err := checkCSRKey(csr.PublicKey, csr.PublicKeyAlgorithm); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature does not verify: %w", ErrInvalidCSR, err)
	}
	return csr.PublicKey, nil
}

func checkCSRKey(pub crypto.PublicKey, alg x509.PublicKeyAlgorithm) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("%w: ECDSA curve %s (want P-256 or P-384)", ErrUnsupportedKey, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return fmt.Errorf("%w: RSA key of %d bits (want %d to %d; prefer ECDSA P-256 or Ed25519)", ErrUnsupportedKey, bits, minRSABits, maxRSABits)
		}
	default:
		return fmt.Errorf("%w: %v key (want ECDSA P-256 or P-384, Ed25519, or RSA of at least %d bits)", ErrUnsupportedKey, alg, minRSABits)
	}
	return nil
}

// sign issues the SVID of service for pub.
func (c *CA) sign(pub crypto.PublicKey, service string, ttl time.Duration) ([]*x509.Certificate, error) {
	switch {
	case ttl == 0:
		ttl = DefaultSVIDTTL
	case ttl < 0:
		return nil, fmt.Errorf("ca: SVID ttl %v is negative", ttl)
	}
	id, err := ServiceID(c.td, service)
	if err != nil {
		return nil, err
	}
	now := c.now()
	if now.Before(c.cert.NotBefore) || !now.Before(c.cert.NotAfter) {
		return nil, fmt.Errorf("%w (valid from %s to %s)", ErrCAExpired,
			c.cert.NotBefore.UTC().Format(time.RFC3339), c.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	notBefore := now.Add(-backdate)
	if notBefore.Before(c.cert.NotBefore) {
		notBefore = c.cert.NotBefore
	}
	notAfter := now.Add(ttl)
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("ca: sign: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Rampart"}, CommonName: service},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  false,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:                  []*url.URL{id.URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign SVID for %s: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: sign SVID for %s: %w", id, err)
	}
	return []*x509.Certificate{leaf}, nil
}

// VerifySVID checks that an SVID chain (leaf first) was issued by this CA,
// is valid now and names a service of its trust domain, and returns that
// service. The API layer calls it on a renewal's client certificate to learn
// which service asks, and checks that the service is not revoked before
// calling Renew. Errors wrap ErrSVIDExpired or ErrUntrustedSVID.
func (c *CA) VerifySVID(chain []*x509.Certificate) (service string, err error) {
	if len(chain) == 0 || chain[0] == nil {
		return "", fmt.Errorf("%w: no certificate", ErrUntrustedSVID)
	}
	for _, cert := range chain {
		if cert == nil {
			return "", fmt.Errorf("%w: nil certificate in chain", ErrUntrustedSVID)
		}
	}
	now := c.now()
	leaf := chain[0]
	// Expiry is checked first so that the error says so, rather than the
	// verifier's generic one; a forged certificate's dates mean nothing, but
	// it then fails the chain check below anyway.
	if !now.Before(leaf.NotAfter) {
		return "", fmt.Errorf("%w: expired at %s", ErrSVIDExpired, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return "", fmt.Errorf("%w: not valid before %s", ErrSVIDExpired, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	id, _, err := x509svid.Verify(chain, c.bundle, x509svid.WithTime(now))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUntrustedSVID, err)
	}
	service, err = ServiceFromID(c.td, id)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUntrustedSVID, err)
	}
	return service, nil
}

// Renew issues a new SVID for the service named by current, the requester's
// SVID chain (leaf first), from a CSR for its new key. current must have
// been issued by this CA and be unexpired; the new SVID keeps its SPIFFE ID.
//
// current must be the chain the peer presented in a completed mTLS
// handshake (tls.ConnectionState.PeerCertificates): the handshake proves
// that the peer holds the SVID's key. A certificate alone is public, so
// never take current from a request body. The CA keeps no revocation state:
// the caller checks that the service is not revoked first (see VerifySVID
// and ErrRevoked).
func (c *CA) Renew(current []*x509.Certificate, csrDER []byte, ttl time.Duration) ([]*x509.Certificate, error) {
	service, err := c.VerifySVID(current)
	if err != nil {
		return nil, err
	}
	return c.SignCSR(csrDER, service, ttl)
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}
