package waf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// countingBody is a request body that records how much was read from it
// and whether it was closed.
type countingBody struct {
	r      io.Reader
	read   int
	closed bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *countingBody) Close() error { b.closed = true; return nil }

const smallLimit = 1024

var small = func() (*Firewall, error) { return New(Config{BodyLimit: smallLimit}) }

// jsonOfSize returns {"data":"xxx…"} padded to exactly n bytes.
func jsonOfSize(n int) string {
	const frame = `{"data":""}`
	return `{"data":"` + strings.Repeat("x", n-len(frame)) + `"}`
}

// checkReplay reads r.Body after Inspect and checks it is want, byte for
// byte, that Inspect read no more than the limit allows and buffered no more,
// and that closing the new body closes the original.
func checkReplay(t *testing.T, r *http.Request, orig *countingBody, want string, limit int) {
	t.Helper()
	if orig.read > limit+1 {
		t.Errorf("Inspect read %d bytes of the body; the limit is %d", orig.read, limit)
	}
	if rb, ok := r.Body.(*replayBody); ok && cap(rb.head) > limit+1 {
		t.Errorf("Inspect buffered %d bytes (capacity); the limit is %d", cap(rb.head), limit)
	}
	got, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("reading the body after Inspect: %v", err)
	}
	if !bytes.Equal(got, []byte(want)) {
		t.Errorf("body after Inspect: %d bytes, want %d identical bytes", len(got), len(want))
	}
	if err := r.Body.Close(); err != nil || !orig.closed {
		t.Errorf("Close: %v; original closed: %v", err, orig.closed)
	}
}

func TestBodyIsReplayedIntactAndBufferedWithinTheLimit(t *testing.T) {
	f := shared(t, small)
	for _, size := range []int{11, 100, smallLimit - 1, smallLimit, smallLimit + 1, smallLimit + 2, 3*smallLimit + 17, 1 << 20} {
		for _, declared := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d bytes, length declared %v", size, declared), func(t *testing.T) {
				body := jsonOfSize(size)
				r := newRequest("POST", "/api/items", "application/json", "")
				orig := &countingBody{r: strings.NewReader(body)}
				r.Body = orig
				r.ContentLength = int64(size)
				if !declared {
					r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
				}
				v := inspect(t, f, r)
				if v.Blocked || v.Score != 0 {
					t.Errorf("blocked=%v score=%d matches %v", v.Blocked, v.Score, ruleIDs(v))
				}
				if want := size > smallLimit; v.BodyOverLimit != want {
					t.Errorf("BodyOverLimit = %v, want %v", v.BodyOverLimit, want)
				}
				checkReplay(t, r, orig, body, smallLimit)
			})
		}
	}
}

func TestBodyOverTheLimit(t *testing.T) {
	f := shared(t, small)
	pad := strings.Repeat("a", 2*smallLimit)
	sqli := "' UNION SELECT password FROM users--"
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int // 0: passes
		family      int // the rule family that must match when it is refused
	}{
		{"JSON, attack after the cut, passes uninspected", "application/json",
			`{"pad":"` + pad + `","q":"` + sqli + `"}`, 0, 0},
		{"JSON, attack before the cut", "application/json",
			`{"q":"` + sqli + `","pad":"` + pad + `"}`, 403, 942},
		{"JSON, attack in an array before the cut", "application/json",
			`{"items":[{"q":"<script>alert(1)</script>"},{"pad":"` + pad + `"}]}`, 403, 941},
		{"JSON malformed before the cut", "application/json",
			`{"a":1,,"q":"` + sqli + `","pad":"` + pad + `"}`, 400, 200},
		{"JSON with a second value before the cut", "application/json",
			`{"a":1} {"q":"` + sqli + `","pad":"` + pad + `"}`, 400, 200},
		{"JSON nested too deep before the cut", "application/json",
			strings.Repeat("[", 1100) + pad, 400, 10}, // rule 10001: cut, but failed for its depth
		{"form, attack after the cut, passes uninspected", "application/x-www-form-urlencoded",
			"pad=" + pad + "&q=%27+UNION+SELECT+password+FROM+users--", 0, 0},
		{"form, attack before the cut", "application/x-www-form-urlencoded",
			"q=%27+UNION+SELECT+password+FROM+users--&pad=" + pad, 403, 942},
		{"multipart, file cut at the limit, passes", "multipart/form-data; boundary=xyz",
			"--xyz\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nholiday\r\n" +
				"--xyz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n" +
				pad + "\r\n--xyz--\r\n", 0, 0},
		{"multipart, attack in a field before the cut", "multipart/form-data; boundary=xyz",
			"--xyz\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n" + sqli + "\r\n" +
				"--xyz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n" +
				pad + "\r\n--xyz--\r\n", 403, 942},
		{"JSON at exactly the limit, malformed", "application/json",
			(`{"a":1,,` + pad)[:smallLimit], 400, 200},
		{"JSON at exactly the limit, well formed", "application/json",
			jsonOfSize(smallLimit), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest("POST", "/api/items", tt.contentType, "")
			orig := &countingBody{r: strings.NewReader(tt.body)}
			r.Body, r.ContentLength = orig, int64(len(tt.body))
			v := inspect(t, f, r)
			if v.Status != tt.status || v.Blocked != (tt.status != 0) {
				t.Errorf("blocked=%v status=%d, want status %d (matches %v)", v.Blocked, v.Status, tt.status, ruleIDs(v))
			}
			if tt.family != 0 && !hasFamily(v, tt.family) {
				t.Errorf("no %dxxx rule matched: %v", tt.family, ruleIDs(v))
			}
			checkReplay(t, r, orig, tt.body, smallLimit)
		})
	}
}

