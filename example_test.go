package rampart_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/identity"
)

// Code with no HTTP request marks the data it received as untrusted before
// it reaches a guarded call.
func ExampleWithUntrusted() {
	ctx := rampart.WithUntrusted(context.Background(), "job", "https://example.com/feed.xml")
	for in := range rampart.Inputs(ctx) {
		fmt.Println(in.Source, in.Value)
	}
	// Output: job https://example.com/feed.xml
}

// In the mesh: the agent admits only callers the policy allows, verifies
// the gateway's actor token and enforces decisions; Client calls another
// service over mTLS, forwarding the actor and the trace.
func ExampleAgent_Client() {
	src, err := identity.Join(context.Background(), identity.JoinConfig{
		ControlPlane: "https://rampart-cp.internal:8443", ControlPlaneBundle: []byte("..."),
		Service: "orders", Token: os.Getenv("RAMPART_JOIN_TOKEN"),
	})
	if err != nil {
		log.Fatal(err)
	}
	agent, err := rampart.New(rampart.Config{Service: "orders", Identity: src, ControlPlane: "https://rampart-cp.internal:8443"})
	if err != nil {
		log.Fatal(err)
	}
	users, _ := agent.Client("users")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), "GET", "https://users.internal:8443/users/me", nil)
		resp, err := users.Do(req) // carries the caller's actor token and traceparent
		if err != nil {
			http.Error(w, "users unavailable", http.StatusBadGateway)
			return
		}
		resp.Body.Close()
	})
	srv := &http.Server{Addr: ":8443", Handler: agent.Handler(mux), TLSConfig: agent.ServerTLSConfig()}
	log.Fatal(srv.ListenAndServeTLS("", ""))
}
