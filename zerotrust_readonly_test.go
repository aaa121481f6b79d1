package rampart_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/sqlguard"
)

// Two services with the same routes over SQLite: ledger enforces read-only
// decisions at its database (Config.ReadOnlyAtQuery), legacy by method.
const readOnlyPolicy = `
services:
  ledger:
    allow:
      - callers: [tester]
        actor: required
  legacy:
    allow:
      - callers: [tester]
        actor: required
`

// readOnlyService serves, over a SQLite file it returns the path of:
// GET /items (a read), POST /search (a read sent by POST), POST /items (an
// insert) and GET /visit (a GET that writes, with the request's context or
// without).
func readOnlyService(t *testing.T, cp *controltest.ControlPlane, name string, atQuery bool) (url, dbPath string) {
	t.Helper()
	src := cp.Join(t, name)
	sink, err := rampart.ControlPlaneSink(rampart.ControlPlaneConfig{URL: cp.URL, Client: src.ControlPlaneClient()})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := rampart.New(rampart.Config{
		Service: name, Identity: src, ControlPlane: cp.URL, Sinks: []rampart.Sink{sink},
		Logger: slog.New(slog.DiscardHandler), ReadOnlyAtQuery: atQuery,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := agent.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	g, err := sqlguard.New(agent, sqlguard.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	dbPath = filepath.Join(t.TempDir(), name+".db")
	db, err := g.Open(&sqlite.Driver{}, "file:"+dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE visits (n INT);
		INSERT INTO items (name) VALUES ('lamp'); INSERT INTO visits VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	fail := func(w http.ResponseWriter, err error) {
		if errors.Is(err, rampart.ErrBlocked) {
			return // the Handler answers 403
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
	count := func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM items").Scan(&n); err != nil {
			fail(w, err)
			return
		}
		json.NewEncoder(w).Encode(map[string]int{"items": n})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items", count)
	mux.HandleFunc("POST /search", count)
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		if _, err := db.ExecContext(r.Context(), "INSERT INTO items (name) VALUES ('desk')"); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /visit", func(w http.ResponseWriter, r *http.Request) {
		if _, err := db.ExecContext(r.Context(), "UPDATE visits SET n = n + 1"); err != nil {
			fail(w, err)
			return
		}
		count(w, r)
	})
	// The same write, made without the request's context: the guard
	// finds the request by its goroutine.
	mux.HandleFunc("GET /visit-without-context", func(w http.ResponseWriter, r *http.Request) {
		if _, err := db.Exec("UPDATE visits SET n = n + 1"); err != nil {
			fail(w, err)
			return
		}
		count(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: agent.Handler(mux), TLSConfig: agent.ServerTLSConfig(),
		ErrorLog: slogDiscard(), ReadHeaderTimeout: time.Minute}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() {
		srv.Close()
		agent.Close(context.Background())
		db.Close()
	})
	return "https://" + ln.Addr().String(), dbPath
}

func TestReadOnlyDecisionAtTheDatabase(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, readOnlyPolicy)
	ledger, ledgerDB := readOnlyService(t, cp, "ledger", true)
	legacy, legacyDB := readOnlyService(t, cp, "legacy", false)
	tester := cp.Join(t, "tester")
	signer := cp.Signer(t, cp.Join(t, "gateway"))
	token := func(a actor.Actor) string {
		tok, err := signer.TokenFor(a, audience(t, "ledger", "legacy", "tester"))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	bob := actor.Actor{IP: netip.MustParseAddr("198.51.100.2"), User: "bob", Session: strings.Repeat("b0", 32)}
	aliceToken, bobToken := token(alice), token(bob)
	clients := map[string]*http.Client{ledger: client(t, tester, "ledger"), legacy: client(t, tester, "legacy")}
	// call returns the status and the refusal header of method url.
	call := func(method, url, tok string) (int, string) {
		t.Helper()
		base := url[:strings.Index(url[len("https://"):], "/")+len("https://")]
		req, _ := http.NewRequest(method, url, nil)
		req.Header.Set(actor.Header, tok)
		resp, err := clients[base].Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get(rampart.RefusalHeader)
	}
	// rows reads a service's database from outside it.
	rows := func(path, q string) int {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, u := range []string{ledger, legacy} {
		if status, _ := call("POST", u+"/items", aliceToken); status != http.StatusCreated {
			t.Fatalf("before any decision, alice's POST /items: %d", status)
		}
	}

	id := cp.AddDecision(t, controltest.Decision{Scope: "user", Value: "alice", Action: "read-only", Reason: "account takeover"})
	// Wait until both services have the decision: each refuses alice's
	// GET /visit (a write) once it has.
	for _, u := range []string{ledger, legacy} {
		deadline := time.Now().Add(60 * time.Second)
		for {
			status, refusal := call("GET", u+"/visit", aliceToken)
			if status == http.StatusForbidden && refusal == string(rampart.KindReadOnlyWrite) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s GET /visit: %d %q 60 s after the decision, want 403 read_only_write", u, status, refusal)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	itemsBefore := map[string]int{ledger: rows(ledgerDB, "SELECT count(*) FROM items"), legacy: rows(legacyDB, "SELECT count(*) FROM items")}
	visitsBefore := map[string]int{ledger: rows(ledgerDB, "SELECT n FROM visits"), legacy: rows(legacyDB, "SELECT n FROM visits")}

	t.Run("ledger lets a read-only actor's POST through, and refuses its writes at the database", func(t *testing.T) {
		if status, refusal := call("POST", ledger+"/search", aliceToken); status != http.StatusOK {
			t.Errorf("POST /search: %d %q, want 200", status, refusal)
		}
		if status, _ := call("GET", ledger+"/items", aliceToken); status != http.StatusOK {
			t.Errorf("GET /items: %d, want 200", status)
		}
		for _, route := range []string{"POST /items", "GET /visit-without-context"} {
			method, path, _ := strings.Cut(route, " ")
			if status, refusal := call(method, ledger+path, aliceToken); status != http.StatusForbidden || refusal != string(rampart.KindReadOnlyWrite) {
				t.Errorf("%s: %d %q, want 403 read_only_write", route, status, refusal)
			}
		}
		ev := cp.WaitEvent(t, "kind=read_only_write&service=ledger")
		if ev["decision"] != id || ev["action"] != "blocked" || ev["actor_user"] != "alice" {
			t.Errorf("event %v: want blocked, alice, decision %s", ev, id)
		}
	})
	t.Run("legacy refuses a read-only actor's POST by method, and its GET's writes at the database", func(t *testing.T) {
		if status, refusal := call("POST", legacy+"/search", aliceToken); status != http.StatusForbidden || refusal != string(rampart.KindDecisionEnforced) {
			t.Errorf("POST /search: %d %q, want 403 decision_enforced", status, refusal)
		}
		if status, _ := call("GET", legacy+"/items", aliceToken); status != http.StatusOK {
			t.Errorf("GET /items: %d, want 200", status)
		}
		ev := cp.WaitEvent(t, "kind=read_only_write&service=legacy")
		if ev["decision"] != id {
			t.Errorf("event %v: want decision %s", ev, id)
		}
	})
	t.Run("the read-only actor changed nothing", func(t *testing.T) {
		for u, path := range map[string]string{ledger: ledgerDB, legacy: legacyDB} {
			if got := rows(path, "SELECT count(*) FROM items"); got != itemsBefore[u] {
				t.Errorf("%s: %d items, was %d", u, got, itemsBefore[u])
			}
			if got := rows(path, "SELECT n FROM visits"); got != visitsBefore[u] {
				t.Errorf("%s: %d visits, was %d", u, got, visitsBefore[u])
			}
		}
	})
	t.Run("another actor writes", func(t *testing.T) {
		if status, _ := call("POST", ledger+"/items", bobToken); status != http.StatusCreated {
			t.Errorf("bob's POST /items: %d", status)
		}
		if status, _ := call("GET", ledger+"/visit", bobToken); status != http.StatusOK {
			t.Errorf("bob's GET /visit: %d", status)
		}
		if got := rows(ledgerDB, "SELECT count(*) FROM items"); got != itemsBefore[ledger]+1 {
			t.Errorf("%d items after bob's insert, want %d", got, itemsBefore[ledger]+1)
		}
	})
	t.Run("once the decision is deleted the actor writes again", func(t *testing.T) {
		cp.DeleteDecision(t, id)
		deadline := time.Now().Add(60 * time.Second)
		for {
			status, _ := call("POST", ledger+"/items", aliceToken)
			if status == http.StatusCreated {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("POST /items: %d 60 s after the decision was deleted", status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestReadOnlyAtQueryNeedsAnIdentity(t *testing.T) {
	_, err := rampart.New(rampart.Config{Service: "x", ReadOnlyAtQuery: true})
	if err == nil || !strings.Contains(err.Error(), "Config.ReadOnlyAtQuery") {
		t.Fatalf("err %v, want one naming Config.ReadOnlyAtQuery", err)
	}
}

func TestReadOnlyFromContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := rampart.ReadOnlyFromContext(ctx); ok {
		t.Fatal("a bare context is read-only")
	}
	ro := rampart.NewReadOnlyContext(ctx, "d1")
	if id, ok := rampart.ReadOnlyFromContext(ro); !ok || id != "d1" {
		t.Fatalf("got %q %v, want d1", id, ok)
	}
	// Later inputs do not take the mark away.
	if id, ok := rampart.ReadOnlyFromContext(rampart.WithUntrusted(ro, rampart.SourceQuery, "x")); !ok || id != "d1" {
		t.Fatalf("after WithUntrusted: %q %v, want d1", id, ok)
	}
}
