package rampart

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/internal/goroutine"
)

// maxInputs bounds how many inputs one request contributes, so that a body of
// many tiny strings cannot make every guarded call scan thousands of values.
// Inputs past it are not checked; Stats.InputsTruncated counts such requests.
const maxInputs = 2048

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

	once   sync.Once
	parsed []Input

	idOnce sync.Once
	id     string

	blocked atomic.Pointer[BlockedError]

	// Set by zero trust, when the agent has an identity.
	caller  string       // the calling service's SPIFFE ID
	actor   *actor.Actor // the external actor, from the verified token
	traceID string       // from the W3C traceparent

	actorToken string // the verified actor token, which backs the actor of the request's events
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

func (q *request) parse() {
	r := q.r
	ins := make([]Input, 0, min(q.estimateInputs(), maxInputs))
	add := func(src Source, name, value string) {
		// Every non-empty value is recorded, one byte included: each guard
		// decides which lengths can exploit its call (the SQL guard ignores
		// one-byte inputs; a one-character host such as "0" reaches a server).
		if value == "" {
			return
		}
		if len(ins) >= maxInputs {
			q.agent.stats.inputsTruncated.Add(1)
			return
		}
		ins = append(ins, Input{Source: src, Name: name, Value: value})
	}
	if r.URL != nil && r.URL.RawQuery != "" {
		// ParseQuery keeps what it could parse when it meets a bad escape,
		// which is what the application's r.URL.Query() sees too.
		vals, _ := url.ParseQuery(r.URL.RawQuery)
		for k, vs := range vals {
			add(SourceQuery, k, k)
			for _, v := range vs {
				add(SourceQuery, k, v)
			}
		}
	}
	for _, name := range patternWildcards(r.Pattern) {
		add(SourcePath, name, r.PathValue(name))
	}
	for _, c := range r.Cookies() {
		add(SourceCookie, c.Name, c.Value)
	}
	for _, h := range q.agent.headers {
		for _, v := range r.Header.Values(h) {
			add(SourceHeader, h, v)
		}
	}
	if q.body != nil {
		switch bodyKind(r.Header.Get("Content-Type")) {
		case bodyJSON:
			scanJSONStrings(q.body, func(name, value string) bool {
				add(SourceJSON, name, value)
				return len(ins) < maxInputs
			})
		case bodyForm:
			vals, _ := url.ParseQuery(string(q.body))
			for k, vs := range vals {
				add(SourceForm, k, k)
				for _, v := range vs {
					add(SourceForm, k, v)
				}
			}
		case bodyText:
			add(SourceBody, "", string(q.body))
		}
	}
	q.parsed = ins
}

// estimateInputs bounds from above, cheaply, how many inputs parse will
// record, so that the slice is allocated once: growing it was the largest
// allocation of a request.
func (q *request) estimateInputs() int {
	r := q.r
	n := 4 + 2*len(q.agent.headers) + strings.Count(r.Pattern, "{")
	if r.URL != nil && r.URL.RawQuery != "" {
		n += 2 * (strings.Count(r.URL.RawQuery, "&") + 1)
	}
	for _, c := range r.Header.Values("Cookie") {
		n += strings.Count(c, ";") + 1
	}
	if q.body != nil {
		switch bodyKind(r.Header.Get("Content-Type")) {
		case bodyJSON:
			n += bytes.Count(q.body, []byte{'"'}) / 2 // each string has two quotes
		case bodyForm:
			n += 2 * (bytes.Count(q.body, []byte{'&'}) + 1)
		case bodyText:
			n++
		}
	}
	return n
}

// patternWildcards returns the wildcard names of a ServeMux pattern such as
// "GET example.com/u/{id}/{rest...}".
func patternWildcards(pattern string) []string {
	var names []string
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			return names
		}
		pattern = pattern[i+1:]
		j := strings.IndexByte(pattern, '}')
		if j < 0 {
			return names
		}
		name := strings.TrimSuffix(pattern[:j], "...")
		if name != "$" && name != "" {
			names = append(names, name)
		}
		pattern = pattern[j+1:]
	}
}

type bodyType int

const (
	bodyNone bodyType = iota
	bodyJSON
	bodyForm
	bodyText
)

func bodyKind(contentType string) bodyType {
	if contentType == "" {
		return bodyNone
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return bodyNone
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return bodyJSON
	case mt == "application/x-www-form-urlencoded":
		return bodyForm
	case mt == "text/plain":
		return bodyText
	}
	return bodyNone
}

// captureBody reads up to limit bytes of a body the middleware knows how to
// parse and gives the handler an equivalent body: the captured bytes followed
// by the rest, then the read error if there was one. Nothing is lost: a body
// longer than the limit is only partly checked, never cut.
func captureBody(r *http.Request, limit int64) []byte {
	if limit <= 0 || r.Body == nil || r.Body == http.NoBody || bodyKind(r.Header.Get("Content-Type")) == bodyNone {
		return nil
	}
	var captured []byte
	var err error
	if r.ContentLength > 0 && r.ContentLength <= limit {
		// The server enforces Content-Length, so the buffer is exact.
		captured = make([]byte, r.ContentLength)
		var n int
		n, err = io.ReadFull(r.Body, captured)
		captured = captured[:n]
		if err == io.EOF {
			err = nil
		}
	} else {
		// Unknown or over-limit length: grow with what really arrives, so a
		// client cannot make every request allocate the limit.
		captured, err = io.ReadAll(io.LimitReader(r.Body, limit))
	}
	var rest io.Reader = r.Body
	if err != nil {
		rest = errReader{err}
	}
	r.Body = replayBody{Reader: io.MultiReader(bytes.NewReader(captured), rest), Closer: r.Body}
	return captured
}

type replayBody struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

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
