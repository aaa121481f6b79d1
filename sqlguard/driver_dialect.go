package sqlguard

import (
	"database/sql/driver"
	"fmt"
	"reflect"
)

// driverDialects are the dialects of the drivers whose package is known:
// a guard that lexes another dialect than its driver's database speaks
// reads quotes and escapes where the database does not, and a statement it
// judged safe can be an injection to the database.
var driverDialects = map[string]Dialect{
	"github.com/jackc/pgx/v5/stdlib":       Postgres,
	"github.com/jackc/pgx/v4/stdlib":       Postgres,
	"github.com/lib/pq":                    Postgres,
	"github.com/go-sql-driver/mysql":       MySQL,
	"modernc.org/sqlite":                   SQLite,
	"github.com/mattn/go-sqlite3":          SQLite,
	"github.com/ncruces/go-sqlite3/driver": SQLite,
	"github.com/glebarez/go-sqlite":        SQLite,
}

// constName spells each dialect as its constant, for error messages.
var constName = map[Dialect]string{Postgres: "Postgres", MySQL: "MySQL", SQLite: "SQLite"}

// checkDriver returns an error when drv is a driver of a known package for
// another dialect than g's; nil for drivers it does not know.
func (g *Guard) checkDriver(drv driver.Driver) error {
	if drv == nil {
		return nil
	}
	t := reflect.TypeOf(drv)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if d, ok := driverDialects[t.PkgPath()]; ok && d != g.dialect {
		return fmt.Errorf("sqlguard: the driver %T speaks %v, but the guard was made for %v: make it with sqlguard.New(agent, sqlguard.%s)", drv, d, g.dialect, constName[d])
	}
	return nil
}
