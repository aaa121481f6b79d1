package rampart_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
)

// nopWriter is a ResponseWriter that costs nothing, so that the benchmark
// measures the middleware.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkHandlerSummary is the cost per request of request summaries:
// the Handler around a route that reads an item, with and without
// Config.SummaryWindow, over requests from 1,000 actors (the summary's
// map holds 1,000 keys, as it would at 10,000 requests per second). The
// summaries are shipped each second to a sink that drops them.
//
//	go test -run '^$' -bench HandlerSummary -benchmem -count 5 .
func BenchmarkHandlerSummary(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("GET /owned/{id}", func(w http.ResponseWriter, r *http.Request) {
		rampart.ObjectAccess(r.Context(), "item", r.PathValue("id"), "")
		w.Write([]byte("ok"))
	})
	reqs := make([]*http.Request, 1000)
	owned := make([]*http.Request, len(reqs))
	for i := range reqs {
		remote := "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+1) + ":5000"
		reqs[i] = httptest.NewRequest("GET", "/items/"+strconv.Itoa(i%97), nil)
		reqs[i].RemoteAddr = remote
		owned[i] = httptest.NewRequest("GET", "/owned/"+strconv.Itoa(i%97), nil)
		owned[i].RemoteAddr = remote
	}
	for _, c := range []struct {
		name   string
		window time.Duration
		reqs   []*http.Request
	}{
		{"off", 0, reqs},
		{"on", time.Second, reqs},
		{"on_object", time.Second, owned}, // the route calls ObjectAccess once
	} {
		b.Run(c.name, func(b *testing.B) {
			agent, err := rampart.New(rampart.Config{Service: "bench", Sinks: []rampart.Sink{benchDiscard{}}, SummaryWindow: c.window, QueueSize: 4096})
			if err != nil {
				b.Fatal(err)
			}
			defer agent.Close(b.Context())
			h := agent.Handler(mux)
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.ServeHTTP(w, c.reqs[i%len(c.reqs)])
				i++
			}
		})
	}
	// Every core serving requests at once: the summary's lock is shared.
	for _, c := range []struct {
		name   string
		window time.Duration
	}{{"off_parallel", 0}, {"on_parallel", time.Second}} {
		b.Run(c.name, func(b *testing.B) {
			agent, err := rampart.New(rampart.Config{Service: "bench", Sinks: []rampart.Sink{benchDiscard{}}, SummaryWindow: c.window, QueueSize: 4096})
			if err != nil {
				b.Fatal(err)
			}
			defer agent.Close(b.Context())
			h := agent.Handler(mux)
			b.ReportAllocs()
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				w := &nopWriter{h: http.Header{}}
				for pb.Next() {
					// Requests are read-only to the Handler's copy.
					h.ServeHTTP(w, reqs[next.Add(1)%int64(len(reqs))])
				}
			})
		})
	}
}
