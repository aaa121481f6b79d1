package rampart

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets of the input capture. Seeds are in testdata/fuzz/<name>;
// run one with, for example:
//
//	go test -run='^$' -fuzz='^FuzzBodyCapture$' -fuzztime=60s .

// parseBodyFor runs the middleware's capture and parse over one body, as a
// request would, and returns the inputs and why they are incomplete.
func parseBodyFor(tb testing.TB, contentType string, body []byte) ([]Input, string) {
	tb.Helper()
	a := &Agent{maxBody: 1 << 20, maxInputs: DefaultMaxInputs, logger: slog.New(slog.DiscardHandler)}
	r := httptest.NewRequest("POST", "/x", bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	q := &request{agent: a, r: r}
	q.captureBody(r, a.maxBody)
	got, err := io.ReadAll(r.Body)
	if err != nil || !bytes.Equal(got, body) {
		tb.Fatalf("the handler read %q (%v), want the body whole %q", got, err, body)
	}
	return q.inputs(), q.incomplete()
}

func hasValue(ins []Input, v string) bool {
	return slices.ContainsFunc(ins, func(in Input) bool { return in.Value == v })
}

// FuzzBodyCapture checks the body classifier against the decoders an
// application uses: whatever the label says, every string encoding/json
// decodes from the body, every value url.ParseQuery finds in it, and every
// field multipart.Reader reads from it (file contents aside) is an input,
// unless the request is marked incomplete; and the handler reads the body
// unchanged.
func FuzzBodyCapture(f *testing.F) {
	f.Add("", []byte(`{"name":"x' OR '1'='1"}`))
	f.Add("application/octet-stream", []byte(`[{"a":"b"},"c"]`))
	f.Add("application/json; charset", []byte(`name=x%27+OR+1%3D1&b=2`))
	f.Add("text/plain", []byte("just text"))
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.SetBoundary("B")
	mw.WriteField("name", "x' OR 1=1")
	fw, _ := mw.CreateFormFile("up", "../../etc/passwd")
	fw.Write([]byte("content"))
	mw.Close()
	f.Add("multipart/form-data; boundary=B", mp.Bytes())
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		ins, why := parseBodyFor(t, contentType, body)
		for _, in := range ins {
			if in.Value == "" {
				t.Fatalf("empty input %+v", in)
			}
		}
		if why != "" {
			return
		}
		cl := classifyBody(contentType, body)
		if cl.multipart != "" {
			checkMultipart(t, body, cl.multipart, ins)
			return
		}
		if len(body) > 0 && !hasValue(ins, string(body)) {
			t.Fatalf("the raw body %q is not an input", body)
		}
		// Code that reads files saved on Windows strips a byte order mark.
		if doc := bytes.TrimPrefix(body, utf8BOM); json.Valid(doc) {
			dec := json.NewDecoder(bytes.NewReader(doc))
			for {
				tok, err := dec.Token()
				if err != nil {
					break
				}
				if s, ok := tok.(string); ok && s != "" && !hasValue(ins, s) {
					t.Fatalf("JSON string %q of %q is not an input: %+v", s, body, ins)
				}
			}
		}
		// Whatever the body opens with, code may parse it as a form; ParseQuery
		// returns the pairs it could read even with an error. (A key
		// without '=' in the body is the body itself.)
		vals, _ := url.ParseQuery(string(body))
		for k, vs := range vals {
			if cl.form || cl.labelled {
				vs = append(vs, k)
			}
			for _, v := range vs {
				if v != "" && !hasValue(ins, v) {
					t.Fatalf("form value %q of %q is not an input: %+v", v, body, ins)
				}
			}
		}
	})
}

func checkMultipart(t *testing.T, body []byte, boundary string, ins []Input) {
	t.Helper()
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for range maxMultipartParts {
		p, err := mr.NextPart()
		if err != nil {
			return
		}
		if p.FormName() != "" && !hasValue(ins, p.FormName()) {
			t.Fatalf("multipart field name %q is not an input", p.FormName())
		}
		if p.FileName() != "" {
			if !hasValue(ins, p.FileName()) {
				t.Fatalf("file name %q is not an input", p.FileName())
			}
			continue
		}
		v, err := io.ReadAll(p)
		if err != nil {
			return
		}
		if len(v) > 0 && !hasValue(ins, string(v)) {
			t.Fatalf("multipart value %q is not an input: %+v", v, ins)
		}
	}
}

