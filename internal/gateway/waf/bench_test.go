package waf

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
)

// The benchmarks compare a Coraza transaction driven directly ("raw"), with
// the same rules as New loads, against Inspect, on an ordinary GET with four
// query parameters and an ordinary 1 KB JSON POST. In BENCHMARKS.md:
//
//	go test -run '^$' -bench . -benchmem -count 6 -benchtime 500x ./internal/gateway/waf/ | tee waf.txt
//	benchstat waf.txt

const benchGetTarget = "/api/products?category=electronics&sort=price_desc&page=2&per_page=20"

// benchJSON is an order as a shop's API receives it: 1 KB of names,
// addresses, items and prose.
var benchJSON = []byte(`{"customer":{"id":"c_8f2e41","name":"Seán O'Brien","email":"sean.obrien@example.ie","phone":"+353 1 555 0142"},` +
	`"shipping":{"street":"12 Harbour Road","city":"Dún Laoghaire","postcode":"A96 X2Y3","country":"IE"},` +
	`"billing":{"street":"12 Harbour Road","city":"Dún Laoghaire","postcode":"A96 X2Y3","country":"IE"},` +
	`"items":[{"sku":"A-100","name":"Wireless headphones","qty":1,"price":129.99},` +
	`{"sku":"B-7","name":"USB-C cable, 2 m","qty":2,"price":9.5},` +
	`{"sku":"C-42","name":"Travel pouch, black","qty":1,"price":24},` +
	`{"sku":"D-9","name":"Replacement ear cushions, medium","qty":1,"price":14.9},` +
	`{"sku":"E-311","name":"Gift wrapping","qty":1,"price":3}],` +
	`"coupon":"SPRING24","currency":"EUR","gift":true,` +
	`"note":"Please leave the parcel with the neighbour at number 14 if nobody's home; the bell doesn't work. Thanks!",` +
	`"tags":["web","returning-customer","newsletter"],"created_at":"2024-05-01T12:30:00Z",` +
	`"consent":{"marketing":false,"terms":"2024-01"},"device":{"os":"Android 14","app":"shop/5.3.1","locale":"en-IE"}}`)

func benchHeader() http.Header {
	return http.Header{
		"User-Agent":      {testUserAgent},
		"Accept":          {"application/json"},
		"Accept-Language": {"en-IE,en;q=0.9"},
		"Accept-Encoding": {"gzip, deflate, br"},
		"Cookie":          {"session=sess_9f8e7d6c5b4a3928; theme=dark"},
	}
}

func benchRequest(method, target string, body []byte) *http.Request {
	r := newRequest(method, target, "", "")
	r.Header = benchHeader()
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		r.ContentLength = int64(len(body))
	}
	return r
}

// rawWAF is Coraza with the same directives as New(Config{}).
func rawWAF(b *testing.B) coraza.WAF {
	cfg := Config{}
	if err := cfg.setDefaults(); err != nil {
		b.Fatal(err)
	}
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(directives(cfg)))
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// raw drives one transaction as a minimal connector would, over a request
// already parsed, and reports whether it was interrupted.
func raw(w coraza.WAF, r *http.Request, body []byte) bool {
	tx := w.NewTransaction()
	defer func() {
		tx.ProcessLogging()
		tx.Close()
	}()
	tx.ProcessConnection("203.0.113.7", 51234, "", 0)
	tx.ProcessURI(r.RequestURI, r.Method, r.Proto)
	for k, vs := range r.Header {
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
		}
	}
	tx.AddRequestHeader("Host", r.Host)
	if it := tx.ProcessRequestHeaders(); it != nil {
		return true
	}
	if body != nil {
		if _, _, err := tx.WriteRequestBody(body); err != nil {
			panic(err)
		}
	}
	it, err := tx.ProcessRequestBody()
	if err != nil {
		panic(err)
	}
	return it != nil
}

func viaInspect(fw *Firewall, r *http.Request, body []byte) bool {
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	v, err := fw.Inspect(r, "203.0.113.7", BodyPrefix)
	if err != nil {
		panic(err)
	}
	return v.Blocked
}

// cpuTime reports the CPU time this process has used, all threads together.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureCPU adds a cpu-ns/op metric: on a machine shared with other work,
// ns/op (wall time) grows with the load while the CPU time a request costs
// does not, and in the parallel benchmarks it shows that running requests
// side by side adds no work (no contention spinning, no serialization).
func measureCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
	}
}

type benchCase struct {
	name   string
	method string
	target string
	body   []byte
}

var benchCases = []benchCase{
	{"GET_4_params", "GET", benchGetTarget, nil},
	{"POST_1KB_JSON", "POST", "/api/orders", benchJSON},
}

func BenchmarkInspect(b *testing.B) {
	if n := len(benchJSON); n < 1000 || n > 1100 {
		b.Fatalf("the JSON body is %d bytes; keep it near 1 KB", n)
	}
	w := rawWAF(b)
	fw := shared(b, blocking)
	for _, c := range benchCases {
		b.Run("raw/"+c.name, func(b *testing.B) {
			r := benchRequest(c.method, c.target, c.body)
			if raw(w, r, c.body) {
				b.Fatal("blocked")
			}
			b.ReportAllocs()
			defer measureCPU(b)()
			for b.Loop() {
				raw(w, r, c.body)
			}
		})
		b.Run("Inspect/"+c.name, func(b *testing.B) {
			r := benchRequest(c.method, c.target, c.body)
			if viaInspect(fw, r, c.body) {
				b.Fatal("blocked")
			}
			b.ReportAllocs()
			defer measureCPU(b)()
			for b.Loop() {
				viaInspect(fw, r, c.body)
			}
		})
	}
}

// BenchmarkInspectParallel runs the same requests from GOMAXPROCS
// goroutines sharing one WAF, as the gateway's connections do: ns/op falls
// with the number of cores if nothing serializes the requests.
func BenchmarkInspectParallel(b *testing.B) {
	w := rawWAF(b)
	fw := shared(b, blocking)
	for _, c := range benchCases {
		b.Run("raw/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			defer measureCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				r := benchRequest(c.method, c.target, c.body)
				for pb.Next() {
					if raw(w, r, c.body) {
						panic("blocked")
					}
				}
			})
		})
		b.Run("Inspect/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			defer measureCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				r := benchRequest(c.method, c.target, c.body)
				for pb.Next() {
					if viaInspect(fw, r, c.body) {
						panic("blocked")
					}
				}
			})
		})
	}
}
