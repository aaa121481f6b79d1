package sqlguard_test

import (
	"context"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/sqlguard"
)

// BenchmarkCheckReadOnly measures Guard.Check on a typical parameterized
// SELECT for an ordinary actor (the cost of asking whether it is
// read-only) and for a read-only one (the statement lexed and classified).
//
//	go test -run='^$' -bench=CheckReadOnly ./sqlguard/
func BenchmarkCheckReadOnly(b *testing.B) {
	const stmt = "SELECT o.id, o.item, o.total, u.name FROM orders o JOIN users u ON u.id = o.owner WHERE o.owner = $1 AND o.deleted_at IS NULL ORDER BY o.created DESC LIMIT 20"
	g := newBenchGuard(b, sqlguard.Postgres)
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{
		{"actor=ordinary", context.Background()},
		{"actor=read-only", rampart.NewReadOnlyContext(context.Background(), "d1")},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := g.Check(c.ctx, stmt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
