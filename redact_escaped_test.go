package rampart_test

import (
	"database/sql"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

// TestEventsNeverCarryAnEscapedPassword: an application that escapes the
// password correctly but concatenates another field raw puts the password
// in the statement escaped (its quote doubled, or backslash-escaped in MySQL). The
// guard blocks the injection in the other field and its event holds the
// statement; redaction looked for the password only as it was sent, so a
// password with a quote or a backslash was stored in clear.
func TestEventsNeverCarryAnEscapedPassword(t *testing.T) {
	const secret = `O'Hara\Pass-2024`
	backends := []struct {
		name    string
		dialect sqlguard.Dialect
		open    func(g *sqlguard.Guard) (*sql.DB, error)
		escape  func(string) string
	}{
		{"sqlite", sqlguard.SQLite,
			func(g *sqlguard.Guard) (*sql.DB, error) { return g.Open(&sqlite.Driver{}, ":memory:") },
			func(s string) string { return strings.ReplaceAll(s, "'", "''") }},
		{"mysql", sqlguard.MySQL,
			func(g *sqlguard.Guard) (*sql.DB, error) {
				dsn := "root@tcp(127.0.0.1:3306)/test?timeout=3s"
				if d := os.Getenv("RAMPART_TEST_MYSQL_DSN"); d != "" {
					dsn = d
				}
				return g.Open(&mysql.MySQLDriver{}, dsn)
			},
			strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			a, events := ramparttest.NewAgent(t, rampart.Config{})
			g, err := sqlguard.New(a, b.dialect)
			if err != nil {
				t.Fatal(err)
			}
			db, err := b.open(g)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Ping(); err != nil {
				if b.name == "mysql" && os.Getenv("CI") != "true" {
					t.Skipf("MySQL unavailable: %v", err)
				}
				t.Fatal(err)
			}
			ran := 0
			mux := http.NewServeMux()
			mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
				q := "SELECT count(*) FROM (SELECT 'alice' AS name, 'x' AS password) u WHERE name = '" +
					r.FormValue("name") + "' AND password = '" + b.escape(r.FormValue("password")) + "'"
				var n int
				if err := db.QueryRowContext(r.Context(), q).Scan(&n); err == nil {
					ran++
				}
			})
			srv := httptest.NewServer(a.Handler(mux))
			defer srv.Close()
			// The escaped statement runs as it should: the password is data.
			resp, err := http.PostForm(srv.URL+"/login", url.Values{"name": {"alice"}, "password": {secret}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || ran != 1 {
				t.Fatalf("the escaped password: %s, ran %d; want 200 and the statement run", resp.Status, ran)
			}
			resp, err = http.PostForm(srv.URL+"/login", url.Values{"name": {"alice' --"}, "password": {secret}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || ran != 1 {
				t.Fatalf("the injection in name: %s, ran %d; want 403 and not run", resp.Status, ran)
			}
			ev := events.Next(t)
			js := eventJSON(t, ev)
			for _, f := range []string{"Hara", "Pass-2024"} {
				if strings.Contains(js, f) {
					t.Errorf("the event holds %q of the password: %s", f, js)
				}
			}
			if !strings.Contains(ev.Detail, "password = '"+rampart.Redacted+"'") || !strings.Contains(ev.Detail, "⟦alice' --⟧") {
				t.Errorf("detail %q: want the injection marked and the password's place shown redacted", ev.Detail)
			}
		})
	}
}

// TestReasonNeverQuotesASecret: a password whose own bytes are an escape
// sequence (a doubled quote in standard SQL) concatenated raw is refused because it
// changes its value inside the literal, and the guard's reason says what the
// database would have read: the decoded password, which redaction did not
// look for. The reason keeps its words, not the text it quotes.
func TestReasonNeverQuotesASecret(t *testing.T) {
	base, events := loginServer(t, rampart.Config{})
	resp := postLogin(t, base, url.Values{"name": {"bob"}, "password": {"sec''ret-horse-battery"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403 (the doubled quote changes the password's value)", resp.StatusCode)
	}
	ev := events.Next(t)
	js := eventJSON(t, ev)
	for _, f := range []string{"horse", "battery", "sec'ret", "sec''ret"} {
		if strings.Contains(js, f) {
			t.Errorf("the event holds %q of the password: %s", f, js)
		}
	}
	if !strings.Contains(ev.Reason, "changes its value inside a string") {
		t.Errorf("reason %q no longer says why the input was refused", ev.Reason)
	}
}

// TestEventPathNeverCarriesASecret: a secret in a wildcard of the route
// pattern ("/reset/{token}") is an input named token, which redaction
// blanks in the statement; but the event's path, filled in after
// redaction, still held it.
func TestEventPathNeverCarriesASecret(t *testing.T) {
	a, events, db := guardedSQLite(t, rampart.Config{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /reset/{token}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		q := "SELECT count(*) FROM (SELECT 'a@b.c' AS email) u WHERE email = '" + r.FormValue("email") + "'"
		if err := db.QueryRowContext(r.Context(), q).Scan(&n); err == nil {
			t.Error("the injection ran")
		}
	})
	srv := httptest.NewServer(a.Handler(mux))
	defer srv.Close()
	const token = "rst-7f3a9c2e41d8b6"
	resp, err := http.PostForm(srv.URL+"/reset/"+token, url.Values{"email": {"x' OR '1'='1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	ev := events.Next(t)
	if js := eventJSON(t, ev); strings.Contains(js, "7f3a9c2e41d8b6") {
		t.Errorf("the event holds the reset token: %s", js)
	}
	if ev.Path != "/reset/"+rampart.Redacted {
		t.Errorf("path %q, want the token's place shown redacted", ev.Path)
	}
}
