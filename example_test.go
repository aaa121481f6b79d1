package rampart_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

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
	users, err := agent.Client("users")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), "GET", "https://users.internal:8443/users/me", nil)
		if err != nil {
			http.Error(w, "bad request", http.StatusInternalServerError)
			return
		}
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

// A guard of one's own looks for the inputs in what it is about to run and,
// when none exploits it, returns CheckInputsComplete: a request whose
// inputs could not all be recorded then fails closed in block mode.
func ExampleCheckInputsComplete() {
	agent, err := rampart.New(rampart.Config{Service: "mail", MaxInputs: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())
	checkHeader := func(ctx context.Context, header string) error {
		for in := range rampart.Inputs(ctx) {
			if len(in.Value) > 1 && strings.Contains(header, in.Value) && strings.ContainsAny(in.Value, "\r\n") {
				return agent.Report(ctx, rampart.Finding{Kind: "header_injection", Input: in, Sink: "net/smtp", Detail: header})
			}
		}
		return rampart.CheckInputsComplete(ctx, "net/smtp")
	}
	h := agent.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var be *rampart.BlockedError
		if err := checkHeader(r.Context(), "Subject: "+r.URL.Query().Get("s")); errors.As(err, &be) {
			fmt.Println("blocked:", be.Event.Kind)
			return
		}
		fmt.Println("sent")
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/?s=hello", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/?a=1&b=2&s=hello", nil))
	// Output:
	// sent
	// blocked: inputs_truncated
}
