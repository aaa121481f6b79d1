package ramparttest_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"

	"modernc.org/sqlite"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

// searchMux is a service with a search that builds its query by
// concatenation, over SQLite behind the SQL guard.
func searchMux(agent *rampart.Agent) (*http.ServeMux, error) {
	guard, err := sqlguard.New(agent, sqlguard.SQLite)
	if err != nil {
		return nil, err
	}
	db, err := guard.Open(&sqlite.Driver{}, ":memory:")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /search", func(w http.ResponseWriter, r *http.Request) {
		var n int
		q := "SELECT count(*) FROM (SELECT 'shoe' AS name) WHERE name = '" + r.URL.Query().Get("q") + "'"
		if err := db.QueryRowContext(r.Context(), q).Scan(&n); err != nil {
			http.Error(w, "search failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, n)
	})
	return mux, nil
}

// Outside a test, or with an agent built by hand, a Recorder is one of the
// agent's Sinks; closing the agent delivers every event to it. In a test,
// NewAgent does this (see the package documentation).
func Example() {
	events := &ramparttest.Recorder{}
	agent, err := rampart.New(rampart.Config{Service: "shop", Sinks: []rampart.Sink{events}})
	if err != nil {
		log.Fatal(err)
	}
	mux, err := searchMux(agent)
	if err != nil {
		log.Fatal(err)
	}
	w := httptest.NewRecorder()
	agent.Handler(mux).ServeHTTP(w, httptest.NewRequest("GET", "/search?q="+url.QueryEscape("x' OR 1=1--"), nil))
	fmt.Println(w.Code)

	if err := agent.Close(context.Background()); err != nil {
		log.Fatal(err)
	}
	want := ramparttest.Want{
		Kind:   rampart.KindSQLInjection,
		Action: rampart.ActionBlocked,
		Input:  rampart.Input{Source: rampart.SourceQuery, Name: "q"},
		Route:  "GET /search",
	}
	for _, ev := range events.Events() {
		fmt.Printf("%s %s %s=%q, as wanted: %v\n", ev.Kind, ev.Action, ev.Input.Name, ev.Input.Value, want.Match(ev))
	}
	// Output:
	// 403
	// sql_injection blocked q="x' OR 1=1--", as wanted: true
}
