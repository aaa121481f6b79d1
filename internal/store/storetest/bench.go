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

// BenchmarkHeartbeat measures the common heartbeat, a known instance's
// refresh, among 100 instances of its service, without and with an
// instance quota (HeartbeatQuota, which first looks the instance up).
func BenchmarkHeartbeat(b *testing.B, open OpenFunc) {
	s := open(b)
	ctx := context.Background()
	const instances = 100
	in := store.Instance{Service: "shop", GoVersion: "go1.26.0",
		Modules: []store.Module{{Path: "github.com/jackc/pgx/v5", Version: "v5.7.0"}}, Routes: []string{"GET /items", "POST /orders"}}
	for i := range instances {
		in.ID = fmt.Sprintf("shop-%03d", i)
		if err := s.Heartbeat(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	quota := store.InstanceQuota{Max: 1000, LiveAfter: time.Now().Add(-time.Hour)}
	for _, bc := range []struct {
		name string
		beat func(store.Instance) error
	}{
		{"no quota", func(in store.Instance) error { return s.Heartbeat(ctx, in) }},
		{"quota", func(in store.Instance) error { return s.HeartbeatQuota(ctx, in, quota) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				in.ID = fmt.Sprintf("shop-%03d", n%instances)
				if err := bc.beat(in); err != nil {
					b.Fatal(err)
				}
				n++
			}
		})
	}
}
