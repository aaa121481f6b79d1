package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

// postgresDSN returns a DSN selecting a fresh schema, dropped at the end,
// on the server of RAMPART_TEST_POSTGRES (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable, trust auth).
// Without a server the test is skipped, except in CI (CI=true).
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("RAMPART_TEST_POSTGRES")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL unreachable in CI: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set RAMPART_TEST_POSTGRES): %v", err)
	}
	defer admin.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	schema := "rampart_cli_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("RAMPART_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

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
		w, err := watch(fmt.Sprintf("since=%d", start.Revision))
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
		if r.at.Sub(created) > time.Second {
			t.Errorf("latency %v, want under 1s", r.at.Sub(created))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B's watcher not woken within 5s")
	}
	out, err = b.cli(t, "decisions", "list")
	if err != nil || !strings.Contains(out, d.ID) || !strings.Contains(out, "made on A") {
		t.Errorf("decisions list on B: %q, %v", out, err)
	}
}
