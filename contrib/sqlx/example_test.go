package rampartsqlx_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/sqlguard"
)

// sqlx over a guarded SQLite database: a bound argument runs, SQL built
// from the same input is refused.
func Example() {
	agent, err := rampart.New(rampart.Config{Service: "users", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer agent.Close(context.Background())
	guard, err := sqlguard.New(agent, sqlguard.SQLite)
	if err != nil {
		fmt.Println(err)
		return
	}
	sqlDB, err := guard.Open(&sqlite.Driver{}, ":memory:")
	if err != nil {
		fmt.Println(err)
		return
	}
	db := sqlx.NewDb(sqlDB, "sqlite")
	defer db.Close()
	db.MustExec("CREATE TABLE users (name TEXT)")
	db.MustExec("INSERT INTO users VALUES ('alice')")

	name := "x' OR '1'='1" // from a request, which agent.Handler records
	ctx := rampart.WithUntrusted(context.Background(), "query", name)
	var names []string
	err = db.SelectContext(ctx, &names, "SELECT name FROM users WHERE name = ?", name)
	fmt.Println("bound:", names, err)
	err = db.SelectContext(ctx, &names, "SELECT name FROM users WHERE name = '"+name+"'")
	fmt.Println("built:", errors.Is(err, rampart.ErrBlocked))
	// Output:
	// bound: [] <nil>
	// built: true
}
