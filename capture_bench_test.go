package rampart_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/sqlguard"
)

// hostileRequests are the bodies and queries an attacker sends to make the
// capture expensive or to push a payload past its caps, and a benign one.
func hostileRequests() []struct {
	name, target, ctype string
	body                []byte
} {
	const payload = `' OR 1=1 --`
	var keys bytes.Buffer // 1 MiB of distinct keys with empty objects
	keys.WriteByte('{')
	for i := 0; keys.Len() < 1<<20; i++ {
		fmt.Fprintf(&keys, `"k%d":{},`, i)
	}
	keys.WriteString(`"name":"` + payload + `"}`)
	padding := []byte(`{"pad":"` + strings.Repeat("A", 1<<20) + `","name":"` + payload + `"}`)
	var q strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&q, "j%d=x&", i)
	}
	q.WriteString("name=" + strings.ReplaceAll(payload, " ", "+"))
	// What item 9 added: a JSON document and a base64 value in the query
	// (with the 13 headers of a browser, see BenchmarkHostileCapture).
	filter := url.QueryEscape(`{"status":"shipped","since":"2024-06-01"}`)
	cursor := base64.StdEncoding.EncodeToString([]byte("created_at>2024-06-01T12:00:00Z"))
	return []struct {
		name, target, ctype string
		body                []byte
	}{
		{"benign_json1k", "/x", "application/json", benchJSONBody(1024)},
		{"benign_browser_get", "/orders/search/recent?filter=" + filter + "&cursor=" + cursor + "&page=2", "", nil},
		{"hostile_keys1m", "/x", "application/json", keys.Bytes()},
		{"hostile_padding1m", "/x", "application/json", padding},
		{"hostile_query3000", "/x?" + q.String(), "", nil},
	}
}

// BenchmarkHostileCapture measures one request through the middleware with
// a handler that reads the body and makes one guarded SQL check, which
// parses the request's inputs.
func BenchmarkHostileCapture(b *testing.B) {
	a := newBenchAgent(b)
	g, err := sqlguard.New(a, sqlguard.SQLite)
	if err != nil {
		b.Fatal(err)
	}
	h := a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r.Body)
		_ = g.Check(r.Context(), "SELECT id FROM users WHERE name = 'alice'")
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, hr := range hostileRequests() {
		b.Run(hr.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var req *http.Request
				if hr.body != nil {
					req = httptest.NewRequest("POST", hr.target, bytes.NewReader(hr.body))
					req.Header.Set("Content-Type", hr.ctype)
				} else {
					req = httptest.NewRequest("GET", hr.target, nil)
				}
				for k, v := range browserHeaders {
					req.Header[k] = v
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
			}
		})
	}
	_ = rampart.ErrBlocked
}

// browserHeaders are what a browser sends with a navigation, cookies aside.
var browserHeaders = http.Header{
	"User-Agent":                {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"},
	"Accept":                    {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"},
	"Accept-Language":           {"en-GB,en;q=0.9,fr;q=0.8"},
	"Accept-Encoding":           {"gzip, deflate, br, zstd"},
	"Referer":                   {"https://shop.example.com/orders"},
	"Sec-Ch-Ua":                 {`"Chromium";v="126", "Not.A/Brand";v="24"`},
	"Sec-Ch-Ua-Mobile":          {"?0"},
	"Sec-Ch-Ua-Platform":        {`"Linux"`},
	"Sec-Fetch-Dest":            {"document"},
	"Sec-Fetch-Mode":            {"navigate"},
	"Sec-Fetch-Site":            {"same-origin"},
	"Upgrade-Insecure-Requests": {"1"},
	"Priority":                  {"u=0, i"},
}
