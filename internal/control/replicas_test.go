package control_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/postgres"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// postgresDSN selects a fresh schema on the test server, dropped at the end
// (skipped without a server, except in CI).
func postgresDSN(t *testing.T) string { return storetest.PostgresSchema(t, "rampart_control_test_") }

// replica is one control-plane process over the shared database: its own
// store connection pool and its own HTTP server.
func replica(t *testing.T, dsn string, c *ca.CA, adminHash []byte) string {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	h, err := control.New(control.Config{Store: s, CA: c, AdminTokenHash: adminHash,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return srv.URL
}

func TestAWatcherOnOneReplicaSeesADecisionMadeOnAnother(t *testing.T) {
	dsn := postgresDSN(t)
	c, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	admin, hash := control.NewAdminToken()
	a := &env{url: replica(t, dsn, c, hash), admin: admin}
	b := &env{url: replica(t, dsn, c, hash), admin: admin}

	start := decode[control.WatchResult](t, b.do(t, "GET", "/v1/watch?timeout=0s", nil), http.StatusOK)
	type result struct {
		w      control.WatchResult
		status int
		at     time.Time
		err    error
	}
	done := make(chan result, 1)
	go func() { // no t.Fatal here
		// A minute: an answer that holds the decision was woken by it.
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/watch?since=%d&timeout=1m", b.url, start.Revision), nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		res := result{at: time.Now(), err: err}
		if err == nil {
			defer resp.Body.Close()
			res.status = resp.StatusCode
			body, _ := io.ReadAll(resp.Body)
			res.err = json.Unmarshal(body, &res.w)
		}
		done <- res
	}()
	time.Sleep(300 * time.Millisecond) // the watcher is waiting
	created := time.Now()
	d := decode[store.Decision](t, a.do(t, "POST", "/v1/decisions", control.DecisionRequest{
		Scope: store.ScopeUser, Value: "mallory", Action: store.ActionBlockSensitive,
	}), http.StatusCreated)
	select {
	case r := <-done:
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("watch on the other replica: %d %v", r.status, r.err)
		}
		latency := r.at.Sub(created)
		t.Logf("decision made on replica A reached a watcher on replica B in %v", latency)
		if len(r.w.Changes) != 1 || r.w.Changes[0].Key != d.ID {
			t.Errorf("watch returned %+v, want the creation of %s", r.w, d.ID)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("watcher on the other replica not answered within 2 minutes")
	}

	// What A stored, B serves.
	list := decode[control.DecisionList](t, b.do(t, "GET", "/v1/decisions", nil), http.StatusOK)
	if len(list.Decisions) != 1 || list.Decisions[0].ID != d.ID {
		t.Errorf("decisions on B: %+v", list)
	}
}
