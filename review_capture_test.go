package rampart_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"modernc.org/sqlite"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
)

// Bypasses of the input capture found by review: each sends an injection
// that a handler reads the way ordinary Go code does, to the vulnerable
// application over a real SQLite database, and expects it blocked.

func TestMultipartFieldWithEmptyFileNameIsAnInput(t *testing.T) {
	// net/http stores a part whose filename parameter is empty as a value,
	// which r.FormValue returns: its content is a field, not a file.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(vulnerableApp(t, a))
	defer srv.Close()
	const boundary = "b0undary"
	for _, disp := range []string{
		`form-data; name="name"; filename=""`,
		`form-data; name="name"; filename*=UTF-8''`,
	} {
		body := "--" + boundary + "\r\n" +
			"Content-Disposition: " + disp + "\r\n\r\n" +
			injection + "\r\n--" + boundary + "--\r\n"
		expectBlocked(t, srv, events, attack{name: disp, target: "/search?via=form",
			ctype: "multipart/form-data; boundary=" + boundary, body: []byte(body)}, "sql_injection")
	}
}

func TestAValueSeenDeepIsStillDecodedWhereCodeDecodesIt(t *testing.T) {
	// Past 256 inputs identical values are recorded once. A value first met
	// at the deepest decoding, where it is not decoded again, must not hide
	// what it decodes to where the handler decodes it: here base64 of the
	// payload sits three base64 layers deep in one parameter, then plain in
	// the one the handler decodes.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(vulnerableApp(t, a))
	defer srv.Close()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	payload := b64(injection)
	var q strings.Builder
	q.WriteString("/search?via=base64")
	for i := range 150 {
		fmt.Fprintf(&q, "&f%d=v%d", i, i)
	}
	q.WriteString("&w=" + url.QueryEscape(b64(b64(b64(payload)))))
	q.WriteString("&q=" + url.QueryEscape(payload))
	expectBlocked(t, srv, events, attack{name: "deep first", method: "GET", target: q.String()}, "sql_injection")
}

// countApp serves GET /count over SQLite in memory: it concatenates the
// name the read function takes from the request into SQL and answers the
// number of rows (3 when an injection runs). wrap wraps the application
// inside the middleware, as a router or a standard library helper would.
func countApp(t *testing.T, a *rampart.Agent, wrap func(http.Handler) http.Handler, read func(*http.Request) string) http.Handler {
	t.Helper()
	g, err := sqlguard.New(a, sqlguard.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	db, err := g.Open(&sqlite.Driver{}, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	for _, stmt := range []string{
		`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`,
		`INSERT INTO users (id, name) VALUES (1, 'alice'), (2, 'bob'), (3, 'carol')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		var n int
		err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM users WHERE name = '"+read(r)+"'").Scan(&n)
		if errors.Is(err, rampart.ErrBlocked) {
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d", n)
	})
	return a.Handler(wrap(mux))
}

func TestQuerySemicolonsAllowedInsideTheMiddleware(t *testing.T) {
	// http.AllowQuerySemicolons rewrites ';' to '&' for the handler it
	// wraps: inside the middleware, a=1;name=<payload> is one pair to a
	// parser that splits on '&' only, and name=<payload> to the handler.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	app := countApp(t, a, http.AllowQuerySemicolons, func(r *http.Request) string { return r.URL.Query().Get("name") })
	srv := httptest.NewServer(app)
	defer srv.Close()
	expectBlocked(t, srv, events, attack{name: "semicolon", method: "GET", target: "/count?a=1;name=" + url.QueryEscape(injection)}, "sql_injection")
	if code, body := send(t, srv, attack{method: "GET", target: "/count?a=1;name=bob"}); code != http.StatusOK || body != "1" {
		t.Fatalf("benign: status %d body %q, want 200 and 1 row", code, body)
	}
}

func TestTraceAndActorHeadersNothingVerifiedAreInputs(t *testing.T) {
	// Without an identity the agent verifies no actor token, and no one
	// verifies tracestate (free text) or a traceparent that is not one:
	// code that logs them into SQL reads attacker text.
	for _, h := range []string{"Tracestate", "Traceparent", "Rampart-Actor"} {
		t.Run(h, func(t *testing.T) {
			a, events := ramparttest.NewAgent(t, rampart.Config{})
			srv := httptest.NewServer(countApp(t, a, func(h http.Handler) http.Handler { return h },
				func(r *http.Request) string { return r.Header.Get(h) }))
			defer srv.Close()
			expectBlocked(t, srv, events, attack{name: h, method: "GET", target: "/count", header: map[string]string{h: `x' OR 1<2--`}}, "sql_injection")
		})
	}
}

