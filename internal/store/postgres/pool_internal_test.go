package postgres

import (
	"testing"

	"github.com/rampartsec/rampart/internal/store/storetest"
)

// Without pool_max_conns in the DSN the pool is larger than pgx's default
// of max(4, CPUs), which queued a fleet's writes and reads behind 4
// connections per replica; a DSN that sets it is obeyed.
func TestThePoolHolds16ConnectionsUnlessTheDSNSays(t *testing.T) {
	dsn := storetest.PostgresSchema(t, "rampart_pool_test_")
	for _, c := range []struct {
		dsn  string
		want int32
	}{
		{dsn, defaultMaxConns},
		{dsn + "&pool_max_conns=3", 3},
	} {
		s, err := Open(t.Context(), Config{DSN: c.dsn})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.pool.Config().MaxConns; got != c.want {
			t.Errorf("DSN %s: pool of %d, want %d", c.dsn, got, c.want)
		}
		s.Close()
	}
}
