package rampart_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
)

// benchDiscard drops events; the middleware benchmarks report none anyway.
type benchDiscard struct{}

func (benchDiscard) WriteEvents(context.Context, []rampart.Event) error { return nil }

// benchRequest is a request rebuilt cheaply before each iteration: the
// handler consumes its body.
type benchRequest struct {
	name string
	req  *http.Request
	body []byte
	want int // inputs the middleware captures from it
}

func (br *benchRequest) reset(rd *bytes.Reader) *http.Request {
	if br.body != nil {
		rd.Reset(br.body)
		br.req.Body = io.NopCloser(rd)
	}
	return br.req
}

func benchRequests(tb testing.TB) []*benchRequest {
	tb.Helper()
	q := url.Values{}
	for k, v := range map[string]string{
		"q": "red running shoes", "category": "footwear", "brand": "acme",
		"size": "42", "color": "red", "min_price": "25.00", "max_price": "120.00",
		"sort": "price_desc", "page": "3", "per_page": "48",
	} {
		q.Set(k, v)
	}
	query := httptest.NewRequest("GET", "/search?"+q.Encode(), nil)
	query.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36")
	query.Header.Set("Referer", "https://shop.example.com/")

	body := benchJSONBody(1024)
	post := httptest.NewRequest("POST", "/api/orders", bytes.NewReader(body))
	post.Header.Set("Content-Type", "application/json")
	post.Header.Set("User-Agent", query.Header.Get("User-Agent"))

	// The same body without a Content-Length, as a client that streams it
	// (Transfer-Encoding: chunked) sends it.
	chunked := post.Clone(context.Background())
	chunked.ContentLength = -1
	chunked.TransferEncoding = []string{"chunked"}

	return []*benchRequest{
		{name: "query10", req: query, want: 24}, // 10 keys, 10 values, User-Agent, Referer, Host, the path "search"
		{name: "json1k", req: post, body: body},
		{name: "json1k_chunked", req: chunked, body: body},
	}
}

// benchJSONBody returns an order of about size bytes (never less): a
// customer, an address and line items, as a shop's API receives it.
func benchJSONBody(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"customer":{"name":"Alice Martin","email":"alice@example.com","phone":"+33 6 12 34 56 78"},` +
		`"shipping":{"street":"12 rue de la Paix","city":"Paris","zip":"75002","country":"FR"},` +
		`"coupon":"SUMMER-2024","note":"Please leave the parcel at the door, thanks!","items":[`)
	for i := 0; b.Len() < size-2; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%05d","name":"Running shoe model %d","qty":%d,"price":%d.99}`, 10000+i*37, i, 1+i%3, 20+i*7)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func newBenchAgent(tb testing.TB) *rampart.Agent {
	tb.Helper()
	a, err := rampart.New(rampart.Config{
		Service: "bench",
		Sinks:   []rampart.Sink{benchDiscard{}},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = a.Close(context.Background()) })
	return a
}

// benchHandler reads the body, as a handler that decodes it does, and with
// inputs=yes also does what a guard does at its first call: iterate
// rampart.Inputs once, which makes the middleware parse the request.
func benchHandler(inputs bool, count *int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if inputs {
			n := 0
			for range rampart.Inputs(r.Context()) {
				n++
			}
			*count = n
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func TestBenchRequestsCarryTheirInputs(t *testing.T) {
	a := newBenchAgent(t)
	for _, br := range benchRequests(t) {
		n := -1
		var rd bytes.Reader
		rec := httptest.NewRecorder()
		a.Handler(benchHandler(true, &n)).ServeHTTP(rec, br.reset(&rd))
		if rec.Code != http.StatusNoContent {
			t.Fatalf("%s: status %d", br.name, rec.Code)
		}
		if br.want != 0 && n != br.want {
			t.Errorf("%s: %d inputs, want %d", br.name, n, br.want)
		}
		t.Logf("%s: %d inputs, body %d bytes", br.name, n, len(br.body))
	}
}

// BenchmarkMiddleware measures one request through agent.Handler(h)
// (mw=on) and through h alone (mw=off), where h reads the body. With
// inputs=no, no guarded call happens and the request pays for the capture
// only; with inputs=yes, h iterates rampart.Inputs once, which parses the
// request (without the middleware it finds nothing).
//
// Compare with: benchstat -col /mw
func BenchmarkMiddleware(b *testing.B) {
	a := newBenchAgent(b)
	for _, br := range benchRequests(b) {
		for _, inputs := range []string{"no", "yes"} {
			var n int
			h := benchHandler(inputs == "yes", &n)
			handlers := map[string]http.Handler{"off": h, "on": a.Handler(h)}
			for _, mw := range []string{"off", "on"} {
				b.Run(fmt.Sprintf("req=%s/inputs=%s/mw=%s", br.name, inputs, mw), func(b *testing.B) {
					b.ReportAllocs()
					handler := handlers[mw]
					var rd bytes.Reader
					for b.Loop() {
						rec := httptest.NewRecorder()
						handler.ServeHTTP(rec, br.reset(&rd))
						if rec.Code != http.StatusNoContent {
							b.Fatalf("status %d", rec.Code)
						}
					}
				})
			}
		}
	}
}
