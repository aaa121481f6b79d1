package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// MaxJSONDepth is the deepest nesting of objects and arrays a request body
// may have.
const MaxJSONDepth = 64

// CodeDuplicateKey is the error code of a JSON body that names a key twice
// in one object.
const CodeDuplicateKey = "duplicate_key"

// decodeJSON reads a request body of at most limit bytes into v: one JSON
// value, no unknown fields, nothing after it, and no object that names a
// key twice (see decodeStrict).
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
			msg: "Content-Type must be application/json"}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return jsonError(err)
	}
	return decodeStrict(data, v)
}

// decodeStrict decodes data into v, refusing what encoding/json would let
// through silently:
//
//   - a key named twice in one object, at any depth: encoding/json keeps the
//     last, so {"service":"evil","service":"gateway"} would pass a check made
//     on the first (by a proxy, a log, a reviewer) and act on the second.
//     Keys are compared as encoding/json matches them to fields, without
//     regard to case ("service" and "SERVICE" are the same key), so that
//     no spelling of a field can override another;
//   - nesting deeper than MaxJSONDepth;
//   - unknown fields, and anything after the value.
func decodeStrict(data []byte, v any) error {
	if _, err := scanKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return badRequest("", "malformed JSON: more than one value in the body")
		}
		return jsonError(err)
	}
	return nil
}

// scanKeys checks the first JSON value in data for duplicate keys and
// depth, and returns how many keys it holds. It reads the bytes once, in
// place; where data is not valid JSON it stops and returns nil, leaving the
// decoder to report the syntax error with its own message.
func scanKeys(data []byte) (keys int, err error) {
	s := keyScanner{data: data}
	err = s.value(0)
	if d, ok := err.(*dupError); ok {
		path := d.path()
		if d.depth {
			return s.keys, badRequest(path, fmt.Sprintf("malformed JSON: nested deeper than %d levels", MaxJSONDepth))
		}
		return s.keys, &apiError{status: http.StatusBadRequest, code: CodeDuplicateKey, field: path,
			msg: fmt.Sprintf("malformed JSON: key %s appears twice in one object (keys are compared without regard to case)", strconvQuote(path))}
	}
	return s.keys, nil // nil, or a syntax error the decoder reports
}

// errSyntax stops a scan at invalid JSON.
var errSyntax = errors.New("syntax")

// dupError is a duplicate key (or too deep a nesting) at a path, which
// the levels it returns through complete, innermost first.
type dupError struct {
	segs  []string // innermost first: "key" or "[3]"
	depth bool
}

func (d *dupError) Error() string { return "duplicate key" }

func (d *dupError) path() string {
	var b strings.Builder
	for i := len(d.segs) - 1; i >= 0; i-- {
		seg := d.segs[i]
		if b.Len() > 0 && !strings.HasPrefix(seg, "[") {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

type keyScanner struct {
	data []byte
	pos  int
	keys int
	// The folded keys of the objects being scanned, innermost last: their
	// bytes in arena, and where each one is in spans. An object truncates
	// both to where they were when it ends.
	arena []byte
	spans []keySpan
}

type keySpan struct{ start, end int }

func (s *keyScanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value scans one value at depth (the number of objects and arrays around
// it).
func (s *keyScanner) value(depth int) error {
	s.ws()
	if s.pos >= len(s.data) {
		return errSyntax
	}
	switch c := s.data[s.pos]; c {
	case '{', '[':
		if depth >= MaxJSONDepth {
			return &dupError{depth: true}
		}
		if c == '{' {
			return s.object(depth + 1)
		}
		return s.array(depth + 1)
	case '"':
		_, _, err := s.str()
		return err
	default: // a number, true, false or null: the decoder checks which
		start := s.pos
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				if s.pos == start {
					return errSyntax
				}
				return nil
			}
			s.pos++
		}
		return nil
	}
}

// str scans a string at s.pos and returns its raw contents, and whether
// they need decoding (an escape, or bytes that are not plain ASCII).
func (s *keyScanner) str() (raw []byte, plain bool, err error) {
	s.pos++ // the opening quote
	start := s.pos
	plain = true
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; {
		case c == '"':
			raw = s.data[start:s.pos]
			s.pos++
			return raw, plain, nil
		case c == '\\':
			plain = false
			s.pos += 2
		case c < 0x20:
			return nil, false, errSyntax
		default:
			if c >= 0x80 {
				plain = false
			}
			s.pos++
		}
	}
	return nil, false, errSyntax
}

func (s *keyScanner) object(depth int) error {
	s.pos++ // {
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	arenaBase, spansBase := len(s.arena), len(s.spans)
	defer func() { s.arena, s.spans = s.arena[:arenaBase], s.spans[:spansBase] }()
	var many map[string]bool // the folded keys, once there are many
	for {
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return errSyntax
		}
		raw, plain, err := s.str()
		if err != nil {
			return err
		}
		var name string
		start := len(s.arena)
		if plain {
			for _, c := range raw {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				s.arena = append(s.arena, c)
			}
		} else {
			// Escapes or non-ASCII: decode as encoding/json does
			// (invalid UTF-8 becomes U+FFFD), then fold.
			var ok bool
			if name, ok = decodeKey(s.data[s.pos-len(raw)-2 : s.pos]); !ok {
				return errSyntax
			}
			s.arena = append(s.arena, foldKey(name)...)
		}
		folded := s.arena[start:]
		dup := false
		if many != nil {
			dup = many[string(folded)]
			many[string(folded)] = true
			s.arena = s.arena[:start]
		} else {
			for _, sp := range s.spans[spansBase:] {
				if bytes.Equal(s.arena[sp.start:sp.end], folded) {
					dup = true
					break
				}
			}
			s.spans = append(s.spans, keySpan{start, len(s.arena)})
			if len(s.spans)-spansBase > 16 {
				many = make(map[string]bool, 64)
				for _, sp := range s.spans[spansBase:] {
					many[string(s.arena[sp.start:sp.end])] = true
				}
			}
		}
		s.keys++
		if dup {
			return &dupError{segs: []string{keyText(plain, raw, name)}}
		}
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return errSyntax
		}
		s.pos++
		if err := s.value(depth); err != nil {
			if d, ok := err.(*dupError); ok {
				d.segs = append(d.segs, keyText(plain, raw, name))
			}
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return errSyntax
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return errSyntax
		}
	}
}

// keyText is a key as encoding/json reads it: raw if plain, else decoded.
func keyText(plain bool, raw []byte, decoded string) string {
	if plain {
		return string(raw)
	}
	return decoded
}

// decodeKey decodes a quoted JSON string as encoding/json does.
func decodeKey(quoted []byte) (string, bool) {
	var v string
	err := json.Unmarshal(quoted, &v)
	return v, err == nil
}

func (s *keyScanner) array(depth int) error {
	s.pos++ // [
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		if err := s.value(depth); err != nil {
			if d, ok := err.(*dupError); ok {
				d.segs = append(d.segs, "["+strconv.Itoa(i)+"]")
			}
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return errSyntax
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return errSyntax
		}
	}
}

// foldKey maps a key to the form encoding/json matches fields by: Unicode
// simple case folding, close enough that two keys that may land on one
// field fold alike (K, the Kelvin sign, and k; ſ and s).
func foldKey(s string) string { return strings.ToLower(strings.ToUpper(s)) }
