package waf

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The seed corpus is in testdata/fuzz/FuzzInspect; go test runs it as a
// regression test. To fuzz:
//
//	go test -run='^$' -fuzz=FuzzInspect -fuzztime=60s ./internal/gateway/waf/

const fuzzLimit = 256

var fuzzFirewall = sync.OnceValues(func() (*Firewall, error) {
	// A small limit, so that bodies are cut and their parsers see prefixes.
	return New(Config{BodyLimit: fuzzLimit, Exclusions: []Exclusion{{PathPrefix: "/api/notes/", RuleIDs: []int{942100}}}})
})

var fuzzContentTypes = []string{
	"",
	"application/json",
	"application/x-www-form-urlencoded",
	"multipart/form-data; boundary=xyz",
	"text/xml",
	"application/problem+json",
	"multipart/form-data",
	"text/plain",
}

// FuzzInspect checks that no request line, query or body makes Inspect
// panic or fail, or lose or change a byte of the body, and that the verdict
// stays within its bounds.
func FuzzInspect(f *testing.F) {
	f.Add("/api/items", "q=1&page=2", `{"a":"b"}`, uint8(1))
	fw := shared(f, fuzzFirewall)
	f.Fuzz(func(t *testing.T, path, query, body string, kind uint8) {
		target := path
		if query != "" {
			target += "?" + query
		}
		r := &http.Request{
			Method:     http.MethodPost,
			URL:        &url.URL{Path: path, RawQuery: query},
			RequestURI: target,
			Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{
				"User-Agent":     {testUserAgent},
				"Accept":         {"*/*"},
				"Content-Length": {strconv.Itoa(len(body))},
			},
			Host:          "example.com",
			RemoteAddr:    "203.0.113.7:51234",
			ContentLength: int64(len(body)),
		}
		if ct := fuzzContentTypes[int(kind)%len(fuzzContentTypes)]; ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		orig := &countingBody{r: strings.NewReader(body)}
		r.Body = orig

		mode := BodyPrefix
		switch {
		case kind&0x80 != 0:
			mode = HeadersOnly
		case kind&0x40 != 0:
			mode = WholeBody
		}
		v, err := fw.Inspect(r, "", mode)
		if err != nil {
			t.Fatalf("Inspect: %v", err)
		}
		if orig.read > fuzzLimit+1 {
			t.Fatalf("read %d bytes of the body; the limit is %d", orig.read, fuzzLimit)
		}
		if v.Blocked && (v.Status == 0 || !v.WouldBlock) {
			t.Fatalf("blocked without a status: %+v", v)
		}
		if v.BodyOverLimit && (mode == HeadersOnly || len(body) <= fuzzLimit) {
			t.Fatalf("BodyOverLimit for %d bytes in mode %d; the limit is %d", len(body), mode, fuzzLimit)
		}
		if len(v.Matches) > maxMatches {
			t.Fatalf("%d matches", len(v.Matches))
		}
		for _, m := range v.Matches {
			if len(m.Data) > maxDataLen || len(m.Message) > maxMessageLen {
				t.Fatalf("rule %d: %d bytes of data, %d of message", m.RuleID, len(m.Data), len(m.Message))
			}
		}
		got, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(got, []byte(body)) {
			t.Fatalf("body after Inspect: %q, %v; want %q", got, err, body)
		}
	})
}
