package sqlguard_test

import (
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
	"modernc.org/sqlite"
)

func TestAGuardRefusesADriverOfAnotherDialect(t *testing.T) {
	a, _ := ramparttest.NewAgent(t, rampart.Config{})
	sqliteGuard, err := sqlguard.New(a, sqlguard.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqliteGuard.Open(stdlib.GetDefaultDriver(), "postgres://127.0.0.1/test"); err == nil || !strings.Contains(err.Error(), "speaks postgres") {
		t.Errorf("a SQLite guard opening pgx = %v, want an error naming PostgreSQL", err)
	}
	mysqlConnector, err := mysql.NewConnector(mysql.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	db := sqliteGuard.OpenDB(mysqlConnector)
	defer db.Close()
	if err := db.Ping(); err == nil || !strings.Contains(err.Error(), "sqlguard.MySQL") {
		t.Errorf("a SQLite guard's connection through the MySQL driver = %v, want the mismatch", err)
	}
	db2, err := sqliteGuard.Open(&sqlite.Driver{}, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.Ping(); err != nil {
		t.Errorf("the SQLite driver with a SQLite guard: %v", err)
	}
}
