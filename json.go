package rampart

import (
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// scanJSONStrings calls fn with every string of a JSON document, keys and
// values alike, decoded exactly as encoding/json decodes them (escapes,
// surrogate pairs, invalid UTF-8 replaced by U+FFFD). A value's name is the
// key it belongs to, a key's name is the key itself. It needs no valid
// document: a truncated or malformed body still yields the strings it holds,
// which is what an application that parses it leniently could see. It stops
// when fn returns false. It never recurses, so nesting depth costs nothing.
//
// A string that needs no decoding shares data's memory: data must not
// change afterwards (a captured body never does).
func scanJSONStrings(data []byte, fn func(name, value string) bool) {
	var key string
	for i := 0; i < len(data); {
		if data[i] != '"' {
			i++
			continue
		}
		s, next := decodeJSONString(data, i+1)
		i = next
		j := i
		for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
			j++
		}
		if j < len(data) && data[j] == ':' {
			key = s
		}
		if !fn(key, s) {
			return
		}
	}
}

// decodeJSONString decodes the string whose content starts at data[i] and
// returns it with the index just past its closing quote (or len(data) when it
// is unterminated).
func decodeJSONString(data []byte, i int) (string, int) {
	// Find the end first: the first quote not after a backslash.
	start := i
	escaped := false
	for i < len(data) && data[i] != '"' {
		if data[i] == '\\' {
			escaped = true
			i++
		}
		i++
	}
	end := min(i, len(data))
	// Fast path: no escapes and valid UTF-8, the string is a plain copy.
	if !escaped && end < len(data) && utf8.Valid(data[start:end]) {
		return unsafe.String(unsafe.SliceData(data[start:end]), end-start), end + 1
	}
	i = start
	// Sized by this string, not by the rest of the body: a body of many
	// short strings must cost linear memory.
	out := make([]byte, 0, end-start)
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			return string(out), i + 1
		case c == '\\':
			if i+1 >= len(data) {
				return string(out), len(data)
			}
			e := data[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(data, i)
				if !ok {
					// encoding/json rejects the document; keep the text so
					// the input is still seen.
					out = append(out, '\\', 'u')
					continue
				}
				i += 4
				if utf16.IsSurrogate(r) {
					if r2, ok := hex4(data, i+2); ok && i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							i += 6
							out = utf8.AppendRune(out, dec)
							continue
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
			default:
				// encoding/json rejects the document; keep the backslash
				// and decode what follows it as text.
				out = append(out, '\\')
				i--
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, data[i:i+size]...)
			}
			i += size
		}
	}
	return string(out), len(data)
}

func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}
