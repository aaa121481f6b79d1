package ratelimit_test

import (
	"fmt"
	"log"
	"time"

	"github.com/rampartsec/rampart/internal/gateway/ratelimit"
)

func Example() {
	// Two login attempts per second per address, five at once at most.
	// (Now is set only to make the output repeatable.)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	l, err := ratelimit.New(ratelimit.Config{Rate: 2, Burst: 5, Now: func() time.Time { return now }})
	if err != nil {
		log.Fatal(err)
	}

	key := "POST /login 203.0.113.7"
	for range 6 {
		fmt.Println(l.Allow(key))
	}
	now = now.Add(500 * time.Millisecond)
	fmt.Println(l.Allow(key))

	// Output:
	// true 0s
	// true 0s
	// true 0s
	// true 0s
	// true 0s
	// false 500ms
	// true 0s
}
