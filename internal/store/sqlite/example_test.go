package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "rampart")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := sqlite.Open(ctx, sqlite.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// A watcher subscribes first, then reads what changed.
	woken, _ := s.Subscribe(ctx)
	d, err := s.CreateDecision(ctx, store.Decision{
		Scope: store.ScopeCIDR, Value: "203.0.113.77/24", Action: store.ActionBlock,
		Reason: "SQL injection attempts", Expires: time.Now().Add(time.Hour),
	})
	if err != nil {
		log.Fatal(err)
	}
	rev := <-woken
	changes, _, _ := s.Changes(ctx, rev-1)
	fmt.Println(changes[0].Kind, changes[0].Op, changes[0].Key == d.ID, d.Value)
	// Output: decision create true 203.0.113.0/24
}
