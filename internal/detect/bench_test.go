package detect

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// mixedTraffic is a benign hour with attacks in it: what the engine sees
// on a busy service.
func mixedTraffic() []Event {
	tr := newTraffic(99)
	benignDay(tr, 400, time.Hour)
	evs := tr.events("m")
	for _, name := range []string{"credential-stuffing-distributed", "probing", "brute-force", "user-enumeration"} {
		evs = append(evs, generated[name]()...)
	}
	return evs
}

// BenchmarkProcess measures events per second through the engine with
// every built-in scenario loaded, on one goroutine:
//
//	go test -run '^$' -bench BenchmarkProcess -benchtime 3s -cpu 1 ./internal/detect/
func BenchmarkProcess(b *testing.B) {
	evs := mixedTraffic()
	e := mustEngine(b, Config{Scenarios: Builtin()})
	var alerts []Alert
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev := evs[i%len(evs)]
		// Later laps move on in time, so that buckets leak as in life.
		ev.Time = ev.Time.Add(time.Duration(i/len(evs)) * 2 * time.Hour)
		alerts = e.Process(ev)
	}
	_ = alerts
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProcessBatch is BenchmarkProcess with 256 events a lock.
func BenchmarkProcessBatch(b *testing.B) {
	evs := mixedTraffic()
	e := mustEngine(b, Config{Scenarios: Builtin()})
	const batch = 256
	buf := make([]Event, batch)
	var alerts []Alert
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		for j := range n {
			k := i + j
			buf[j] = evs[k%len(evs)]
			buf[j].Time = buf[j].Time.Add(time.Duration(k/len(evs)) * 2 * time.Hour)
		}
		alerts = e.ProcessBatch(alerts[:0], buf[:n])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestMemoryWithAMillionActors feeds one million distinct addresses, each
// a login failure for an unknown name and a 404, through every built-in,
// and reports the heap they hold after a GC. It takes a few seconds, so
// it runs when RAMPART_DETECT_MEMORY is set:
//
//	RAMPART_DETECT_MEMORY=1 go test -run TestMemoryWithAMillionActors -v ./internal/detect/
func TestMemoryWithAMillionActors(t *testing.T) {
	if os.Getenv("RAMPART_DETECT_MEMORY") == "" {
		t.Skip("set RAMPART_DETECT_MEMORY=1 to measure (a few seconds, ~1 GB of allocations)")
	}
	actors := 1_000_000
	if n, err := strconv.Atoi(os.Getenv("RAMPART_DETECT_MEMORY")); err == nil && n > 1 {
		actors = n
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	e := mustEngine(t, Config{Scenarios: Builtin()})
	start := time.Now()
	for i := range actors {
		ip := fmt.Sprintf("%d.%d.%d.%d", 1+i>>24&0x7f, i>>16&0xff, i>>8&0xff, i&0xff)
		at := t0.Add(time.Duration(i) * time.Microsecond) // a million actors in a second: all still in their windows
		ev := loginFailure(ip, fmt.Sprintf("nobody%07d", i), false)
		ev.ID, ev.Time, ev.Service = fmt.Sprintf("ev-%07d-a", i), at, "shop"
		e.Process(ev)
		req := request(ip, "", "", fmt.Sprintf("/missing/%d", i), 404)
		req.ID, req.Time = fmt.Sprintf("ev-%07d-b", i), at
		e.Process(req)
	}
	elapsed := time.Since(start)
	held := heap() - base
	st := e.Stats()
	keys := 0
	for _, s := range st.Scenarios {
		keys += s.Keys
	}
	t.Logf("%d actors, %d events in %s: %d buckets held, heap %.0f MB (%.0f bytes an actor, %.0f a bucket)",
		actors, st.Events, elapsed.Round(time.Millisecond), keys, float64(held)/(1<<20), float64(held)/float64(actors), float64(held)/float64(keys))
	if held > 512<<20 {
		t.Errorf("heap %d MB with %d actors, want under 512 MB", held>>20, actors)
	}
	runtime.KeepAlive(e)
}
