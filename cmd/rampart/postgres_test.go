package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/postgres"
	"github.com/rampartsec/rampart/internal/store/sqlite"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// postgresDSN selects a fresh schema on the test server, dropped at the end
// (skipped without a server, except in CI).
func postgresDSN(t *testing.T) string { return storetest.PostgresSchema(t, "rampart_cli_test_") }

func TestTwoServersOverOnePostgreSQLShareDecisions(t *testing.T) {
	dsn := postgresDSN(t)
	a := initControlPlane(t)
	b := *a // the same data directory: the same CA and admin token
	stopA := a.serve(t, "-postgres", dsn)
	defer stopA()
	stopB := b.serve(t, "-postgres", dsn)
	defer stopB()
	if a.addr == b.addr {
		t.Fatal("both servers on one address")
	}

	client := b.httpClient(t)
	watch := func(query string) (control.WatchResult, error) {
		req, _ := http.NewRequest("GET", "https://"+b.addr+"/v1/watch?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+b.token)
		resp, err := client.Do(req)
		if err != nil {
			return control.WatchResult{}, err
		}
		defer resp.Body.Close()
		var w control.WatchResult
		if resp.StatusCode != http.StatusOK {
			return w, fmt.Errorf("watch: %s", resp.Status)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return w, err
		}
		return w, json.Unmarshal(body, &w)
	}
	start, err := watch("timeout=0s")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		w   control.WatchResult
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		// A minute: an answer that holds the decision was woken by it.
		w, err := watch(fmt.Sprintf("since=%d&timeout=1m", start.Revision))
		done <- result{w, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond) // the watcher on B is waiting

	created := time.Now()
	out, err := a.cli(t, "decisions", "add", "-o", "json", "-reason", "made on A", "ip", "192.0.2.44")
	cliDone := time.Now()
	var d store.Decision
	if err != nil || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("decisions add on A: %q, %v", out, err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Logf("a decision made through server A reached a watcher of server B %v after the CLI started (the CLI took %v)", r.at.Sub(created), cliDone.Sub(created))
		if len(r.w.Changes) != 1 || r.w.Changes[0].Key != d.ID {
			t.Errorf("B's watcher got %+v, want the creation of %s", r.w, d.ID)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("B's watcher not answered within 2 minutes")
	}
	out, err = b.cli(t, "decisions", "list")
	if err != nil || !strings.Contains(out, d.ID) || !strings.Contains(out, "made on A") {
		t.Errorf("decisions list on B: %q, %v", out, err)
	}
	// The decision is in PostgreSQL, not in the SQLite database of the
	// shared data directory (through which two servers would also agree,
	// only slower: sqlite.PollInterval).
	pg, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if got, err := pg.Decision(t.Context(), d.ID); err != nil || got.Reason != "made on A" {
		t.Errorf("the decision in PostgreSQL: %+v, %v", got, err)
	}
	lite, err := sqlite.Open(t.Context(), sqlite.Config{Dir: a.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	if _, err := lite.Decision(t.Context(), d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the decision in the data directory's SQLite database: %v, want ErrNotFound", err)
	}
}
