package rampart_test

import (
	"net/http/httptest"
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
