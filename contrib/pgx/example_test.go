package rampartpgx_test

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rampartsec/rampart"
	rampartpgx "github.com/rampartsec/rampart/contrib/pgx"
)

// The pool a service already has, wrapped in one line; code that handles
// requests uses the guarded pool with the request's context.
func ExampleNewPool() {
	agent, err := rampart.New(rampart.Config{Service: "users"})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())
	raw, err := pgxpool.New(context.Background(), "postgres://127.0.0.1/app")
	if err != nil {
		log.Fatal(err)
	}
	pool := rampartpgx.NewPool(agent, raw)
	defer pool.Close()

	ctx := context.Background() // in a handler: r.Context()
	var role string
	_ = pool.QueryRow(ctx, "SELECT role FROM users WHERE name = $1", "alice").Scan(&role)
}
