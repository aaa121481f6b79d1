package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"time"
)

// SignServerCert issues a TLS server certificate for the control plane's
// own API, so that clients holding the bundle (curl --cacert, the CLI) can
// check it by host name. It names hosts (DNS names or IP addresses) and no
// SPIFFE ID, so it is never accepted as an SVID; its only extended key usage
// is serverAuth. It is valid from a minute ago for ttl, never beyond the
// CA's own expiry.
func (c *CA) SignServerCert(pub crypto.PublicKey, hosts []string, ttl time.Duration) (*x509.Certificate, error) {
	if len(hosts) == 0 {
		return nil, errors.New("ca: server certificate: no host names")
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("ca: server certificate: ttl %v is not positive", ttl)
	}
	if err := checkCSRKey(pub, x509.UnknownPublicKeyAlgorithm); err != nil {
		return nil, fmt.Errorf("ca: server certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"Rampart"}, CommonName: hosts[0]},
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	now := c.now()
	if now.Before(c.cert.NotBefore) || !now.Before(c.cert.NotAfter) {
		return nil, fmt.Errorf("%w (valid from %s to %s)", ErrCAExpired,
			c.cert.NotBefore.UTC().Format(time.RFC3339), c.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-backdate), now.Add(ttl)
	if tmpl.NotBefore.Before(c.cert.NotBefore) {
		tmpl.NotBefore = c.cert.NotBefore
	}
	if tmpl.NotAfter.After(c.cert.NotAfter) {
		tmpl.NotAfter = c.cert.NotAfter
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("ca: server certificate: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: server certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: server certificate: %w", err)
	}
	return cert, nil
}
