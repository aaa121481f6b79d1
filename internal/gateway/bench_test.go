package gateway_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/controltest"
)

// BenchmarkHandler drives requests through Gateway.Handler (no client
// connection: the request is built in memory) to a plain HTTP upstream in
// the same process, with the WAF off and with the CRS at paranoia level 1,
// on the two requests of internal/gateway/waf's BenchmarkInspect. The
// difference between the two is what the WAF costs inside the gateway, to
// compare with Inspect alone. GET_4_params_new_client comes from a new
// address each time, so that the gateway signs a new actor token for each
// request instead of reusing the one it signed for the address:
//
//	go test -run '^$' -bench Handler -benchmem -count 5 ./internal/gateway/
//	go test -run '^$' -bench 'Inspect$' -benchmem -count 5 ./internal/gateway/waf/
//
// cpu-ns/op is the process's CPU time per request (user and system, all
// threads: the gateway, the upstream, the garbage collector), which the
// load of other processes on the machine changes less than ns/op.
func BenchmarkHandler(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":12345,"name":"Wireless headphones","price":129.99,"currency":"EUR","in_stock":true}`+"\n")
	})}
	go upstream.Serve(ln)
	b.Cleanup(func() { upstream.Close() })
	cp := controltest.Start(b, controltest.Config{})
	clients := 0 // across runs, so that -count does not reuse addresses
	for _, mode := range []string{"off", "blocking"} {
		gw := serveGateway(b, cp, "waf: {mode: "+mode+"}\nroutes:\n  - upstream: http://"+ln.Addr().String()+"\n", time.Second, true)
		h := gw.Handler()
		for _, c := range []struct {
			name, method, target string
			body                 []byte
			newClient            bool // each request from another address: a new actor token
		}{
			{"GET_4_params", "GET", "/api/products?category=electronics&sort=price_desc&page=2&per_page=20", nil, false},
			{"POST_1KB_JSON", "POST", "/api/orders", benchJSON, false},
			{"GET_4_params_new_client", "GET", "/api/products?category=electronics&sort=price_desc&page=2&per_page=20", nil, true},
		} {
			if c.newClient && mode != "off" {
				continue
			}
			name := "waf-off/" + c.name
			if mode == "blocking" {
				name = "crs-pl1/" + c.name
			}
			b.Run(name, func(b *testing.B) {
				serve := func() {
					var body io.Reader
					if c.body != nil {
						body = bytes.NewReader(c.body)
					}
					r := httptest.NewRequest(c.method, c.target, body)
					r.RemoteAddr = "203.0.113.7:51234"
					if c.newClient {
						clients++
						r.RemoteAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(clients >> 16), byte(clients >> 8), byte(clients)}), 51234).String()
					}
					r.Header = http.Header{
						"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"},
						"Accept":          {"application/json"},
						"Accept-Language": {"en-IE,en;q=0.9"},
						"Accept-Encoding": {"gzip, deflate, br"},
						"Cookie":          {"session=sess_9f8e7d6c5b4a3928; theme=dark"},
					}
					if c.body != nil {
						r.Header.Set("Content-Type", "application/json")
					}
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
				serve()
				b.ReportAllocs()
				defer measureCPU(b)()
				for b.Loop() {
					serve()
				}
			})
		}
	}
}

// benchJSON is the 1 KB order of internal/gateway/waf's benchmarks.
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

// measureCPU adds a cpu-ns/op metric, as internal/gateway/waf's benchmarks
// do.
func measureCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
	}
}
