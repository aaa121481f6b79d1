package sqlguard_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rampartsec/rampart/sqlguard"
)

// COMMIT, ROLLBACK (END) and RELEASE write nothing of their own: they end
// what the application opened. A read-only actor's handler that ends the
// application's transaction must not be refused, on each database, and
// the statement must do what it says (the commit makes the application's
// row visible, the rollback removes it).
func TestReadOnlyActorEndsTheApplicationsTransaction(t *testing.T) {
	for _, d := range []sqlguard.Dialect{sqlguard.Postgres, sqlguard.MySQL, sqlguard.SQLite} {
		t.Run(d.String(), func(t *testing.T) {
			rdb := roDatabase(t, d)
			db, bare, ro := guardedReadOnly(t, rdb)
			tbl := fmt.Sprintf("ro_end_%08x", rand.Uint32())
			if _, err := bare.Exec("CREATE TABLE " + tbl + " (a INT)"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+tbl) })
			if d == sqlguard.SQLite {
				bare.Close() // one connection: the guarded pool's
			}
			bg := context.Background()
			conn, err := db.Conn(bg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			count := func() int {
				var n int
				if err := conn.QueryRowContext(bg, "SELECT count(*) FROM "+tbl).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			type ending struct {
				stmt  string
				keeps bool
			}
			ends := []ending{{"COMMIT", true}, {"ROLLBACK", false}, {"COMMIT WORK", true}, {"ROLLBACK WORK", false}}
			switch d {
			case sqlguard.SQLite:
				ends = []ending{{"COMMIT", true}, {"ROLLBACK", false}, {"COMMIT TRANSACTION", true}, {"ROLLBACK TRANSACTION", false}, {"END", true}}
			case sqlguard.Postgres:
				ends = append(ends, ending{"END", true})
			}
			want := 0
			for _, end := range ends {
				for _, q := range []string{"BEGIN", "INSERT INTO " + tbl + " VALUES (1)", "SAVEPOINT sp"} {
					if _, err := conn.ExecContext(bg, q); err != nil {
						t.Fatalf("the application's %s: %v", q, err)
					}
				}
				for _, q := range []string{"RELEASE SAVEPOINT sp", end.stmt} {
					if _, err := conn.ExecContext(ro, q); err != nil {
						t.Fatalf("the read-only actor's %s: %v, want it to run", q, err)
					}
				}
				if end.keeps {
					want++
				}
				if n := count(); n != want {
					t.Errorf("after the read-only actor's %s: %d rows, want %d", end.stmt, n, want)
				}
			}
		})
	}
}
