package fakeclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fakeclock"
)

func TestTheClockMovesOnlyWhenAdvanced(t *testing.T) {
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	c := fakeclock.New(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want the start %v", got, start)
	}
	c.Advance(90 * time.Second)
	c.Advance(-30 * time.Second)
	if got, want := c.Now(), start.Add(time.Minute); !got.Equal(want) {
		t.Errorf("after +90s and -30s, Now = %v, want %v", got, want)
	}
}

// Read from the component's goroutines while the test moves it (run with
// -race).
func TestTheClockIsSafeForConcurrentUse(t *testing.T) {
	c := fakeclock.New(time.Unix(0, 0))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				c.Advance(time.Millisecond)
				c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), time.Unix(4, 0); !got.Equal(want) {
		t.Errorf("Now = %v after 4000 advances of 1ms, want %v", got, want)
	}
}
