package rampart

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/internal/goroutine"
)

// request is the per-request state that the middleware puts in the context.
// Parsing into inputs is deferred until a guard asks for them: most requests
// never reach a guarded call with input in it, and they pay only for this
// struct.
type request struct {
	// set and rw live here so that a request costs one allocation.
	set inputSet
	rw  responseWriter

	agent *Agent
	r     *http.Request // the request passed down; the mux fills Pattern in it
	body  []byte        // the captured prefix of the body, nil if not captured

	// bodyCut says the body goes on past the captured prefix; replay is
	// the body the handler reads, which counts how far it read.
	bodyCut bool
	replay  replayBody
	// The Content-Encoding values when the body was captured: a
	// decompression middleware deletes the header as it undoes them.
	encodings []string

	once      sync.Once
	parsed    []Input
	truncated string // why parse could not record every input, "" if it could
	content   []byte // the body as the handler reads it: body, decompressed if it is compressed
	coding    coding // how content came from body

	// The form net/http parsed from a body longer than the capture, read
	// once the handler has parsed it (see lateInputs).
	lateMu        sync.Mutex
	late          []Input
	lateDone      bool
	lateTruncated bool

	incompleteOnce sync.Once
	incompleteErr  *BlockedError // the refusal of calls for an incomplete request, block mode

	idOnce sync.Once
	id     string

	blocked atomic.Pointer[BlockedError]

	// rawQuery is the query as the request arrived: a middleware inside
	// the agent's may rewrite r.URL.RawQuery before a guard parses it.
	rawQuery string

	// Set by zero trust, when the agent has an identity.
	caller     string       // the calling service's SPIFFE ID
	callerName string       // its service name, "" if it has none
	actor      *actor.Actor // the external actor, from the verified token
	traceID    string       // from the W3C traceparent

	actorToken string // the verified actor token, which backs the actor of the request's events

	requestBusiness // SetUser's user and ObjectAccess's objects (business.go)

	// readOnly is the id of the read-only decision that matches the
	// actor, "" if none: the request may run, but the guards refuse
	// what would write (see ReadOnlyFromContext).
	readOnly string
}

func (q *request) inputs() []Input {
	q.once.Do(q.parse)
	return q.parsed
}