// gunzip is a request-decompression middleware, as routers offer: it
// undoes Content-Encoding: gzip for the handler it wraps.
func gunzip(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(zr)
			r.Header.Del("Content-Encoding")
		}
		next.ServeHTTP(w, r)
	})
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCompressedBodiesAreReadDecompressed(t *testing.T) {
	// A decompression middleware inside the middleware hands the handler
	// what the captured bytes, compressed, do not show.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	jsonName := func(r *http.Request) string {
		var v struct{ Name string }
		json.NewDecoder(r.Body).Decode(&v)
		return v.Name
	}
	srv := httptest.NewServer(countApp(t, a, gunzip, jsonName))
	defer srv.Close()
	gz := map[string]string{"Content-Encoding": "gzip"}
	body := gzipped(t, []byte(`{"name":"x\u0027 OR \u00271\u0027=\u00271"}`))
	expectBlocked(t, srv, events, attack{name: "gzip JSON", target: "/count", ctype: "application/json", header: gz, body: body}, "sql_injection")

	// Past MaxBodyBytes once decompressed, from a small compressed body:
	// what the capture could not decompress is not known.
	bomb := gzipped(t, []byte(`{"pad":"`+strings.Repeat("A", 2<<20)+`","name":"x\u0027 OR \u00271\u0027=\u00271"}`))
	if int64(len(bomb)) > 1<<20 {
		t.Fatalf("compressed padding is %d bytes, want it under the capture", len(bomb))
	}
	expectBlocked(t, srv, events, attack{name: "gzip padding", target: "/count", ctype: "application/json", header: gz, body: bomb}, "inputs_truncated")

	// Longer than the capture while compressed: the compressed bytes look
	// binary, but what the handler reads past the capture is text.
	random := make([]byte, 2<<20)
	rand.Read(random)
	long := gzipped(t, []byte(`{"pad":"`+base64.StdEncoding.EncodeToString(random)+`","name":"x\u0027 OR \u00271\u0027=\u00271"}`))
	if int64(len(long)) <= 1<<20 {
		t.Fatalf("compressed body is %d bytes, want it over the capture", len(long))
	}
	expectBlocked(t, srv, events, attack{name: "gzip longer than the capture", target: "/count", ctype: "application/json", header: gz, body: long}, "inputs_truncated")

	// A coding the SDK does not decode, read by the handler.
	br := httptest.NewServer(countApp(t, a, func(h http.Handler) http.Handler { return h }, func(r *http.Request) string {
		io.Copy(io.Discard, r.Body) // a brotli middleware would decode it
		return "bob"
	}))
	defer br.Close()
	expectBlocked(t, br, events, attack{name: "br", target: "/count", header: map[string]string{"Content-Encoding": "br"}, body: []byte("\x1b\x03compressed")}, "inputs_truncated")

	if code, got := send(t, srv, attack{target: "/count", ctype: "application/json", header: gz, body: gzipped(t, []byte(`{"name":"bob"}`))}); code != http.StatusOK || got != "1" {
		t.Fatalf("benign gzip JSON: status %d body %q, want 200 and 1 row", code, got)
	}
	if code, got := send(t, srv, attack{target: "/count", header: gz, body: gzipped(t, append([]byte("\x89PNG\r\n\x1a\n\x00"), random...))}); code != http.StatusOK || got != "0" {
		t.Fatalf("benign gzip binary upload: status %d body %q, want 200 and 0 rows", code, got)
	}
}

func TestCookiesNetHTTPDropsAreInputs(t *testing.T) {
	// net/http drops a cookie whose value holds a double quote or a
	// backslash; code that splits the Cookie header itself reads it.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(countApp(t, a, func(h http.Handler) http.Handler { return h }, func(r *http.Request) string {
		for _, pair := range strings.Split(r.Header.Get("Cookie"), ";") {
			if k, v, _ := strings.Cut(strings.TrimSpace(pair), "="); k == "name" {
				return v
			}
		}
		return ""
	}))
	defer srv.Close()
	expectBlocked(t, srv, events, attack{name: "cookie", method: "GET", target: "/count",
		header: map[string]string{"Cookie": `a=1; name=x' OR 1=1 -- "`}}, "sql_injection")
	if code, got := send(t, srv, attack{method: "GET", target: "/count", header: map[string]string{"Cookie": `a=1; name=bob`}}); code != http.StatusOK || got != "1" {
		t.Fatalf("benign cookie: status %d body %q, want 200 and 1 row", code, got)
	}
}

func TestABodyThatStartsLikeJSONIsReadAsAFormToo(t *testing.T) {
	// url.ParseQuery reads any text: a body that opens with { is still a
	// form to code that parses it as one.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(vulnerableApp(t, a))
	defer srv.Close()
	for _, body := range []string{
		"{}&name=" + url.QueryEscape(injection),
		`["x"]&name=` + url.QueryEscape(injection),
	} {
		expectBlocked(t, srv, events, attack{name: body, target: "/search?via=parsequery", body: []byte(body)}, "sql_injection")
	}
}

type nameKey struct{}

