package rampart_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"modernc.org/sqlite"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

// guardedSQLite returns an agent with cfg, its events, and an in-memory
// SQLite database opened through the SQL guard, closed when the test ends.
func guardedSQLite(t *testing.T, cfg rampart.Config) (*rampart.Agent, *ramparttest.Recorder, *sql.DB) {
	t.Helper()
	a, events := ramparttest.NewAgent(t, cfg)
	g, err := sqlguard.New(a, sqlguard.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	db, err := g.Open(&sqlite.Driver{}, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return a, events, db
}

// loginServer serves a login handler that builds its query by
// concatenation, over a real SQLite database behind the SQL guard, and
// returns the URL and the agent's events.
func loginServer(t *testing.T, cfg rampart.Config) (string, *ramparttest.Recorder) {
	t.Helper()
	a, events, db := guardedSQLite(t, cfg)
	db.SetMaxOpenConns(1) // one in-memory database
	if _, err := db.Exec(`CREATE TABLE users (name TEXT, password TEXT); INSERT INTO users VALUES ('alice', 'wonderland')`); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		var n int
		q := "SELECT count(*) FROM users WHERE name = '" + r.FormValue("name") + "' AND password = '" + r.FormValue(cfgPasswordField(cfg)) + "'"
		if err := db.QueryRowContext(r.Context(), q).Scan(&n); err != nil {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		if n == 0 {
			http.Error(w, "wrong", http.StatusUnauthorized)
		}
	})
	srv := httptest.NewServer(a.Handler(mux))
	t.Cleanup(srv.Close)
	return srv.URL, events
}

// cfgPasswordField is the form field the login handler reads the password
// from: "pin_code" when the test configured that word as a secret.
func cfgPasswordField(cfg rampart.Config) string {
	if len(cfg.SecretNames) > 0 {
		return "pin_code"
	}
	return "password"
}

func postLogin(t *testing.T, base string, form url.Values) *http.Response {
	t.Helper()
	resp, err := http.PostForm(base+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func eventJSON(t *testing.T, ev rampart.Event) string {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEventsNeverCarryAPasswordInClear(t *testing.T) {
	base, events := loginServer(t, rampart.Config{})

	t.Run("another input's secret in the statement is blanked, the attack stays", func(t *testing.T) {
		const secret = "correct-horse-battery"
		resp := postLogin(t, base, url.Values{"name": {"alice' --"}, "password": {secret}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403: the injection in name was not blocked", resp.StatusCode)
		}
		ev := events.Next(t)
		js := eventJSON(t, ev)
		if strings.Contains(js, secret) {
			t.Fatalf("the event carries the password in clear: %s", js)
		}
		if ev.Input.Value != "alice' --" || !strings.Contains(ev.Detail, "⟦alice' --⟧") {
			t.Errorf("the attacking input must stay visible: input %q, detail %q", ev.Input.Value, ev.Detail)
		}
		if !strings.Contains(ev.Detail, "password = '"+rampart.Redacted+"'") {
			t.Errorf("detail %q does not show where the redacted value stood", ev.Detail)
		}
	})

	t.Run("an injection through the password field keeps its marks, not its value", func(t *testing.T) {
		const attack = "x' OR 'a'='a"
		resp := postLogin(t, base, url.Values{"name": {"bob"}, "password": {attack}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
		ev := events.Next(t)
		if strings.Contains(eventJSON(t, ev), attack) {
			t.Fatalf("the password field's value is in the event: %+v", ev)
		}
		if ev.Input.Name != "password" || ev.Input.Value != rampart.Redacted {
			t.Errorf("input = %+v, want the password field with its value redacted", ev.Input)
		}
		if !strings.Contains(ev.Detail, "⟦"+rampart.Redacted+"⟧") || !strings.Contains(ev.Detail, "name = 'bob'") {
			t.Errorf("detail %q lost its structure", ev.Detail)
		}
	})
}

func TestSecretNamesAddWordsToRedact(t *testing.T) {
	base, events := loginServer(t, rampart.Config{SecretNames: []string{"pinCode"}})
	const secret = "918273645"
	resp := postLogin(t, base, url.Values{"name": {"alice' --"}, "pin_code": {secret}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	ev := events.Next(t)
	if strings.Contains(eventJSON(t, ev), secret) {
		t.Fatalf("a configured secret name was not redacted: %+v", ev)
	}
}

func TestInputsWhoseNamesOnlyContainASecretWordAreKept(t *testing.T) {
	// "monkey" contains "key" but is not a key: the value stays, so that
	// redaction does not blind the events of ordinary parameters.
	a, events, db := guardedSQLite(t, rampart.Config{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /zoo", func(w http.ResponseWriter, r *http.Request) {
		var s sql.NullString
		err := db.QueryRowContext(r.Context(), "SELECT '"+r.FormValue("monkey")+"'").Scan(&s)
		if err == nil {
			t.Error("the injection ran")
		}
	})
	srv := httptest.NewServer(a.Handler(mux))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/zoo?monkey=" + url.QueryEscape("x' UNION SELECT sqlite_version() --"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ev := events.Next(t)
	if ev.Input.Value != "x' UNION SELECT sqlite_version() --" {
		t.Errorf("input value %q, want it kept", ev.Input.Value)
	}
}
