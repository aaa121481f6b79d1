package sqlite_test

import (
	"context"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func opener(dir string) storetest.OpenFunc {
	return func(tb testing.TB) store.Store {
		s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: dir})
		if err != nil {
			tb.Fatalf("sqlite.Open: %v", err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.OpenFunc { return opener(t.TempDir()) })
}

func BenchmarkHeartbeat(b *testing.B) {
	storetest.BenchmarkHeartbeat(b, opener(b.TempDir()))
}

func BenchmarkAppendEvents(b *testing.B) {
	storetest.BenchmarkAppendEvents(b, opener(b.TempDir()))
}
