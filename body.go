package rampart

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// maxMultipartParts bounds the parts of a multipart body that are read, as
// net/http's ParseMultipartForm does by default (it refuses more than 1,000).
// A body with more parts is incomplete.
const maxMultipartParts = 1000

var utf8BOM = []byte("\xef\xbb\xbf")

// sniffLen is how much of a body decides whether it is binary.
const sniffLen = 512

// bodyClass is what the middleware makes of a captured body: which readings
// of it an application could make. Content decides, not the label, because
// Go handlers decode a body whatever its Content-Type says (json.Decoder
// never looks at it); only what net/http itself parses by label (forms,
// multipart) follows the label.
type bodyClass struct {
	json      bool   // it scans as JSON: first non-space byte (after a BOM) is {, [ or "
	form      bool   // labelled urlencoded, or holds '=': key=value pairs
	multipart string // the boundary, for a multipart/* body with one
	labelled  bool   // labelled application/x-www-form-urlencoded
	binary    bool   // a NUL byte in its first sniffLen bytes
}

func classifyBody(contentType string, body []byte) bodyClass {
	var c bodyClass
	if len(body) == 0 {
		return c
	}
	// ParseMediaType returns the media type even when a parameter is bad
	// ("application/x-www-form-urlencoded; charset"), and net/http's form
	// parsing goes by that type.
	mt, params, _ := mime.ParseMediaType(contentType)
	if strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" {
		c.multipart = params["boundary"]
		return c
	}
	head := body[:min(len(body), sniffLen)]
	// No JSON or text decoder gets past a NUL: encoding/json refuses it
	// anywhere, and images, archives and protocol buffers hold one early.
	c.binary = bytes.IndexByte(head, 0) >= 0
	// A UTF-8 byte order mark, which code that reads files saved on
	// Windows strips, does not make JSON something else.
	text := bytes.TrimPrefix(body, utf8BOM)
	if i := firstNonSpace(text); i < len(text) && (text[i] == '{' || text[i] == '[' || text[i] == '"') {
		c.json = true
	}
	// url.ParseQuery reads any text, one that opens like JSON included:
	// "{}&name=<payload>" is a form to code that parses it as one.
	c.form = bytes.IndexByte(body, '=') >= 0
	if mt == "application/x-www-form-urlencoded" {
		c.form, c.labelled = true, true
	}
	return c
}

func firstNonSpace(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanQuery calls fn with the key and value of each pair of a query string
// or urlencoded form, in the order they were sent. It reads what
// url.ParseQuery reads and more: a pair it drops (a bad escape, a
// semicolon) is yielded undecoded, because an application that parses the
// string itself may still use it; and a pair holding semicolons is yielded
// whole and then split at them, as http.AllowQuerySemicolons (which may
// wrap the handler inside the middleware) and other parsers split it. It
// stops when fn returns false.
func scanQuery(s string, fn func(key, value string) bool) {
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if !fn(queryUnescape(k), queryUnescape(v)) {
			return
		}
		if strings.IndexByte(pair, ';') < 0 {
			continue
		}
		for sub := range strings.SplitSeq(pair, ";") {
			if sub == "" {
				continue
			}
			k, v, _ := strings.Cut(sub, "=")
			if !fn(queryUnescape(k), queryUnescape(v)) {
				return
			}
		}
	}
}

func queryUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// scanMultipart calls fn with each field of a multipart body: for a value
// part its name and value; for a file part its name and file name (as
// mime/multipart gives it, and as sent when that differs), never the file's
// content. It reports whether it read the body to its end; a body cut by the
// capture limit, malformed, or of more than maxMultipartParts parts is not.
func scanMultipart(body []byte, boundary string, fn func(name, value string) bool) (complete bool) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for range maxMultipartParts {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
		name, file, isFile := partNames(p.Header.Get("Content-Disposition"))
		// net/http keeps a part as a value, which r.FormValue returns,
		// when its file name is empty (filename="", or one that
		// mime/multipart reads as empty): only a named file is a file.
		if isFile && p.FileName() != "" {
			if !fn(name, name) || !fn(name, p.FileName()) {
				return false
			}
			if file != p.FileName() && !fn(name, file) {
				return false
			}
			continue
		}
		// The part reader stops at the boundary; the body is bounded by the
		// capture limit, so this is too.
		v, err := io.ReadAll(p)
		if !fn(name, name) || !fn(name, string(v)) {
			return false
		}
		if err != nil {
			return false
		}
	}
	return false
}

