package rampart_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"modernc.org/sqlite"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

// A service protected by Rampart: the agent records each request's inputs
// (Handler), and the SQL guard checks every statement against them. The
// handler builds its query by concatenation; a name that stays data is
// served, one that would rewrite the query is refused with a 403 and an
// event that names the input and the line of code.
func Example() {
	events := &ramparttest.Recorder{}
	agent, err := rampart.New(rampart.Config{Service: "users", Sinks: []rampart.Sink{events}})
	if err != nil {
		log.Fatal(err)
	}
	guard, err := sqlguard.New(agent, sqlguard.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	db, err := guard.Open(&sqlite.Driver{}, "file:example?mode=memory")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one in-memory database
	if _, err := db.Exec(`CREATE TABLE users (name TEXT, email TEXT);
		INSERT INTO users VALUES ('alice', 'alice@example.com'), ('bob', 'bob@example.com')`); err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		rows, err := db.QueryContext(r.Context(), "SELECT email FROM users WHERE name = '"+r.URL.Query().Get("name")+"'")
		if err != nil {
			return // blocked: the agent answers 403
		}
		defer rows.Close()
		for rows.Next() {
			var email string
			if err := rows.Scan(&email); err == nil {
				fmt.Fprintln(w, email)
			}
		}
	})
	srv := httptest.NewServer(agent.Handler(mux))
	defer srv.Close()

	for _, name := range []string{"alice", "' OR '1'='1"} {
		resp, err := http.Get(srv.URL + "/users?name=" + url.QueryEscape(name))
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%q: %d %s\n", name, resp.StatusCode, firstField(body))
	}

	if err := agent.Close(context.Background()); err != nil { // delivers the queued events
		log.Fatal(err)
	}
	for _, ev := range events.Events() {
		fmt.Println(ev.Kind, ev.Action, ev.Route, ev.Input.Source, ev.Input.Name, strings.Contains(ev.Location, "example_service_test.go"))
	}
	// Output:
	// "alice": 200 alice@example.com
	// "' OR '1'='1": 403 {"error":"request blocked by Rampart: a security policy was violated"
	// sql_injection blocked GET /users query name true
}

// firstField is the response up to its first comma or line end: the
// request id that follows the error differs on every run.
func firstField(body []byte) string {
	s, _, _ := strings.Cut(string(body), "\n")
	s, _, _ = strings.Cut(s, ",")
	return s
}
