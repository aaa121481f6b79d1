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

// A queue worker marks its job's payload as untrusted; the guarded database
// then refuses the statement that the payload would rewrite, and runs the
// one where it stays inside a string literal.
func ExampleGuard_Open() {
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

	payload := "x' OR '1'='1"
	ctx := rampart.WithUntrusted(context.Background(), "job", payload)

	_, err = db.ExecContext(ctx, "SELECT 1 WHERE 'a' = '"+payload+"'")
	fmt.Println("concatenated:", errors.Is(err, rampart.ErrBlocked))

	var n int
	err = db.QueryRowContext(ctx, "SELECT count(*) WHERE 'a' = ?", payload).Scan(&n)
	fmt.Println("parameterized:", err, n)
	// Output:
	// concatenated: true
	// parameterized: <nil> 0
}
