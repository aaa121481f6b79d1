package rampart_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	return []struct {
		name, target, ctype string
		body                []byte
	}{
		{"benign_json1k", "/x", "application/json", benchJSONBody(1024)},
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
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
			}
		})
	}
	_ = rampart.ErrBlocked
}
