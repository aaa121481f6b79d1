package goroutine

import (
	"sync"
	"testing"
)

func TestIDIsStableWithinAGoroutineAndDistinctAcrossLiveOnes(t *testing.T) {
	self := ID()
	if self == 0 {
		t.Fatal("ID() = 0")
	}
	if again := ID(); again != self {
		t.Fatalf("ID changed within one goroutine: %x then %x", self, again)
	}
	const n = 50
	ids := make([]uintptr, n)
	var ready, release sync.WaitGroup
	ready.Add(n)
	release.Add(1)
	var done sync.WaitGroup
	for i := range n {
		done.Go(func() {
			ids[i] = ID()
			ready.Done()
			release.Wait() // stay alive so no ID is reused while we compare
		})
	}
	ready.Wait()
	seen := map[uintptr]bool{self: true}
	for i, id := range ids {
		if seen[id] {
			t.Fatalf("goroutine %d shares ID %x with another live goroutine", i, id)
		}
		seen[id] = true
	}
	release.Done()
	done.Wait()
}

func BenchmarkID(b *testing.B) {
	for b.Loop() {
		_ = ID()
	}
}
