package sqlguard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/sqlguard"
	"modernc.org/sqlite"
)

type memSink struct{ ch chan rampart.Event }

func (m memSink) WriteEvents(_ context.Context, evs []rampart.Event) error {
	for _, e := range evs {
		m.ch <- e
	}
	return nil
}

func TestSmoke(t *testing.T) {
	sink := memSink{make(chan rampart.Event, 10)}
	a, err := rampart.New(rampart.Config{Service: "t", Sinks: []rampart.Sink{sink}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := sqlguard.New(a, sqlguard.SQLite)
	db, err := g.Open(&sqlite.Driver{}, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	db.Exec("create table u(id int, name text)")
	db.Exec("insert into u values (1,'a'),(2,'b')")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /u", func(w http.ResponseWriter, r *http.Request) {
		rows, err := db.Query("select id from u where name = '" + r.URL.Query().Get("name") + "'")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		fmt.Fprint(w, n)
	})
	srv := httptest.NewServer(a.Handler(mux))
	defer srv.Close()
	for _, in := range []string{"a", "O'Brien", "x' OR '1'='1"} {
		resp, err := http.Get(srv.URL + "/u?name=" + url.QueryEscape(in))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		t.Logf("%q -> %d %s", in, resp.StatusCode, b)
	}
	select {
	case ev := <-sink.ch:
		t.Logf("%+v", ev)
	default:
		t.Error("no event")
	}
	_ = errors.Is
	_ = sql.ErrNoRows
}