func TestBodyLeftAloneWhenNotInspected(t *testing.T) {
	f := shared(t, blocking)
	t.Run("not asked to", func(t *testing.T) {
		r := newRequest("POST", "/api/items", "application/json", "")
		orig := &countingBody{r: strings.NewReader(`{"q":"<script>alert(1)</script>"}`)}
		r.Body = orig
		v, err := f.Inspect(r, "", HeadersOnly)
		if err != nil || v.Blocked || orig.read != 0 || r.Body != io.ReadCloser(orig) {
			t.Errorf("err=%v blocked=%v read=%d body replaced=%v", err, v.Blocked, orig.read, r.Body != io.ReadCloser(orig))
		}
	})
	t.Run("refused on its headers", func(t *testing.T) {
		// TRACE is not an allowed method (911100, phase 1): early blocking
		// refuses it before its body is read.
		r := newRequest("TRACE", "/api/items", "application/json", "")
		orig := &countingBody{r: strings.NewReader(`{"q":1}`)}
		r.Body = orig
		v := inspect(t, f, r)
		if !v.Blocked || !hasFamily(v, 911) || orig.read != 0 || r.Body != io.ReadCloser(orig) {
			t.Errorf("blocked=%v matches=%v read=%d body replaced=%v", v.Blocked, ruleIDs(v), orig.read, r.Body != io.ReadCloser(orig))
		}
	})
}

type failingBody struct {
	data string
	err  error
}

func (b *failingBody) Read(p []byte) (int, error) {
	if b.data == "" {
		return 0, b.err
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

func (b *failingBody) Close() error { return nil }

func TestBodyReadErrorIsReturnedAndReplayed(t *testing.T) {
	f := shared(t, blocking)
	errReset := errors.New("connection reset")
	r := newRequest("POST", "/api/items", "application/json", "")
	r.Body = &failingBody{data: `{"q":"partial`, err: errReset}
	_, err := f.Inspect(r, "", BodyPrefix)
	if !errors.Is(err, errReset) {
		t.Fatalf("Inspect error = %v; want it to wrap %v", err, errReset)
	}
	got, err := io.ReadAll(r.Body)
	if string(got) != `{"q":"partial` || !errors.Is(err, errReset) {
		t.Errorf("body after Inspect: %q, %v; want the bytes read, then the error", got, err)
	}
}

func TestWellFormedJSONPrefix(t *testing.T) {
	tests := map[string]bool{
		`{"a":"b`:           true,
		`{"a":[1,2,{"b":`:   true,
		`{"a":tr`:           true,
		`[1,2,3`:            true,
		`{"a":1}   `:        true,
		`  {"a":1`:          true,
		`{"a":1,,`:          false,
		`{"a":1} {"b":`:     false,
		`{"a":1}x`:          false,
		`{a:1`:              false,
		`]`:                 false,
		"\"\x00":            false,
		`{"a":"\u12`:        true,
		`{"a":"\q`:          false,
		`{"a":1,"b":nul`:    true,
		`{"a":1,"b":nulx`:   false,
		`{"a":1.5e`:         true,
		`{"a":-`:            true,
		`{"a":--`:           false,
		`{"a":"é`:           true,
		"{\"a\":\"\xff\xfe": true,
	}
	for in, want := range tests {
		if got := wellFormedJSONPrefix([]byte(in)); got != want {
			t.Errorf("wellFormedJSONPrefix(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestWholeBodyReportsALongerBodyWithoutInspectingIt(t *testing.T) {
	f := shared(t, small)
	attack := `"q":"1' UNION SELECT username, password FROM users--"}`
	for _, c := range []struct {
		name    string
		body    string
		over    bool
		blocked bool
	}{
		{"an attack within the limit is inspected", `{` + attack, false, true},
		{"an attack after the limit is not inspected, and reported", `{"pad":"` + strings.Repeat("a", smallLimit) + `",` + attack, true, false},
	} {
		for _, declared := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, length declared %v", c.name, declared), func(t *testing.T) {
				r := newRequest("POST", "/api/items", "application/json", "")
				orig := &countingBody{r: strings.NewReader(c.body)}
				r.Body, r.ContentLength = orig, int64(len(c.body))
				if !declared {
					r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
				}
				v, err := f.Inspect(r, "", WholeBody)
				if err != nil {
					t.Fatal(err)
				}
				if v.BodyOverLimit != c.over || v.Blocked != c.blocked {
					t.Errorf("BodyOverLimit %v, Blocked %v (rules %v); want %v, %v", v.BodyOverLimit, v.Blocked, ruleIDs(v), c.over, c.blocked)
				}
				checkReplay(t, r, orig, c.body, smallLimit)
			})
		}
	}
}
