// Package benchmesh measures the calls of the zero-trust benchmarks: the
// latency of each call, reported as percentiles, and the process's CPU time
// per call, which varies less than latency when other jobs share the cores.
package benchmesh

import (
	"slices"
	"testing"
	"time"
)

// Latencies are the durations of a benchmark's calls.
type Latencies []time.Duration

// Since records a call that began at start.
func (l *Latencies) Since(start time.Time) {
	*l = append(*l, time.Since(start))
}

// quantile returns the q-quantile (nearest rank) of sorted, in µs.
func quantile(sorted Latencies, q float64) float64 {
	return float64(sorted[int(q*float64(len(sorted)-1)+0.5)]) / float64(time.Microsecond)
}

func (l Latencies) mean() float64 {
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	return float64(sum) / float64(time.Microsecond) / float64(len(l))
}

var quantiles = []struct {
	q    float64
	name string
}{{0.50, "p50"}, {0.90, "p90"}, {0.99, "p99"}}

// A Recorder collects the durations of a benchmark's b.N calls and the CPU
// time they take.
type Recorder struct {
	b   *testing.B
	lat Latencies
	cpu time.Duration // process CPU time at Start; negative if unknown
}

// Start returns a Recorder for b's b.N calls and resets b's timer: call it
// after the setup, just before the loop.
func Start(b *testing.B) *Recorder {
	r := &Recorder{b: b, lat: make(Latencies, 0, b.N)}
	b.ResetTimer()
	r.cpu = cpuTime()
	return r
}

// Since records a call that began at start.
func (r *Recorder) Since(start time.Time) { r.lat.Since(start) }

// Stop stops b's timer and reports, besides ns/op, the p50, p90 and p99 of
// the recorded calls in µs and, where the system tells it, the CPU time of
// the whole process per call (cpu-µs/op: every goroutine, client's and
// server's, the runtime's, and the kernel's on its behalf).
func (r *Recorder) Stop() {
	cpu := cpuTime()
	r.b.StopTimer()
	if len(r.lat) == 0 {
		return
	}
	if r.cpu >= 0 && cpu >= 0 {
		r.b.ReportMetric(float64(cpu-r.cpu)/float64(time.Microsecond)/float64(len(r.lat)), "cpu-µs/op")
	}
	slices.Sort(r.lat)
	for _, q := range quantiles {
		r.b.ReportMetric(quantile(r.lat, q.q), q.name+"-µs")
	}
}

// ReportPair reports calls measured in pairs, one to each of two servers
// in turn, so that both see the same moments of a noisy machine: for each
// side its mean ("<name>-µs/call") and its p50, p90 and p99
// ("<name>-p50-µs"), and at each of those what the second side adds to
// the first ("added-p50-µs"): a difference of percentiles, not a
// percentile of differences.
func ReportPair(b *testing.B, baseName string, base Latencies, name string, with Latencies) {
	if len(base) == 0 || len(with) == 0 {
		return
	}
	b.ReportMetric(base.mean(), baseName+"-µs/call")
	b.ReportMetric(with.mean(), name+"-µs/call")
	b.ReportMetric(with.mean()-base.mean(), "added-µs/call")
	slices.Sort(base)
	slices.Sort(with)
	for _, q := range quantiles {
		x, y := quantile(base, q.q), quantile(with, q.q)
		b.ReportMetric(x, baseName+"-"+q.name+"-µs")
		b.ReportMetric(y, name+"-"+q.name+"-µs")
		b.ReportMetric(y-x, "added-"+q.name+"-µs")
	}
}
