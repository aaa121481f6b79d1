package ssrfguard

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
)

// Benchmarks of the outbound hot path. Compare the transports with
//
//	go test -run '^$' -bench 'RoundTrip' -count 6 ./ssrfguard | tee rt.txt
//	benchstat -col /transport rt.txt
//
// Every request goes to an httptest server on loopback over a kept-alive
// connection, so the figures are the cost of a request, not of a dial.

// benchInputs are the inputs of a typical API request: none of them is the
// host the service calls.
var benchInputs = []string{
	"42", "books", "Jane O'Brien", "jane@example.com", "2024-06-01", "price_desc",
	"Lorem ipsum dolor sit amet, consectetur adipiscing elit", "https://shop.example.com/cart", "en-US", "Mozilla/5.0 (X11; Linux x86_64)",
}

type benchCase struct {
	name string
	ctx  func(srv *httptest.Server) context.Context
}

var benchCases = []benchCase{
	{"input=none", func(*httptest.Server) context.Context { return context.Background() }},
	{"input=elsewhere", func(*httptest.Server) context.Context {
		return rampart.WithUntrusted(context.Background(), "query", benchInputs...)
	}},
	// The host is from input and is loopback: allowed only because it is
	// the address the service received the request on (a self-call), so
	// the request takes the whole tainted path.
	{"input=host", func(srv *httptest.Server) context.Context {
		ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, srv.Listener.Addr())
		return rampart.WithUntrusted(ctx, "query", append([]string{"see " + srv.URL + "/items"}, benchInputs...)...)
	}},
}

func newBenchGuard(b *testing.B) *Guard {
	b.Helper()
	a, err := rampart.New(rampart.Config{Service: "bench", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(context.Background()) })
	g, err := New(a, Config{Resolver: &net.Resolver{PreferGo: true}})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkRoundTrip is the cost of one request with a plain
// *http.Transport and with the same transport guarded.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	g := newBenchGuard(b)
	for _, bc := range benchCases {
		for _, kind := range []string{"plain", "guarded"} {
			b.Run(bc.name+"/transport="+kind, func(b *testing.B) {
				base := &http.Transport{}
				defer base.CloseIdleConnections()
				var rt http.RoundTripper = base
				if kind == "guarded" {
					rt = g.Transport(base)
					defer rt.(*transport).CloseIdleConnections()
				}
				client := &http.Client{Transport: rt}
				req, _ := http.NewRequestWithContext(bc.ctx(srv), http.MethodGet, srv.URL+"/items", nil)
				b.ReportAllocs()
				for b.Loop() {
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
	}
}

// BenchmarkRoundTripPaired sends each request once through the plain
// transport and once through the guarded one, alternately, and reports the
// mean of each and of their difference: on a machine whose load drifts,
// paired differences measure the guard's cost better than two benchmarks
// run one after the other.
func BenchmarkRoundTripPaired(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	g := newBenchGuard(b)
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			plainBase, guardedBase := &http.Transport{}, &http.Transport{}
			guarded := g.Transport(guardedBase).(*transport)
			defer plainBase.CloseIdleConnections()
			defer guarded.CloseIdleConnections()
			clients := [2]*http.Client{{Transport: plainBase}, {Transport: guarded}}
			req, _ := http.NewRequestWithContext(bc.ctx(srv), http.MethodGet, srv.URL+"/items", nil)
			var spent [2]time.Duration
			do := func(i int) {
				start := time.Now()
				resp, err := clients[i].Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				spent[i] += time.Since(start)
			}
			do(0) // open both connections before measuring
			do(1)
			spent = [2]time.Duration{}
			n := 0
			for b.Loop() {
				do(n % 2)
				do(1 - n%2)
				n++
			}
			b.ReportMetric(float64(spent[0].Nanoseconds())/float64(n), "plain-ns/req")
			b.ReportMetric(float64(spent[1].Nanoseconds())/float64(n), "guarded-ns/req")
			b.ReportMetric(float64((spent[1]-spent[0]).Nanoseconds())/float64(n), "overhead-ns/req")
		})
	}
}

// BenchmarkDecide is the guard's work per request before the transport
// sends it: finding whether an input chose the host, and the host rules.
func BenchmarkDecide(b *testing.B) {
	g := newBenchGuard(b)
	cases := []struct {
		name, url string
		inputs    []string
	}{
		{"input=none", "http://orders.internal:8080/v1/orders/42", nil},
		{"input=elsewhere", "http://orders.internal:8080/v1/orders/42", benchInputs},
		{"input=1KiB-elsewhere", "http://orders.internal:8080/v1/orders/42", []string{strings.Repeat("orders internal 8080 ", 52)}},
		{"input=host-name", "https://hooks.partner.example/cb", append([]string{"https://hooks.partner.example/cb"}, benchInputs...)},
		{"input=host-address", "http://0x7f.1/admin", append([]string{"http://0x7f.1/admin"}, benchInputs...)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			if c.inputs != nil {
				ctx = rampart.WithUntrusted(ctx, "query", c.inputs...)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
			b.ReportAllocs()
			for b.Loop() {
				g.preflight(ctx, req)
			}
		})
	}
}

func BenchmarkParseIP(b *testing.B) {
	for _, h := range []string{"orders.internal", "10.0.0.1", "0x7f.1", "[fe80::1%25eth0]"} {
		b.Run(h, func(b *testing.B) {
			for b.Loop() {
				parseIP(h, true)
			}
		})
	}
}
