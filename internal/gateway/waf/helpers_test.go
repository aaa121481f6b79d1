package waf

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Browser-like headers, as an ordinary client sends them: the CRS scores
// some requests that lack them at higher paranoia levels.
const testUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"

// newRequest builds a request as a server would receive it from a client at
// 203.0.113.7.
func newRequest(method, target, contentType, body string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.RemoteAddr = "203.0.113.7:51234"
	r.Header.Set("User-Agent", testUserAgent)
	r.Header.Set("Accept", "*/*")
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// Loading the rules takes a while under -race; the tests share one Firewall
// per configuration they need, as the gateway does.
var (
	blocking      = sync.OnceValues(func() (*Firewall, error) { return New(Config{}) })
	detectionOnly = sync.OnceValues(func() (*Firewall, error) { return New(Config{DetectionOnly: true}) })
)

func shared(t testing.TB, get func() (*Firewall, error)) *Firewall {
	t.Helper()
	f, err := get()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func inspect(t testing.TB, f *Firewall, r *http.Request) Verdict {
	t.Helper()
	v, err := f.Inspect(r, "", BodyPrefix)
	if err != nil {
		t.Fatalf("Inspect(%s %s): %v", r.Method, r.RequestURI, err)
	}
	return v
}

// family reports whether a match is from the CRS rule file numbered family
// (942 for SQL injection and so on).
func hasFamily(v Verdict, family int) bool {
	for _, m := range v.Matches {
		if m.RuleID/1000 == family {
			return true
		}
	}
	return false
}

func ruleIDs(v Verdict) []int {
	ids := make([]int, len(v.Matches))
	for i, m := range v.Matches {
		ids[i] = m.RuleID
	}
	return ids
}
