package rampart

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzCompressedBody checks the decompression of a captured body against
// what a decompression middleware hands the handler: every string that
// encoding/json decodes from the plain body is an input, unless the request
// is incomplete; a plain body longer than the capture limit (small here) is
// incomplete unless it is binary; the handler reads the compressed bytes
// unchanged.
func FuzzCompressedBody(f *testing.F) {
	f.Add(uint8(0), []byte(`{"name":"x\u0027 OR 1=1"}`))
	f.Add(uint8(1), []byte(`["a","b",{"c":"d"}]`))
	f.Add(uint8(2), []byte(`name=x%27+OR+1%3D1`))
	f.Add(uint8(3), bytes.Repeat([]byte(`{"k":"v"},`), 1000))
	f.Fuzz(func(t *testing.T, which uint8, plain []byte) {
		const limit = 4096
		var buf bytes.Buffer
		var zw io.WriteCloser
		encoding := []string{"gzip", "x-gzip", "deflate", "deflate"}[which%4]
		switch which % 4 {
		case 0, 1:
			zw = gzip.NewWriter(&buf)
		case 2:
			zw = zlib.NewWriter(&buf)
		case 3: // raw DEFLATE, as some clients send it
			zw, _ = flate.NewWriter(&buf, flate.DefaultCompression)
		}
		zw.Write(plain)
		zw.Close()
		body := buf.Bytes()
		a := &Agent{maxBody: limit, maxInputs: DefaultMaxInputs, logger: slog.New(slog.DiscardHandler)}
		r := httptest.NewRequest("POST", "/x", bytes.NewReader(body))
		r.Header.Set("Content-Encoding", encoding)
		q := &request{agent: a, r: r}
		q.captureBody(r, a.maxBody)
		got, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("the handler read %q (%v), want the body whole", got, err)
		}
		ins, why := q.inputs(), q.incomplete()
		if why != "" {
			return
		}
		if len(plain) > limit && bytes.IndexByte(plain[:sniffLen], 0) < 0 {
			t.Fatalf("%s body of %d bytes, over the limit once decompressed, is complete", encoding, len(plain))
		}
		if len(plain) > limit || !json.Valid(plain) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(plain))
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if s, ok := tok.(string); ok && s != "" && !hasValue(ins, s) {
				t.Fatalf("JSON string %q of the %s body %q is not an input: %+v", s, encoding, plain, ins)
			}
		}
	})
}

// FuzzCookies checks the cookie reader against net/http's: every value
// r.Cookies returns is an input, and so is every value of a pair that code
// splitting the header at semicolons reads.
func FuzzCookies(f *testing.F) {
	f.Add(`a=1; name=x' OR 1=1 -- "`)
	f.Add(`q="quoted"; bad\name=v; =v; k`)
	f.Fuzz(func(t *testing.T, line string) {
		a := &Agent{maxBody: 1 << 20, maxInputs: DefaultMaxInputs, logger: slog.New(slog.DiscardHandler)}
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header["Cookie"] = []string{line}
		q := &request{agent: a, r: r}
		ins := q.inputs()
		for _, ck := range r.Cookies() {
			if ck.Value != "" && !hasValue(ins, ck.Value) {
				t.Fatalf("cookie %q of %q is not an input: %+v", ck.Value, line, ins)
			}
		}
		for _, pair := range strings.Split(line, ";") {
			if _, v, _ := strings.Cut(strings.TrimSpace(pair), "="); v != "" && !hasValue(ins, v) {
				t.Fatalf("value %q of %q is not an input: %+v", v, line, ins)
			}
		}
	})
}

// FuzzJSONStringValue checks the reading of a value encoded twice against
// json.Unmarshal into a string.
func FuzzJSONStringValue(f *testing.F) {
	f.Add(`"x\u0027 OR \u00271\u0027=\u00271"`)
	f.Add(` "a\"b" `)
	f.Add(`"a"b"`)
	f.Fuzz(func(t *testing.T, s string) {
		var want string
		if err := json.Unmarshal([]byte(s), &want); err != nil || want == "" {
			return
		}
		if got, ok := jsonStringValue(s); !ok || got != want {
			t.Fatalf("jsonStringValue(%q) = %q, %v; want %q", s, got, ok, want)
		}
	})
}
