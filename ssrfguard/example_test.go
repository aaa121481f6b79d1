package ssrfguard_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ssrfguard"
)

// A queue worker fetches the URL a job names. It marks the job's payload as
// untrusted; the guarded client then refuses to let that URL reach an
// internal service, while the worker's own calls to the same service go
// through.
func ExampleGuard_Client() {
	agent, err := rampart.New(rampart.Config{Service: "worker", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())
	guard, err := ssrfguard.New(agent, ssrfguard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	client := guard.Client(nil) // http.DefaultTransport's settings, guarded

	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "internal data")
	}))
	defer internal.Close()

	payload := internal.URL + "/admin" // what the attacker put in the job
	ctx := rampart.WithUntrusted(context.Background(), "job", payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, payload, nil)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := client.Do(req)
	var be *rampart.BlockedError
	switch {
	case errors.As(err, &be):
		fmt.Println("job URL blocked:", be.Event.Reason)
	case err != nil:
		log.Fatal(err)
	default:
		resp.Body.Close()
		fmt.Println("job URL fetched:", resp.Status)
	}

	resp, err = client.Get(internal.URL + "/health") // the worker's own call
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("own call:", resp.Status)
	// Output:
	// job URL blocked: host from job input is loopback 127.0.0.1
	// own call: 200 OK
}

// Transport composes with a base transport of the application's: the guard
// works on clones of it, so its settings (TLS, timeouts, proxies, pool sizes)
// apply, and base itself is left as it was.
func ExampleGuard_Transport() {
	agent, err := rampart.New(rampart.Config{Service: "api", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())

	if _, err := ssrfguard.New(agent, ssrfguard.Config{Deny: []string{"10.99.0.0/66"}}); err != nil {
		fmt.Println(err) // a list entry that is none of the forms New reads
	}

	guard, err := ssrfguard.New(agent, ssrfguard.Config{
		Allow: []string{"billing.internal"}, // reachable even from a URL in input
		Deny:  []string{"127.0.0.0/8"},      // nothing on this machine, input or not
	})
	if err != nil {
		log.Fatal(err)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 32
	client := &http.Client{Transport: guard.Transport(base)}

	resp, err := client.Get("http://127.0.0.1:9/") // refused before any packet is sent
	fmt.Println(resp, errors.Is(err, rampart.ErrBlocked))
	// Output:
	// ssrfguard: Config.Deny[0] "10.99.0.0/66" is not a host name, "*." and a domain, an IP address or a CIDR prefix
	// <nil> true
}

// A worker connects to the cache server a job names, with a client that is
// not net/http's (a Redis or a gRPC client takes a dial function). The guard
// dials for it: the job's payload may not lead it to a service of the
// internal network, while the worker's own connection to the same server is
// made.
func ExampleGuard_DialContext() {
	agent, err := rampart.New(rampart.Config{Service: "worker", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())
	guard, err := ssrfguard.New(agent, ssrfguard.Config{})
	if err != nil {
		log.Fatal(err)
	}

	internal, err := net.Listen("tcp", "127.0.0.1:0") // an internal service
	if err != nil {
		log.Fatal(err)
	}
	defer internal.Close()
	go func() {
		for {
			c, err := internal.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	payload := internal.Addr().String() // what the attacker put in the job
	ctx := rampart.WithUntrusted(context.Background(), "job", payload)
	conn, err := guard.DialContext(ctx, "tcp", payload)
	var be *rampart.BlockedError
	switch {
	case errors.As(err, &be):
		fmt.Println("job address blocked:", be.Event.Reason)
	case err != nil:
		log.Fatal(err)
	default:
		conn.Close()
		fmt.Println("job address reached")
	}

	conn, err = guard.DialContext(context.Background(), "tcp", internal.Addr().String()) // the worker's own
	if err != nil {
		log.Fatal(err)
	}
	conn.Close()
	fmt.Println("own connection made")
	// Output:
	// job address blocked: host from job input is loopback 127.0.0.1
	// own connection made
}

// Check vets an address without connecting, for a client that dials by
// itself. The cloud metadata endpoints are refused to every caller, input or
// not.
func ExampleGuard_Check() {
	agent, err := rampart.New(rampart.Config{Service: "api", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())
	guard, err := ssrfguard.New(agent, ssrfguard.Config{})
	if err != nil {
		log.Fatal(err)
	}

	err = guard.Check(context.Background(), "tcp", "169.254.169.254:80")
	var be *rampart.BlockedError
	if errors.As(err, &be) {
		fmt.Println(errors.Is(err, rampart.ErrBlocked), be.Event.Reason)
	}
	// Output:
	// true 169.254.169.254 is a cloud metadata endpoint
}
