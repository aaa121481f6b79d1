package identity_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/rampartsec/rampart/identity"
)

// A service joins the control plane once with its join token, then serves
// mutual TLS on the SVID it got, renewed at half-life until Close. The SVID
// and its key are saved in Dir: when the service restarts it renews with
// them, and the token (single use, spent by the first start) is not needed
// again.
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
		Dir:                "/var/lib/orders/rampart", // one per process
	})
	if err != nil {
		log.Fatal(err) // one line: identity.ErrNeedToken, ErrRevoked, ... say what to do
	}
	defer src.Close()
	srv := &http.Server{Addr: ":8443", TLSConfig: identity.ServerTLSConfig(src)}
	log.Fatal(srv.ListenAndServeTLS("", ""))
}