// FuzzScanQuery checks the ordered query parser against url.ParseQuery:
// every pair ParseQuery keeps is yielded, values of one key in the same
// order.
func FuzzScanQuery(f *testing.F) {
	f.Add("a=1&b=2&a=3")
	f.Add("x=%zz&y=1;2&=v&k&q=a+b%27")
	f.Fuzz(func(t *testing.T, s string) {
		got := map[string][]string{}
		scanQuery(s, func(k, v string) bool {
			got[k] = append(got[k], v)
			return true
		})
		want, _ := url.ParseQuery(s)
		// What a handler behind http.AllowQuerySemicolons reads.
		semi, _ := url.ParseQuery(strings.ReplaceAll(s, ";", "&"))
		for k, vs := range semi {
			for _, v := range vs {
				if !slices.Contains(got[k], v) {
					t.Fatalf("scanQuery(%q)[%q] = %q, want %q among them (semicolons as separators)", s, k, got[k], v)
				}
			}
		}
		for k, vs := range want {
			// scanQuery yields pairs ParseQuery drops too; ParseQuery's
			// values must appear in order among them.
			i := 0
			for _, v := range got[k] {
				if i < len(vs) && v == vs[i] {
					i++
				}
			}
			if i != len(vs) {
				t.Fatalf("scanQuery(%q)[%q] = %q, want %q in order", s, k, got[k], vs)
			}
		}
		n := 0
		scanQuery(s, func(string, string) bool { n++; return false })
		if n > 1 {
			t.Fatalf("scanQuery(%q) went on after fn returned false", s)
		}
	})
}

// FuzzDecodeBase64Text checks that a decoded value is printable text that
// encodes back to the input, and that printable text of enough length,
// encoded in any of the four alphabets, is decoded.
func FuzzDecodeBase64Text(f *testing.F) {
	f.Add("eCcgT1IgJzEnPScx")
	f.Add("eCcgT1IgJzEnPScx" + strings.Repeat("QUFB", 30))
	f.Add("AAAAAAAAAAAA")
	f.Add("x' OR 1=1")
	f.Add("eCcg\nT1IgJzEnPScx\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := decodeBase64Text(s)
		if ok {
			if !printable([]byte(d)) || d == "" {
				t.Fatalf("decodeBase64Text(%q) = %q, not printable text", s, d)
			}
			// Decoding is not strict (as in encoding/base64 by default): the
			// last character may carry bits the encoding drops.
			// Line breaks are skipped, as encoding/base64 skips them; a
			// space stands for the '+' query decoding made it.
			trimmed := strings.TrimRight(strings.NewReplacer("\r", "", "\n", "", " ", "+").Replace(s), "=")
			e1, e2 := base64.RawStdEncoding.EncodeToString([]byte(d)), base64.RawURLEncoding.EncodeToString([]byte(d))
			last := len(trimmed) - 1
			if len(e1) != len(trimmed) || e1[:last] != trimmed[:last] && e2[:last] != trimmed[:last] {
				t.Fatalf("decodeBase64Text(%q) = %q, which does not encode back", s, d)
			}
		}
		// s as text: encoded, it must decode back.
		if printable([]byte(s)) && s != "" {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				e := enc.EncodeToString([]byte(s))
				if len(e) < minBase64 {
					continue
				}
				if d, ok := decodeBase64Text(e); !ok || d != s {
					t.Fatalf("decodeBase64Text(%q) = %q, %v; want %q", e, d, ok, s)
				}
				wrapped := e[:len(e)/2] + "\r\n" + e[len(e)/2:]
				if d, ok := decodeBase64Text(wrapped); !ok || d != s {
					t.Fatalf("decodeBase64Text(%q) = %q, %v; want %q", wrapped, d, ok, s)
				}
			}
		}
	})
}

// FuzzNestedJSON checks that a JSON document sent inside a JSON string is
// read: every string encoding/json decodes from the inner document is an
// input, unless the request is marked incomplete.
func FuzzNestedJSON(f *testing.F) {
	f.Add([]byte(`{"name":"x' OR '1'='1"}`))
	f.Add([]byte(`[{"a":"{\"b\":\"c\"}"}]`))
	f.Fuzz(func(t *testing.T, inner []byte) {
		if !utf8.Valid(inner) {
			return
		}
		outer, err := json.Marshal(map[string]string{"filter": string(inner)})
		if err != nil {
			t.Fatal(err)
		}
		ins, why := parseBodyFor(t, "application/json", outer)
		if why != "" || !json.Valid(inner) || !looksJSON(string(inner)) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(inner))
		for {
			tok, err := dec.Token()
			if errors.Is(err, io.EOF) || err != nil {
				break
			}
			if s, ok := tok.(string); ok && s != "" && !hasValue(ins, s) {
				t.Fatalf("string %q of the inner document %q is not an input: %+v", s, inner, ins)
			}
		}
	})
}
