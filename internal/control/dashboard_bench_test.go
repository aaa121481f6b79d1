package control_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

// BenchmarkDashboard measures the dashboard's queries over each store
// holding 10,000 or 100,000 events of the last week, 1,000 services of 2
// instances and a policy naming every service: what one page load costs.
//
//	go test -run XXX -bench Dashboard -benchtime 20x ./internal/control/
func BenchmarkDashboard(b *testing.B) {
	for _, events := range []int{10000, 100000} {
		for _, be := range backends {
			b.Run(fmt.Sprintf("%s/events=%d", be.name, events), func(b *testing.B) { benchmarkDashboard(b, be.open, events) })
		}
	}
}

func benchmarkDashboard(b *testing.B, open func(testing.TB) store.Store, events int) {
	const services = 1000
	s := open(b)
	now := time.Now().UTC()
	e := newStoreEnv(b, s, now)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 1))
	batch := make([]store.Event, 0, store.MaxEventBatch)
	for i := range events {
		ev := store.Event{ID: fmt.Sprintf("b-%06d", i), Time: now.Add(-time.Duration(r.Int64N(int64(7 * 24 * time.Hour)))),
			Kind: dashKinds[r.IntN(len(dashKinds))], Action: dashActions[r.IntN(len(dashActions))],
			Service: fmt.Sprintf("svc-%04d", r.IntN(services)), Route: "GET /items/{id}",
			ActorIP: fmt.Sprintf("10.%d.%d.%d", r.IntN(4), r.IntN(256), r.IntN(256)), ActorUser: fmt.Sprintf("user-%d", r.IntN(5000)),
			TraceID: fmt.Sprintf("%032x", r.IntN(20000)), Data: []byte(`{"detail":"SELECT ⟦1 OR 1=1⟧","location":"shop/db.go:42"}`)}
		if batch = append(batch, ev); len(batch) == cap(batch) {
			if _, err := s.AppendEvents(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	var pol strings.Builder
	pol.WriteString("services:\n")
	for i := range services {
		svc := fmt.Sprintf("svc-%04d", i)
		fmt.Fprintf(&pol, "  %s:\n    allow:\n      - callers: [svc-%04d, gateway]\n        paths: [\"/items/{id}\"]\n    sensitive:\n      - methods: [DELETE]\n", svc, (i+1)%services)
		for j := range 2 {
			if err := s.Heartbeat(ctx, store.Instance{Service: svc, ID: fmt.Sprint(j), Exposed: i%10 == 0,
				Peers:   []string{fmt.Sprintf("spiffe://rampart.test/svc/svc-%04d", (i+1)%services)},
				Callers: []string{fmt.Sprintf("svc-%04d GET /items/{id}", (i+services-1)%services)},
				Modules: []store.Module{{Path: "example.com/m", Version: "v1.0.0"}}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := s.PutPolicy(ctx, pol.String(), store.AnyVersion); err != nil {
		b.Fatal(err)
	}
	h := e.h.(*control.Handler)
	b.Run("overview-24h", func(b *testing.B) {
		defer cpuPerOp(b)()
		for b.Loop() {
			o, err := h.Overview(ctx, control.OverviewQuery{Since: now.Add(-24 * time.Hour), Until: now})
			if err != nil || o.EventsTotal == 0 || len(o.Services) != services {
				b.Fatalf("%v, %d events, %d services", err, o.EventsTotal, len(o.Services))
			}
		}
	})
	b.Run("overview-7d", func(b *testing.B) {
		defer cpuPerOp(b)()
		for b.Loop() {
			if _, err := h.Overview(ctx, control.OverviewQuery{Since: now.Add(-7 * 24 * time.Hour), Until: now}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("graph", func(b *testing.B) {
		defer cpuPerOp(b)()
		for b.Loop() {
			g, err := h.Graph(ctx, now.Add(-24*time.Hour), now)
			if err != nil || len(g.Nodes) < services {
				b.Fatalf("%v, %d nodes", err, len(g.Nodes))
			}
		}
	})
	b.Run("search-cidr-attacks-page", func(b *testing.B) {
		defer cpuPerOp(b)()
		for b.Loop() {
			evs, err := s.QueryEvents(ctx, store.EventFilter{ActorCIDR: "10.1.7.0/24", Attacks: true, Reverse: true, Limit: 100})
			if err != nil || len(evs) == 0 {
				b.Fatal(err, len(evs))
			}
		}
	})
	b.Run("timeline-ip", func(b *testing.B) {
		defer cpuPerOp(b)()
		for b.Loop() {
			if _, err := h.ActorTimeline(ctx, control.TimelineQuery{Actor: store.Actor{Scope: store.ScopeIP, Value: "10.1.7.9"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("event-detail", func(b *testing.B) {
		defer cpuPerOp(b)()
		for b.Loop() {
			if _, err := h.EventDetail(ctx, fmt.Sprintf("b-%06d", events/2), control.DefaultRelated); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// cpuPerOp reports the CPU time this process spent per operation
// (cpu-ms/op), which a busy machine inflates far less than the wall time;
// under PostgreSQL the server's share is not in it.
func cpuPerOp(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64(cpu()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	}
}
