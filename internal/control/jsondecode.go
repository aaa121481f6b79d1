package control

import (
	"bytes"
	"encoding/json"
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

// jsonFrame is an object or array being scanned.
type jsonFrame struct {
	object  bool
	keys    map[string]struct{} // folded keys seen, for an object
	wantKey bool                // an object's next token is a key
	key     string              // the object's current key, for error paths
	index   int                 // the array's next element
}

// scanKeys checks the first JSON value in data for duplicate keys and depth,
// and returns how many keys it holds. A syntax error is left for the
// decoder to report, with its own message, so scanKeys returns nil on it.
func scanKeys(data []byte) (keys int, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // no float parsing: only the structure matters here
	var stack []jsonFrame
	for {
		tok, err := dec.Token()
		if err != nil {
			return keys, nil // syntax (or end of input): the decoder says which
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return keys, nil
				}
				valueDone(&stack[len(stack)-1])
				continue
			}
			name, _ := tok.(string)
			folded := foldKey(name)
			if _, dup := top.keys[folded]; dup {
				path := jsonPath(stack, name)
				return keys, &apiError{status: http.StatusBadRequest, code: CodeDuplicateKey, field: path,
					msg: fmt.Sprintf("malformed JSON: key %s appears twice in one object (keys are compared without regard to case)", strconvQuote(path))}
			}
			top.keys[folded] = struct{}{}
			top.key = name
			top.wantKey = false
			keys++
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= MaxJSONDepth {
				return keys, badRequest(jsonPath(stack, ""), fmt.Sprintf("malformed JSON: nested deeper than %d levels", MaxJSONDepth))
			}
			f := jsonFrame{object: tok == json.Delim('{')}
			if f.object {
				f.keys = map[string]struct{}{}
				f.wantKey = true
			}
			stack = append(stack, f)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return keys, nil
			}
			valueDone(&stack[len(stack)-1])
		default: // a scalar
			if top == nil {
				return keys, nil
			}
			valueDone(top)
		}
	}
}

// valueDone moves f past one value: an object then expects a key, an
// array its next element.
func valueDone(f *jsonFrame) {
	if f.object {
		f.wantKey = true
	} else {
		f.index++
	}
}

// jsonPath names a position: events[2].data.user, with last the key at it
// ("" for the position of the innermost frame itself).
func jsonPath(stack []jsonFrame, last string) string {
	var b strings.Builder
	for i, f := range stack {
		inner := i == len(stack)-1
		switch {
		case f.object && inner:
			// the key named by last
		case f.object:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		default:
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	if last != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(last)
	}
	return b.String()
}

// foldKey maps a key to the form encoding/json matches fields by: Unicode
// simple case folding, close enough that two keys that may land on one
// field fold alike (K, the Kelvin sign, and k; ſ and s).
func foldKey(s string) string { return strings.ToLower(strings.ToUpper(s)) }
