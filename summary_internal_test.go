package rampart

import (
	"context"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

type discardSink struct{}

func (discardSink) WriteEvents(_ context.Context, _ []Event) error { return nil }

// BenchmarkSummaryAdd is what the Handler adds to a request when
// Config.SummaryWindow is set, alone (BenchmarkHandlerSummary measures it
// with the rest of the Handler, on a machine too loaded to tell a few
// hundred nanoseconds apart): 1,000 actors on one route, the window's map
// holding their 1,000 keys.
//
//	go test -run '^$' -bench SummaryAdd -benchmem .
func BenchmarkSummaryAdd(b *testing.B) {
	a, err := New(Config{Service: "bench", Sinks: []Sink{discardSink{}}, SummaryWindow: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close(b.Context())
	reqs := make([]*request, 1000)
	for i := range reqs {
		r := httptest.NewRequest("GET", "/items/"+strconv.Itoa(i%97), nil)
		r.RemoteAddr = "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+1) + ":5000"
		r.Pattern = "GET /items/{id}"
		reqs[i] = &request{agent: a, r: r}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.sum.add(reqs[i%len(reqs)], 200)
		i++
	}
}