func TestAQueryRewrittenInsideTheMiddlewareIsReadAsSent(t *testing.T) {
	// A middleware that takes a parameter out of the query (to keep it out
	// of logs) and hands it on in the context: the guard parses inputs
	// later, from the rewritten query.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	takeName := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			name := q.Get("name")
			q.Del("name")
			r.URL.RawQuery = q.Encode()
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), nameKey{}, name)))
		})
	}
	srv := httptest.NewServer(countApp(t, a, takeName, func(r *http.Request) string {
		name, _ := r.Context().Value(nameKey{}).(string)
		return name
	}))
	defer srv.Close()
	expectBlocked(t, srv, events, attack{name: "rewritten", method: "GET", target: "/count?name=" + url.QueryEscape(injection)}, "sql_injection")
}

func TestBase64WithLineBreaksIsDecoded(t *testing.T) {
	// encoding/base64 skips \r and \n wherever they are (MIME wraps lines
	// at 76 characters): a line break in the value must not hide it.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(vulnerableApp(t, a))
	defer srv.Close()
	enc := base64.StdEncoding.EncodeToString([]byte(injection))
	for _, v := range []string{enc[:4] + "\n" + enc[4:], enc[:8] + "\r\n" + enc[8:] + "\n", "\n" + enc} {
		expectBlocked(t, srv, events, attack{name: fmt.Sprintf("%q", v), method: "GET", target: "/search?via=base64&q=" + url.QueryEscape(v)}, "sql_injection")
	}
}

func TestBase64WithPlusReadAsSpaceIsDecoded(t *testing.T) {
	// Base64 sent unescaped in a query loses its '+' to query decoding;
	// handlers put it back (strings.ReplaceAll(v, " ", "+")) and decode.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(countApp(t, a, func(h http.Handler) http.Handler { return h }, func(r *http.Request) string {
		b, _ := base64.StdEncoding.DecodeString(strings.ReplaceAll(r.URL.Query().Get("q"), " ", "+"))
		return string(b)
	}))
	defer srv.Close()
	payload := "x' OR 1=1 --"
	for i := 0; !strings.Contains(base64.StdEncoding.EncodeToString([]byte(payload)), "+"); i++ {
		payload = "x' OR 1=1 --" + strings.Repeat(">", i)
	}
	enc := base64.StdEncoding.EncodeToString([]byte(payload))
	expectBlocked(t, srv, events, attack{name: enc, method: "GET", target: "/count?q=" + strings.ReplaceAll(enc, "=", "%3D")}, "sql_injection")
}

func TestTrailersAreInputs(t *testing.T) {
	// A chunked body may end with trailers, which net/http hands the
	// handler in r.Trailer once the body is read.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(countApp(t, a, func(h http.Handler) http.Handler { return h }, func(r *http.Request) string {
		io.Copy(io.Discard, r.Body)
		return r.Trailer.Get("X-Name")
	}))
	defer srv.Close()
	req, err := http.NewRequest("POST", srv.URL+"/count", io.MultiReader(strings.NewReader("some body")))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Name": {injection}}
	events.Reset()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d body %q: the injection in a trailer ran, want 403", resp.StatusCode, b)
	}
	if ev := events.Next(t); ev.Kind != "sql_injection" || ev.Input.Source != rampart.SourceHeader || ev.Input.Name != "X-Name" {
		t.Fatalf("event %s on %+v, want sql_injection on the X-Name trailer", ev.Kind, ev.Input)
	}
}

func TestAJSONStringInsideAValueIsDecoded(t *testing.T) {
	// A value that is itself a JSON string ("x\u0027 ..."), as double
	// encoded payloads are, unmarshalled by the handler into a string.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(countApp(t, a, func(h http.Handler) http.Handler { return h }, func(r *http.Request) string {
		var s string
		json.Unmarshal([]byte(r.URL.Query().Get("q")), &s)
		return s
	}))
	defer srv.Close()
	expectBlocked(t, srv, events, attack{name: "json string", method: "GET", target: "/count?q=" + url.QueryEscape(`"x\u0027 OR \u00271\u0027=\u00271"`)}, "sql_injection")
	if code, got := send(t, srv, attack{method: "GET", target: "/count?q=" + url.QueryEscape(`"bob"`)}); code != http.StatusOK || got != "1" {
		t.Fatalf("benign: status %d body %q, want 200 and 1 row", code, got)
	}
}

func TestJSONAfterAByteOrderMarkIsJSON(t *testing.T) {
	// Files saved on Windows start with a UTF-8 byte order mark, which
	// handlers that accept them strip before decoding.
	a, events := ramparttest.NewAgent(t, rampart.Config{})
	srv := httptest.NewServer(countApp(t, a, func(h http.Handler) http.Handler { return h }, func(r *http.Request) string {
		b, _ := io.ReadAll(r.Body)
		var v struct{ Name string }
		json.Unmarshal(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), &v)
		return v.Name
	}))
	defer srv.Close()
	body := "\xef\xbb\xbf" + `{"name":"x\u0027 OR \u00271\u0027=\u00271"}`
	expectBlocked(t, srv, events, attack{name: "bom", target: "/count", ctype: "application/json", body: []byte(body)}, "sql_injection")
}
