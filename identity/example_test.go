package identity_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/rampartsec/rampart/identity"
)

// A service joins the control plane once with its join token, then serves
// mutual TLS on the SVID it got, renewed at half-life until Close.
func ExampleJoin() {
	bundle, err := os.ReadFile("/etc/rampart/bundle.pem") // the control plane's ca/ca.crt
	if err != nil {
		log.Fatal(err)
	}
	src, err := identity.Join(context.Background(), identity.JoinConfig{
		ControlPlane:       "https://rampart-cp.internal:8443",
		ControlPlaneBundle: bundle,
		Service:            "orders",
		Token:              os.Getenv("RAMPART_JOIN_TOKEN"),
	})
	if err != nil {
		log.Fatal(err) // identity.ErrTokenUsed, ErrTokenExpired, ... say why
	}
	defer src.Close()
	srv := &http.Server{Addr: ":8443", TLSConfig: identity.ServerTLSConfig(src)}
	log.Fatal(srv.ListenAndServeTLS("", ""))
}

// With SPIRE, the identity comes from the Workload API instead; the rest is
// the same.
func ExampleFromWorkloadAPI() {
	src, err := identity.FromWorkloadAPI(context.Background(), "unix:///run/spire/agent.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	payments, _ := identity.ServiceID(src.TrustDomain(), "payments")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: identity.ClientTLSConfig(src, payments)}}
	_ = client // calls only the service whose SVID is spiffe://<td>/svc/payments
}
