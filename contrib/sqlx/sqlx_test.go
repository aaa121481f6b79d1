package rampartsqlx_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/contribtest"
	"github.com/rampartsec/rampart/ramparttest"
)

type user struct {
	Name string `db:"name"`
	Role string `db:"role"`
}

// driverNames are the sqlx names of the guards' dialects, for rebinding.
var driverNames = map[string]string{"sqlite": "sqlite", "postgres": "pgx"}

func TestSQLBuiltFromInputIsRefusedAndSqlxsOwnUseRuns(t *testing.T) {
	a, rec := ramparttest.NewAgent(t, rampart.Config{})
	for _, d := range contribtest.Databases(t, a) {
		t.Run(d.Name, func(t *testing.T) {
			db := sqlx.NewDb(d.DB, driverNames[d.Name])
			name := contribtest.Injection
			ctx := rampart.WithUntrusted(context.Background(), "query", name)

			var users []user
			err := db.SelectContext(ctx, &users, "SELECT name, role FROM "+d.Table+" WHERE name = '"+name+"'")
			if !errors.Is(err, rampart.ErrBlocked) || len(users) != 0 {
				t.Errorf("Select built from input = %d rows, %v; want ErrBlocked", len(users), err)
			}
			if _, err := db.NamedExecContext(ctx, "UPDATE "+d.Table+" SET role = 'admin' WHERE name = '"+name+"'", map[string]any{}); !errors.Is(err, rampart.ErrBlocked) {
				t.Errorf("NamedExec built from input = %v, want ErrBlocked", err)
			}
			// Both refusals are events; sqlx's own use below adds none.
			for range 2 {
				if ev := rec.Next(t); ev.Kind != rampart.KindSQLInjection {
					t.Errorf("event %s, want sql_injection", ev.Kind)
				}
			}

			// sqlx's own use: bound, named and In arguments, the injection
			// among them as a value.
			if err := db.SelectContext(ctx, &users, db.Rebind("SELECT name, role FROM "+d.Table+" WHERE name = ?"), name); err != nil || len(users) != 0 {
				t.Errorf("bound Select = %d rows, %v", len(users), err)
			}
			if _, err := db.NamedExecContext(ctx, "UPDATE "+d.Table+" SET role = :role WHERE name = :name", user{Name: "bob", Role: "admin"}); err != nil {
				t.Errorf("NamedExec = %v", err)
			}
			q, args, err := sqlx.In("SELECT name, role FROM "+d.Table+" WHERE name IN (?) ORDER BY name", []string{"alice", "bob", name})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.SelectContext(ctx, &users, db.Rebind(q), args...); err != nil || len(users) != 2 || users[1].Role != "admin" {
				t.Errorf("In Select = %+v, %v; want alice and bob (admin)", users, err)
			}
			var u user
			if err := db.GetContext(ctx, &u, db.Rebind("SELECT name, role FROM "+d.Table+" WHERE name = ?"), "carol"); err != nil || u.Name != "carol" {
				t.Errorf("Get = %+v, %v", u, err)
			}
			// Events are delivered in order: if sqlx's own statements had
			// raised one, it would come before this marker's.
			db.ExecContext(ctx, "DELETE FROM "+d.Table+" WHERE name = '"+name+"' -- marker")
			if ev := rec.Next(t); !strings.Contains(ev.Detail, "marker") {
				t.Errorf("sqlx's own statements raised an event: %s %s", ev.Kind, ev.Detail)
			}
		})
	}
}
