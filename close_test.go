package rampart_test

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/controltest"
)

// goroutinesIn counts the goroutines whose stack has a frame of fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn+"(")) {
			count++
		}
	}
	return count
}

// Close says it stops following the control plane: when it returns, the
// goroutines that did so are gone, not merely told to go.
func TestCloseJoinsTheGoroutinesItStops(t *testing.T) {
	const heartbeats = "github.com/rampartsec/rampart.(*zeroTrust).heartbeats"
	const watch = "github.com/rampartsec/rampart/internal/controlsync.(*Syncer).Run"
	cp := controltest.Start(t, controltest.Config{})
	src := cp.Join(t, "orders")
	before := map[string]int{heartbeats: goroutinesIn(heartbeats), watch: goroutinesIn(watch)}
	agent, err := rampart.New(rampart.Config{
		Service: "orders", Identity: src, ControlPlane: cp.URL,
		Sinks: []rampart.Sink{rampart.NewSlogSink(slog.New(slog.DiscardHandler))}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := agent.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	// The test sees the goroutines it is about: otherwise it proves nothing.
	for fn, n := range before {
		for goroutinesIn(fn) == n {
			if ctx.Err() != nil {
				t.Fatalf("no goroutine in %s after New", fn)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := agent.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for fn, n := range before {
		if got := goroutinesIn(fn); got != n {
			t.Errorf("%d goroutines in %s after Close, %d before New", got, fn, n)
		}
	}
}
