package sqlguard_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/sqlguard"
	"modernc.org/sqlite"
)

// A worker acting for an actor under a read-only decision (the Handler
// marks requests itself): the guarded database runs its reads and refuses
// its writes, a write hidden in a batch or a WITH clause included.
func ExampleGuard_Check_readOnly() {
	agent, err := rampart.New(rampart.Config{Service: "worker", Logger: slog.New(slog.DiscardHandler)})
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
	db, err := guard.Open(&sqlite.Driver{}, ":memory:")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one in-memory database
	if _, err := db.Exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hello')"); err != nil {
		fmt.Println(err)
		return
	}

	ctx := rampart.NewReadOnlyContext(context.Background(), "d-42")
	var n int
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM notes").Scan(&n)
	fmt.Println("SELECT:", n, err)
	for _, stmt := range []string{
		"DELETE FROM notes",
		"SELECT 1; DELETE FROM notes",
		"WITH x AS (SELECT 'spam') INSERT INTO notes SELECT * FROM x",
	} {
		_, err := db.ExecContext(ctx, stmt)
		fmt.Println(stmt+":", errors.Is(err, rampart.ErrBlocked))
	}
	// Output:
	// SELECT: 1 <nil>
	// DELETE FROM notes: true
	// SELECT 1; DELETE FROM notes: true
	// WITH x AS (SELECT 'spam') INSERT INTO notes SELECT * FROM x: true
}
