package rampart_test

import (
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
)

// Bypasses of the input capture found by review: each sends an injection
// that a handler reads the way ordinary Go code does, to the vulnerable
// application over a real SQLite database, and expects it blocked.

func TestMultipartFieldWithEmptyFileNameIsAnInput(t *testing.T) {
	// net/http stores a part whose filename parameter is empty as a value,
	// which r.FormValue returns: its content is a field, not a file.
	a, events := newAgent(t, rampart.Config{})
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
	a, events := newAgent(t, rampart.Config{})
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
