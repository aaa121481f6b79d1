package rampartgorm_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/sqlguard"
)

// GORM over a guarded PostgreSQL database: a bound argument runs, a Where
// built from the same input is refused. (It needs a PostgreSQL server, so
// it is compiled and not run; gorm_test.go runs the same on one.)
func Example() {
	agent, err := rampart.New(rampart.Config{Service: "users", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer agent.Close(context.Background())
	guard, err := sqlguard.New(agent, sqlguard.Postgres)
	if err != nil {
		fmt.Println(err)
		return
	}
	sqlDB, err := guard.Open(stdlib.GetDefaultDriver(), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sqlDB.Close()
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		fmt.Println(err)
		return
	}

	name := "x' OR '1'='1" // from a request, which agent.Handler records
	db = db.WithContext(rampart.WithUntrusted(context.Background(), "query", name))
	var n int64
	err = db.Table("pg_roles").Where("rolname = ?", name).Count(&n).Error
	fmt.Println("bound:", n, err)
	err = db.Table("pg_roles").Where("rolname = '" + name + "'").Count(&n).Error
	fmt.Println("built:", errors.Is(err, rampart.ErrBlocked))
	// Prints:
	// bound: 0 <nil>
	// built: true
}
