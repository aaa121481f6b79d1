package rampart

import (
	"encoding/base64"
	"hash/maphash"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Caps on what one request contributes. They are far above what ordinary
// requests carry (see doc.go for the figures) and keep the cost of a hostile
// request bounded: a request that reaches one is incomplete, and a guarded
// call made for it fails closed (see CheckInputsComplete).
const (
	// DefaultMaxInputs is the number of distinct input values one request
	// contributes when Config.MaxInputs is zero.
	DefaultMaxInputs = 16384
	// maxDecodeDepth bounds how many decodings lead to an input: a JSON
	// document in a string of the body is one, base64 in it two, and so on.
	// A JSON document found deeper is not read and makes the request
	// incomplete.
	maxDecodeDepth = 3
	// minBase64 is the shortest value decoded as base64: 8 characters hold
	// 6 bytes, less than any payload worth hiding and more than most words.
	minBase64 = 8
	// dedupAfter is how many inputs are recorded before identical values
	// are recorded once: small requests skip the set, large ones (many
	// objects with the same keys) do not reach the cap on repeats.
	dedupAfter = 256
)

var dedupSeed = maphash.MakeSeed()

// collector gathers a request's inputs in request order, decoding what
// ordinary code decodes, until the cap.
type collector struct {
	ins       []Input
	max       int
	seen      map[uint64]int8  // hashes of the values, and the least depth each was met at; nil until dedupAfter inputs
	early     [dedupAfter]int8 // the depths of the first dedupAfter inputs, until seen exists
	truncated string           // why not every input was recorded, "" if all were
}

// add records one value and what decodes from it. It returns false once the
// cap is reached, to stop the caller's scan.
func (c *collector) add(src Source, name, value string, depth int) bool {
	// Every non-empty value is recorded, one byte included: each guard
	// decides which lengths can exploit its call (the SQL guard ignores
	// one-byte inputs; a one-character host such as "0" reaches a server).
	if value == "" {
		return true
	}
	var h uint64
	if c.seen != nil {
		// A 64-bit hash under a per-process random seed: a collision, which
		// would drop a value, cannot be aimed at.
		h = maphash.String(dedupSeed, value)
		if d, dup := c.seen[h]; dup {
			if int(d) <= depth {
				return true
			}
			// Met deeper first, where fewer decodings were left: what it
			// decodes to is read again from here. Depths only decrease,
			// so a value is read at most maxDecodeDepth+1 times.
			c.seen[h] = int8(depth)
			return c.decode(src, name, value, depth)
		}
	}
	if len(c.ins) >= c.max {
		c.truncated = "more input values than the cap"
		return false
	}
	c.ins = append(c.ins, Input{Source: src, Name: name, Value: value})
	if c.seen != nil {
		c.seen[h] = int8(depth)
	} else {
		c.early[len(c.ins)-1] = int8(depth)
		if len(c.ins) == dedupAfter {
			c.seen = make(map[uint64]int8, 4*dedupAfter)
			for i, in := range c.ins {
				h := maphash.String(dedupSeed, in.Value)
				if d, ok := c.seen[h]; !ok || c.early[i] < d {
					c.seen[h] = c.early[i]
				}
			}
		}
	}
	return c.decode(src, name, value, depth)
}

// decode records what value, met at depth, decodes to.
func (c *collector) decode(src Source, name, value string, depth int) bool {
	if len(value) < 2 {
		return true
	}
	if looksJSON(value) {
		if depth >= maxDecodeDepth {
			c.truncated = "JSON nested deeper than the cap"
			return false
		}
		return c.json(src, value, depth+1)
	}
	if depth < maxDecodeDepth {
		if d, ok := jsonStringValue(value); ok {
			return c.add(src, name, d, depth+1)
		}
		if d, ok := decodeBase64Text(value); ok {
			return c.add(src, name+" (base64)", d, depth+1)
		}
	}
	return true
}

// jsonStringValue decodes s when it is one JSON string ("...", white space
// around it allowed), as a value encoded twice is: json.Unmarshal into a
// string gives the handler what is between the quotes, unescaped.
func jsonStringValue(s string) (string, bool) {
	i, j := 0, len(s)-1
	for i < j && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	for j > i && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r') {
		j--
	}
	if j-i < 1 || s[i] != '"' || s[j] != '"' {
		return "", false
	}
	d, end := decodeJSONString(unsafe.Slice(unsafe.StringData(s), j+1), i+1)
	if end != j+1 || d == "" {
		return "", false // a quote inside: not one string
	}
	return d, true
}