// partNames returns the form name and the file name of a part's
// Content-Disposition, and whether it is a file.
func partNames(disposition string) (name, file string, isFile bool) {
	_, params, err := mime.ParseMediaType(disposition)
	if err != nil {
		return "", "", false
	}
	file, isFile = params["filename"]
	return params["name"], file, isFile
}

// captureBody reads up to limit bytes of the body and gives the handler an
// equivalent body: the captured bytes followed by the rest, then the read
// error if there was one. Nothing is lost: a body longer than the limit is
// only partly captured, never cut. Every body is captured, whatever its
// label: what it holds is decided when a guard asks (classifyBody).
func (q *request) captureBody(r *http.Request, limit int64) {
	if limit <= 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	var buf []byte
	var err error
	switch {
	case r.ContentLength > 0 && r.ContentLength <= limit:
		// The server enforces Content-Length, so the buffer is exact.
		buf = make([]byte, r.ContentLength)
		var n int
		n, err = io.ReadFull(r.Body, buf)
		buf = buf[:n]
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
		}
	case r.ContentLength > limit:
		buf, err = io.ReadAll(io.LimitReader(r.Body, limit))
		q.bodyCut = true
	default:
		// Unknown length: grow with what really arrives, so a client cannot
		// make every request allocate the limit; one byte more tells
		// whether the body goes on.
		buf, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
		q.bodyCut = int64(len(buf)) > limit
	}
	q.encodings = r.Header["Content-Encoding"]
	var rest io.Reader = r.Body
	if err != nil {
		rest = errReader{err}
	}
	q.body = buf[:min(int64(len(buf)), limit)]
	q.replay.head.Reset(buf)
	q.replay.rest, q.replay.Closer = rest, r.Body
	r.Body = &q.replay
}

// replayBody is the body the handler reads: the captured bytes, then the
// rest. It counts what was read, so that a guard knows whether the handler
// has seen bytes past the capture.
type replayBody struct {
	head bytes.Reader
	rest io.Reader
	io.Closer
	read atomic.Int64
}

func (b *replayBody) Read(p []byte) (int, error) {
	var n int
	var err error
	if b.head.Len() > 0 {
		n, err = b.head.Read(p)
	} else {
		n, err = b.rest.Read(p)
	}
	b.read.Add(int64(n))
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// maxContentCodings is the most Content-Encoding layers decoded.
const maxContentCodings = 3

// coding says how the content of a body came from the captured bytes.
type coding uint8

const (
	codingNone    coding = iota // no Content-Encoding (or identity), or one that is not what it says: read as sent
	codingDecoded               // decompressed whole, within MaxBodyBytes
	codingCut                   // decompressed up to MaxBodyBytes, or up to where the stream is corrupt or cut
	codingUnknown               // a Content-Encoding the SDK does not decode (br, zstd, ...)
)

// decodeContent undoes the Content-Encoding of a captured body, as a
// request-decompression middleware inside Agent.Handler would: gzip
// (x-gzip) and deflate (zlib, or raw DEFLATE as some clients send), in the
// reverse of the order listed. It returns at most limit bytes. A body that
// does not start as its coding says is returned as sent: a middleware
// refuses it, or passes it on unchanged.
func decodeContent(encodings []string, body []byte, limit int64) ([]byte, coding) {
	if len(encodings) == 0 {
		return body, codingNone
	}
	var codings []string
	for _, e := range encodings {
		for c := range strings.SplitSeq(e, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	// Each layer costs up to limit bytes of decompression: a body that
	// lists more than a real client stacks is one the SDK does not decode
	// (so it fails closed if the handler reads it), not a way to make it
	// inflate thousands of nested layers.
	if len(codings) > maxContentCodings {
		return body, codingUnknown
	}
	out, how := body, codingNone
	for i := len(codings) - 1; i >= 0; i-- {
		var zr io.Reader
		switch codings[i] {
		case "gzip", "x-gzip":
			r, err := gzip.NewReader(bytes.NewReader(out))
			if err != nil {
				return body, codingNone
			}
			zr = r
		case "deflate":
			if r, err := zlib.NewReader(bytes.NewReader(out)); err == nil {
				zr = r
			} else {
				zr = flate.NewReader(bytes.NewReader(out))
			}
		default:
			return body, codingUnknown
		}
		// Bounded by the capture limit, whatever the compression ratio.
		d, err := io.ReadAll(io.LimitReader(zr, limit+1))
		switch {
		case int64(len(d)) > limit:
			d, how = d[:limit], codingCut
		case err != nil:
			how = codingCut
		case how == codingNone:
			how = codingDecoded
		}
		out = d
	}
	return out, how
}