// requestID returns the client's X-Request-Id when it is well formed, or a
// fresh random one. It is computed once, when first needed.
func (q *request) requestID() string {
	q.idOnce.Do(func() {
		if h := q.r.Header.Get("X-Request-Id"); validRequestID(h) {
			q.id = h
			return
		}
		q.id = newID()
	})
	return q.id
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

// route returns the pattern that matched the request, e.g. "GET /users/{id}".
func (q *request) route() string { return q.r.Pattern }

// parse records the request's inputs in request order: query, path,
// cookies, headers, body. The order is the request's, never a map's, so
// that which inputs fit under the cap is the same every time.
func (q *request) parse() {
	r := q.r
	max := q.agent.maxInputs
	c := collector{ins: make([]Input, 0, min(q.estimateInputs(), max)), max: max}
	// Each step stops the rest once the cap is reached.
	_ = q.parseURL(&c) && q.parseCookies(&c) && q.parseHeaders(&c) && q.parseBody(&c, r)
	q.parsed, q.truncated = c.ins, c.truncated
}

func (q *request) parseURL(c *collector) bool {
	r := q.r
	if q.rawQuery != "" && !c.query(SourceQuery, q.rawQuery) {
		return false
	}
	wildcards, subtree := patternWildcards(r.Pattern)
	for _, name := range wildcards {
		v := r.PathValue(name)
		if !c.add(SourcePath, name, v, 0) {
			return false
		}
	}
	if r.URL == nil {
		return true
	}
	// Code that reads r.URL.Path rather than r.PathValue sees the segments
	// of what a subtree pattern ("/files/" or "/files/{rest...}") matched,
	// or of the whole path when no ServeMux pattern is known.
	var rest string
	switch {
	case r.Pattern == "":
		rest = r.URL.Path
	case subtree != "":
		rest = r.PathValue(subtree)
	case strings.HasSuffix(r.Pattern, "/"):
		_, p, _ := strings.Cut(r.Pattern, " ")
		if p == "" {
			p = r.Pattern
		}
		if i := strings.IndexByte(p, '/'); i > 0 {
			p = p[i:] // drop the host
		}
		rest, _ = strings.CutPrefix(r.URL.Path, p)
		if !c.add(SourcePath, "", rest, 0) {
			return false
		}
	}
	if strings.IndexByte(rest, '/') < 0 && r.Pattern != "" {
		return true // the whole rest was recorded already
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if !c.add(SourcePath, subtree, seg, 0) {
			return false
		}
	}
	return true
}

// parseCookies records each cookie of the Cookie headers, in order: its
// value as sent and, when quoted, unquoted as r.Cookie returns it. Cookies
// that net/http drops (a value with a double quote or a backslash, a bad
// name) are recorded too, for code that splits the header itself.
func (q *request) parseCookies(c *collector) bool {
	for _, line := range q.r.Header["Cookie"] {
		for pair := range strings.SplitSeq(line, ";") {
			name, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if !c.add(SourceCookie, name, v, 0) {
				return false
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				if !c.add(SourceCookie, name, v[1:len(v)-1], 0) {
					return false
				}
			}
		}
	}
	return true
}

// parseHeaders records User-Agent, Referer and Config.Headers first, then
// every other header in name order, then trailers, then the Host. Headers the mesh sets
// and verifies itself are skipped, and so are those net/http validates or
// parses into other inputs (see skipHeader).
func (q *request) parseHeaders(c *collector) bool {
	r := q.r
	for _, h := range q.agent.headers { // canonical already
		for _, v := range r.Header[h] {
			if q.verifiedHeader(h, v) {
				continue
			}
			if !c.add(SourceHeader, h, v, 0) {
				return false
			}
		}
	}
	names := make([]string, 0, len(r.Header))
	for h := range r.Header {
		if !skipHeader(h) && !slices.Contains(q.agent.headers, h) {
			names = append(names, h)
		}
	}
	slices.Sort(names)
	for _, h := range names {
		for _, v := range r.Header[h] {
			if q.verifiedHeader(h, v) {
				continue
			}
			if !c.add(SourceHeader, h, v, 0) {
				return false
			}
		}
	}
	// Trailers of a chunked body, which net/http fills in r.Trailer once
	// the body is read: the capture read it before the handler ran.
	if len(r.Trailer) > 0 {
		for _, h := range slices.Sorted(maps.Keys(r.Trailer)) {
			for _, v := range r.Trailer[h] {
				if !c.add(SourceHeader, h, v, 0) {
					return false
				}
			}
		}
	}
	return c.add(SourceHeader, "Host", r.Host, 0)
}

// skipHeader says which headers are not inputs: Cookie, recorded cookie by
// cookie; Content-Length, digits net/http has validated.
func skipHeader(canonical string) bool {
	switch canonical {
	case "Cookie", "Content-Length":
		return true
	}
	return false
}

// verifiedHeader says whether value of header is one that cannot carry
// attacker text, and so is not an input: the actor token zero trust
// verified for this request, and a well-formed W3C traceparent (hex and
// dashes). The same headers otherwise are inputs: without an identity no
// one verifies an actor token, and tracestate is free text.
func (q *request) verifiedHeader(canonical, value string) bool {
	switch canonical {
	case actor.Header:
		return q.actorToken != "" && value == q.actorToken
	case "Traceparent":
		return wellFormedTraceparent(value)
	}
	return false
}

// wellFormedTraceparent reports whether s is a version 00 traceparent:
// 00-<32 hex>-<16 hex>-<2 hex>.
func wellFormedTraceparent(s string) bool {
	if len(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s[:2] == "00"
}

func (q *request) parseBody(c *collector, r *http.Request) bool {
	if len(q.body) == 0 {
		return true
	}
	// A compressed body is read as what a decompression middleware inside
	// Agent.Handler hands the handler.
	data, coding := decodeContent(q.encodings, q.body, q.agent.maxBody)
	q.content, q.coding = data, coding
	if coding == codingUnknown {
		return true // incomplete once the handler reads it
	}
	cl := classifyBody(r.Header.Get("Content-Type"), data)
	if coding == codingCut && !q.bodyCut && (!cl.binary || cl.labelled || cl.multipart != "") {
		// Past MaxBodyBytes once decompressed (or a corrupt stream):
		// what follows is not known. A binary one is exempt, as below.
		defer func() {
			if c.truncated == "" {
				c.truncated = "a compressed body longer than MaxBodyBytes once decompressed"
			}
		}()
	}
	if cl.multipart != "" {
		ok := true
		complete := scanMultipart(data, cl.multipart, func(name, value string) bool {
			ok = c.add(SourceForm, name, value, 0)
			return ok
		})
		if !ok {
			return false
		}
		if !complete && !q.bodyCut && coding != codingCut {
			c.truncated = "a multipart body that could not be read whole"
			return false
		}
		return true
	}
	// The captured (or decompressed) bytes never change: the raw text and
	// the nested readings share them instead of copying a body of up to
	// MaxBodyBytes.
	text := unsafe.String(unsafe.SliceData(data), len(data))
	if cl.json && !c.json(SourceJSON, text, 0) {
		return false
	}
	if cl.form && !c.query(SourceForm, text) {
		return false
	}
	// The whole body, as code that reads it into a string sees it, JSON
	// included (a lenient reader, a log table). It is not decoded further:
	// its parts were read above.
	c.ins = append(c.ins, Input{Source: SourceBody, Value: text})
	return true
}

// estimateInputs bounds from above, cheaply, how many inputs parse will
// record, so that the slice is allocated once: growing it was the largest
// allocation of a request.
func (q *request) estimateInputs() int {
	r := q.r
	n := 8 + 2*len(r.Header) + 2*strings.Count(r.Pattern, "{")
	if r.URL != nil {
		n += strings.Count(r.URL.Path, "/")
		if q.rawQuery != "" {
			n += 2 * (strings.Count(q.rawQuery, "&") + 1)
		}
	}
	for _, c := range r.Header.Values("Cookie") {
		n += strings.Count(c, ";") + 1
	}
	if q.body != nil {
		n += bytes.Count(q.body, []byte{'"'})/2 + 2*bytes.Count(q.body, []byte{'&'}) + 3
	}
	return n
}

// patternWildcards returns the wildcard names of a ServeMux pattern such as
// "GET example.com/u/{id}/{rest...}", and the name of its "..." wildcard.
func patternWildcards(pattern string) (names []string, subtree string) {
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			return names, subtree
		}
		pattern = pattern[i+1:]
		j := strings.IndexByte(pattern, '}')
		if j < 0 {
			return names, subtree
		}
		name, multi := strings.CutSuffix(pattern[:j], "...")
		if name != "$" && name != "" {
			names = append(names, name)
			if multi {
				subtree = name
			}
		}
		pattern = pattern[j+1:]
	}
}

