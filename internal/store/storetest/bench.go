package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// BenchmarkAppendEvents measures ingestion of batches of 100 new events,
// each with a realistic JSON body, and reports events/s.
func BenchmarkAppendEvents(b *testing.B, open OpenFunc) {
	s := open(b)
	const size = 100
	template := events("tmpl", 1, time.Now())[0]
	template.ActorIP, template.ActorUser, template.TraceID = "203.0.113.7", "alice", "4bf92f3577b34da6a3ce929d0e0e4736"
	batch := make([]store.Event, size)
	ctx := context.Background()
	n := 0
	b.ResetTimer()
	for b.Loop() {
		for i := range batch {
			e := template
			e.ID = fmt.Sprintf("bench-%012d", n)
			e.Time = template.Time.Add(time.Duration(n))
			batch[i] = e
			n++
		}
		got, err := s.AppendEvents(ctx, batch)
		if err != nil || got != size {
			b.Fatalf("AppendEvents = %d, %v", got, err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
