package loadtest

import (
	"fmt"
	"slices"
	"time"
)

// samples are durations measured one by one.
type samples []time.Duration

// Summary describes samples: how many, and their percentiles.
type Summary struct {
	N             int
	P50, P99, Max time.Duration
}

func (s samples) summary() Summary { return Summarize(s) }

// Summarize returns the count and percentiles of ds (nearest rank).
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s)) + 0.999999)
		return s[min(max(i-1, 0), len(s)-1)]
	}
	return Summary{N: len(s), P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1]}
}

func (s Summary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %v, p99 %v, max %v (n=%d)", round(s.P50), round(s.P99), round(s.Max), s.N)
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
