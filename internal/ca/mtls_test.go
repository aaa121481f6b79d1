package ca_test

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// issue returns an SVID as a workload holds it, built with go-spiffe's
// x509svid.ParseRaw, which checks SPIFFE's rules for leaf SVIDs.
func issue(t *testing.T, c *ca.CA, service string, key crypto.Signer) *x509svid.SVID {
	t.Helper()
	chain, err := c.SignCSR(csr(t, key, nil), service, 0)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := x509svid.ParseRaw(chain[0].Raw, keyDER)
	if err != nil {
		t.Fatalf("x509svid.ParseRaw refuses the SVID: %v", err)
	}
	return svid
}

// handshake runs a TLS 1.3 handshake between a client and a server over
// loopback TCP and returns their errors.
func handshake(t *testing.T, client, server *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	client.MinVersion, server.MinVersion = tls.VersionTLS13, tls.VersionTLS13
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		s := tls.Server(conn, server)
		err = s.Handshake()
		if err == nil {
			// The client reads this byte: the server accepted it.
			_, err = s.Write([]byte{1})
		}
		conn.Close()
		done <- err
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := tls.Client(conn, client)
	clientErr = cl.Handshake()
	if clientErr == nil {
		// In TLS 1.3 the client finishes first; a refusal of its
		// certificate shows on the first read.
		_, clientErr = cl.Read(make([]byte, 1))
	}
	return clientErr, <-done
}

func TestSVIDsAuthenticateMTLS(t *testing.T) {
	c := newCA(t, ca.Config{})
	orders := issue(t, c, "orders", p256(t)) // the client
	billing := issue(t, c, "billing", ed(t)) // the server
	bundle := c.Bundle()

	t.Run("two services of the CA complete a mutual TLS 1.3 handshake", func(t *testing.T) {
		cerr, serr := handshake(t,
			tlsconfig.MTLSClientConfig(orders, bundle, tlsconfig.AuthorizeID(billing.ID)),
			tlsconfig.MTLSServerConfig(billing, bundle, tlsconfig.AuthorizeID(orders.ID)))
		if cerr != nil || serr != nil {
			t.Fatalf("client: %v; server: %v", cerr, serr)
		}
	})
	t.Run("a client with an SVID of another CA is refused", func(t *testing.T) {
		stranger := issue(t, newCA(t, ca.Config{}), "orders", p256(t))
		_, serr := handshake(t,
			tlsconfig.MTLSClientConfig(stranger, bundle, tlsconfig.AuthorizeAny()),
			tlsconfig.MTLSServerConfig(billing, bundle, tlsconfig.AuthorizeAny()))
		if serr == nil {
			t.Fatal("the server accepted a client of another CA")
		}
	})
	t.Run("the client refuses a server that is not the one it expects", func(t *testing.T) {
		cerr, _ := handshake(t,
			tlsconfig.MTLSClientConfig(orders, bundle, tlsconfig.AuthorizeID(serviceID(t, "payments"))),
			tlsconfig.MTLSServerConfig(billing, bundle, tlsconfig.AuthorizeAny()))
		if cerr == nil {
			t.Fatal("the client accepted billing when it expected payments")
		}
	})
}
