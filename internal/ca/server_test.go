package ca_test

import (
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func TestServerCertsVerifyByHostNameAndAreNoSVIDs(t *testing.T) {
	c := newCA(t, ca.Config{})
	key := p256(t)
	cert, err := c.SignServerCert(key.Public(), []string{"control.example", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.Certificate())
	for _, name := range []string{"control.example", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: roots}); err == nil {
		t.Error("verified for a name it does not carry")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("usable as a client certificate")
	}
	if _, _, err := x509svid.Verify([]*x509.Certificate{cert}, c.Bundle()); err == nil {
		t.Error("accepted as an SVID")
	}
	if cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) == false || time.Until(cert.NotAfter) > time.Hour {
		t.Errorf("IPs %v, NotAfter %v", cert.IPAddresses, cert.NotAfter)
	}
	for _, hosts := range [][]string{nil, {}} {
		if _, err := c.SignServerCert(key.Public(), hosts, time.Hour); err == nil {
			t.Errorf("hosts %q: no error", hosts)
		}
	}
	if _, err := c.SignServerCert(key.Public(), []string{"a"}, 0); err == nil {
		t.Error("ttl 0: no error")
	}
}
