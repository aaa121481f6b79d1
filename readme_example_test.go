package rampart_test

// The README's Go code, compiled: each region between "// README: name"
// and "// README end" is a ```go block of README.md, line for line
// (TestREADMECodeIsCompiledExampleCode). These examples have no Output
// line, so they are compiled and never run: they listen on ports and join
// a control plane.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/execguard"
	"github.com/rampartsec/rampart/fsguard"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/sqlguard"
	"github.com/rampartsec/rampart/ssrfguard"
)

func Example_readmeQuickstart() {
	dsn := os.Getenv("DATABASE_URL")
	// README: quickstart
	agent, err := rampart.New(rampart.Config{Service: "orders"}) // block mode; events logged through slog.Default
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())

	guard, err := sqlguard.New(agent, sqlguard.Postgres)
	if err != nil {
		log.Fatal(err)
	}
	db, err := guard.Open(stdlib.GetDefaultDriver(), dsn) // pgx; any database/sql driver works
	if err != nil {                                       // every Query, Exec, Prepare, Tx is checked
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /orders", listOrders(db))
	log.Fatal(http.ListenAndServe(":8080", agent.Handler(mux))) // records each request's inputs
	// README end
}

func listOrders(db *sql.DB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rows, err := db.QueryContext(r.Context(), "SELECT id FROM orders WHERE customer = '"+r.FormValue("customer")+"'")
		if err != nil {
			return
		}
		rows.Close()
	})
}

func Example_readmeGuards() {
	agent, err := rampart.New(rampart.Config{Service: "reports"})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	// README: guards
	files, err := fsguard.New(agent, "/srv/uploads") // os.Root underneath
	if err != nil {
		log.Fatal(err)
	}
	ssrf, err := ssrfguard.New(agent, ssrfguard.Config{})
	if err != nil {
		log.Fatal(err)
	}
	client := ssrf.Client(nil) // checked at each dialed address, redirects included
	exe, err := execguard.New(agent)
	if err != nil {
		log.Fatal(err)
	}

	mux.HandleFunc("POST /reports/{name}", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context() // carries the request's inputs to the guards
		data, err := files.ReadFile(ctx, r.PathValue("name"))
		if err != nil {
			http.Error(w, "no such report", http.StatusNotFound)
			return
		}
		req, err := http.NewRequestWithContext(ctx, "POST", r.FormValue("callback"), nil)
		if err != nil {
			http.Error(w, "bad callback", http.StatusBadRequest)
			return
		}
		if resp, err := client.Do(req); err == nil { // or ssrf.DialContext(ctx, "tcp", addr) for other clients
			resp.Body.Close()
		}
		out, err := exe.CommandContext(ctx, "sh", "-c", "wc -c "+r.PathValue("name")).Output() // exec.CommandContext's shape
		if errors.Is(err, rampart.ErrBlocked) {
			return // the agent answers 403
		}
		fmt.Fprintf(w, "%d bytes; %s", len(data), out)
	})
	// README end
}

func Example_readmeZeroTrust() {
	ctx := context.Background()
	bundlePEM, err := os.ReadFile(os.Getenv("RAMPART_CA"))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	const usersURL = "https://users.internal:8443/users/me"
	// README: zerotrust
	src, err := identity.Join(ctx, identity.JoinConfig{ // or workload.NewSource for SPIRE
		ControlPlane: "https://cp:8443", ControlPlaneBundle: bundlePEM,
		Service: "orders", Token: os.Getenv("RAMPART_JOIN_TOKEN"), // renewed at half-life over mTLS
		Dir: "/var/lib/orders/rampart", // SVID and key saved (0600): a restart renews with them, no new token
	})
	if err != nil {
		log.Fatal(err)
	}
	agent, err := rampart.New(rampart.Config{Service: "orders", Identity: src, ControlPlane: "https://cp:8443"})
	if err != nil {
		log.Fatal(err)
	}
	users, err := agent.Client("users") // presents our SVID, accepts only spiffe://<td>/svc/users,
	if err != nil {                     // forwards the actor token and traceparent unchanged
		log.Fatal(err)
	}
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), "GET", usersURL, nil)
		if err != nil {
			http.Error(w, "bad request", http.StatusInternalServerError)
			return
		}
		resp, err := users.Do(req)
		if err != nil {
			http.Error(w, "users unavailable", http.StatusBadGateway)
			return
		}
		resp.Body.Close()
	})
	srv := &http.Server{Handler: agent.Handler(mux), TLSConfig: agent.ServerTLSConfig()} // TLS 1.3, client SVID required
	log.Fatal(srv.ListenAndServeTLS("", ""))
	// README end
}

type account struct{ ID, Email, Owner string }

func Example_readmeBusinessEvents() {
	mux := http.NewServeMux()
	var lookup func(email, password string) (account, bool, bool)
	// README: business
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user, found, ok := lookup(r.FormValue("email"), r.FormValue("password"))
		rampart.TrackLogin(r.Context(), rampart.Login{Name: r.FormValue("email"), User: user.ID, Success: ok, UserExists: found})
		if ok {
			rampart.SetUser(r.Context(), user.ID) // a service that authenticates itself
		}
	})
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		order := account{ID: r.PathValue("id")}                           // loaded from the database
		rampart.ObjectAccess(r.Context(), "order", order.ID, order.Owner) // served to someone not its owner: a signal
		rampart.TrackEvent(r.Context(), "order_viewed", map[string]string{"id": order.ID})
	})
	// README end
}

type queueMessage struct {
	Body    []byte
	Headers map[string]string
	Time    time.Time
}

func requeue(queueMessage) {}

func Example_readmeQueue() {
	agent, err := rampart.New(rampart.Config{Service: "imports"})
	if err != nil {
		log.Fatal(err)
	}
	var db *sql.DB
	queue := make(chan queueMessage, 64)
	mux := http.NewServeMux()
	ctx := context.Background()
	// README: queue
	mux.HandleFunc("POST /imports", func(w http.ResponseWriter, r *http.Request) {
		body, err := json.Marshal(map[string]string{"url": r.FormValue("url")})
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		// The job carries the request's actor token and trace context.
		queue <- queueMessage{Body: body, Headers: rampart.PropagationHeaders(r.Context()), Time: time.Now()}
	})
	for msg := range queue { // the worker
		jobCtx, err := agent.StartJob(ctx, rampart.Job{
			Route: "imports", Payload: msg.Body, ContentType: "application/json", // each JSON field is an input
			ActorToken: msg.Headers[actor.Header], Traceparent: msg.Headers["traceparent"], Enqueued: msg.Time,
		})
		if errors.Is(err, rampart.ErrNotReady) {
			requeue(msg) // the agent is waiting for its policy
			continue
		}
		if err != nil {
			continue // refused: the actor is blocked, or its token outlived the queue (an event says which)
		}
		var job struct{ URL string }
		if err := json.Unmarshal(msg.Body, &job); err != nil {
			continue // not JSON: nothing to import
		}
		_, err = db.ExecContext(jobCtx, "INSERT INTO imports (url) VALUES ('"+job.URL+"')") // refused if url injects
		if errors.Is(err, rampart.ErrBlocked) {
			continue
		}
	}
	// README end
}