// goroutineRequests maps the goroutine serving a request to its state, for
// guarded calls made without a context. Entries live exactly as long as the
// middleware's ServeHTTP.
var goroutineRequests sync.Map // uintptr -> *request

func requestOfGoroutine() *request {
	v, ok := goroutineRequests.Load(goroutine.ID())
	if !ok {
		return nil
	}
	return v.(*request)
}

// incomplete says why not every input of the request was recorded, or ""
// if every one was. A body longer than the capture counts only once the
// handler has read past the captured bytes: until then nothing unrecorded
// can have reached a call. A binary body is exempt (a NUL byte in its first
// 512 bytes, and not labelled as a form): no JSON decoder reads past it,
// and uploaded files are long.
func (q *request) incomplete() string {
	q.once.Do(q.parse)
	if q.truncated != "" {
		return q.truncated
	}
	if q.coding == codingUnknown && q.replay.read.Load() > 0 {
		return "a body in a Content-Encoding the SDK does not decode, read by the handler"
	}
	if q.bodyCut && q.replay.read.Load() > int64(len(q.body)) {
		cl := classifyBody(q.r.Header.Get("Content-Type"), q.content)
		if _, done, truncated := q.lateForm(); done && !truncated {
			return "" // the whole form, from net/http
		} else if truncated {
			return "more input values than the cap"
		}
		if !cl.binary || cl.labelled || cl.multipart != "" {
			return "a body longer than MaxBodyBytes, read past it by the handler"
		}
	}
	return ""
}

// lateInputs returns the fields of a form body longer than the capture once
// the handler has had net/http parse it (r.FormValue, r.ParseMultipartForm
// on the request the middleware passed down): the values of the form, and
// for multipart the file names, never the files. With them the request is
// complete again, which keeps uploads larger than MaxBodyBytes usable. They
// are in key order, for the map net/http fills has no other.
func (q *request) lateInputs() []Input {
	ins, _, _ := q.lateForm()
	return ins
}

// lateForm returns lateInputs, whether the form was read, and whether it had
// more values than the cap.
func (q *request) lateForm() (ins []Input, done, truncated bool) {
	if !q.bodyCut {
		return nil, false, false
	}
	q.lateMu.Lock()
	defer q.lateMu.Unlock()
	if q.lateDone {
		return q.late, true, q.lateTruncated
	}
	r := q.r
	var values map[string][]string
	var files map[string][]string
	switch cl := classifyBody(r.Header.Get("Content-Type"), q.body); {
	case cl.multipart != "" && r.MultipartForm != nil:
		values = r.MultipartForm.Value
		files = make(map[string][]string, len(r.MultipartForm.File))
		for k, fhs := range r.MultipartForm.File {
			for _, fh := range fhs {
				files[k] = append(files[k], fh.Filename)
			}
		}
	case cl.labelled && r.PostForm != nil:
		values = r.PostForm
	default:
		return nil, false, false
	}
	c := collector{max: q.agent.maxInputs}
	for _, m := range []map[string][]string{values, files} {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !c.add(SourceForm, k, k, 0) {
				break
			}
			for _, v := range m[k] {
				if !c.add(SourceForm, k, v, 0) {
					break
				}
			}
		}
	}
	q.late, q.lateDone, q.lateTruncated = c.ins, true, c.truncated != ""
	return q.late, true, q.lateTruncated
}