// json records the strings of a JSON document, keys and values.
func (c *collector) json(src Source, doc string, depth int) bool {
	ok := true
	scanJSONStrings(unsafe.Slice(unsafe.StringData(doc), len(doc)), func(name, value string) bool {
		ok = c.add(src, name, value, depth)
		return ok
	})
	return ok
}

// query records the keys and values of a query string or urlencoded form.
func (c *collector) query(src Source, s string) bool {
	ok := true
	scanQuery(s, func(k, v string) bool {
		ok = c.add(src, k, k, 0) && c.add(src, k, v, 0)
		return ok
	})
	return ok
}

// looksJSON reports whether s may be a JSON object or array, the documents
// applications unmarshal from a string.
func looksJSON(s string) bool {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	if i >= len(s) || (s[i] != '{' && s[i] != '[') {
		return false
	}
	j := len(s) - 1
	for j > i && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r') {
		j--
	}
	// A truncated document is read too: a lenient parser could use it.
	return j > i && (s[j] == '}' || s[j] == ']' || strings.IndexByte(s[i:], '"') >= 0)
}

// decodeBase64Text decodes s when it is base64 or base64url, padded or not,
// of at least minBase64 characters, and what it holds is printable text
// (valid UTF-8 without control characters other than tab and newlines).
// Binary results, such as session ids or hashes, are not inputs a query
// could contain.
func decodeBase64Text(s string) (string, bool) {
	if len(s) < minBase64 {
		return "", false
	}
	// encoding/base64 skips line breaks wherever they are (MIME wraps
	// lines at 76 characters), so they must not hide a value.
	if strings.IndexByte(s, '\n') >= 0 || strings.IndexByte(s, '\r') >= 0 {
		s = strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, s)
		if len(s) < minBase64 {
			return "", false
		}
	}
	std, url, space := false, false, false
	body := strings.TrimRight(s, "=")
	pad := len(s) - len(body)
	if pad > 2 || (pad > 0 && len(s)%4 != 0) || len(body)%4 == 1 {
		return "", false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '+' || c == '/':
			std = true
		case c == '-' || c == '_':
			url = true
		case c == ' ':
			// A '+' that query decoding turned into a space: handlers
			// put it back (strings.ReplaceAll(v, " ", "+")) to decode.
			std, space = true, true
		default:
			return "", false
		}
	}
	if std && url {
		return "", false
	}
	if space {
		// Text with spaces is rarely base64: its first bytes, decoded on
		// the stack, tell before the value is copied.
		var tmp [64]byte
		n := copy(tmp[:], body)
		for i := range n {
			if tmp[i] == ' ' {
				tmp[i] = '+'
			}
		}
		var head [48]byte
		k, err := base64.RawStdEncoding.Decode(head[:], tmp[:n])
		if err != nil || !printablePrefix(head[:k], n == len(body)) {
			return "", false
		}
		body = strings.ReplaceAll(body, " ", "+")
	}
	enc := base64.RawStdEncoding
	if url {
		enc = base64.RawURLEncoding
	}
	src := unsafe.Slice(unsafe.StringData(body), len(body))
	// Most candidates are binary (ids, hashes, padding): the first bytes
	// tell, before the whole value is decoded.
	var head [48]byte
	if len(body) > 64 {
		if n, err := enc.Decode(head[:], src[:64]); err != nil || !controlFree(head[:n]) {
			return "", false
		}
	}
	out := make([]byte, enc.DecodedLen(len(body)))
	n, err := enc.Decode(out, src)
	if err != nil || n == 0 || !printable(out[:n]) {
		return "", false
	}
	return unsafe.String(unsafe.SliceData(out), n), true
}

// printablePrefix reports whether b, the decoded start of a value (all of
// it when whole), is printable text, a UTF-8 sequence cut at its end aside.
func printablePrefix(b []byte, whole bool) bool {
	if whole {
		return printable(b)
	}
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				b = b[:i]
			}
			break
		}
	}
	return printable(b)
}

func printable(b []byte) bool {
	return utf8.Valid(b) && controlFree(b)
}

// controlFree reports whether b holds no control character but tab and
// newlines; it may end inside a UTF-8 sequence.
func controlFree(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return false
		}
	}
	return true
}
