package workload_test

import (
	"context"
	"log"
	"net/http"

	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/identity/workload"
)

// With SPIRE, the identity comes from the Workload API instead of
// identity.Join; the rest is the same code.
func ExampleNewSource() {
	src, err := workload.NewSource(context.Background(), workload.Config{Addr: "unix:///run/spire/agent.sock"})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	payments, err := identity.ServiceID(src.TrustDomain(), "payments")
	if err != nil {
		log.Fatal(err)
	}
	// This client calls only the service whose SVID is
	// spiffe://<trust domain>/svc/payments.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: identity.ClientTLSConfig(src, payments)}}
	resp, err := client.Get("https://payments.internal:8443/v1/balance")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
}
