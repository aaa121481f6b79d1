package rampart

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// jsonString is one string scanJSONStrings yields: its name and its value.
type jsonString struct{ name, value string }

func scanAll(data []byte) []jsonString {
	var got []jsonString
	scanJSONStrings(data, func(name, value string) bool {
		got = append(got, jsonString{name, value})
		return true
	})
	return got
}

// kv is a key and its string value as scanJSONStrings yields them.
func kv(k, v string) []jsonString { return []jsonString{{k, k}, {k, v}} }

func strs(pairs ...[]jsonString) []jsonString { return slices.Concat(pairs...) }

func TestScanJSONStrings(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []jsonString
	}{
		{"an object yields each key and its value", `{"a":"x","b":"y"}`, strs(kv("a", "x"), kv("b", "y"))},
		{"numbers, booleans and null yield only their keys", `{"n":1,"t":true,"z":null,"s":"v"}`,
			strs([]jsonString{{"n", "n"}, {"t", "t"}, {"z", "z"}}, kv("s", "v"))},
		{"nested objects name values by their own key", `{"user":{"name":"bob","role":"admin"}}`,
			strs([]jsonString{{"user", "user"}}, kv("name", "bob"), kv("role", "admin"))},
		{"array elements take the key of the array", `{"tags":["x","y"],"n":[1,"z"]}`,
			[]jsonString{{"tags", "tags"}, {"tags", "x"}, {"tags", "y"}, {"n", "n"}, {"n", "z"}}},
		{"a top-level array has no names", `["a",["b"]]`, []jsonString{{"", "a"}, {"", "b"}}},
		{"a top-level string is a value", `"just this"`, []jsonString{{"", "just this"}}},
		{"white space before the colon still makes a key", "{\"k\" \t\r\n: \"v\"}", kv("k", "v")},
		{"duplicate keys are all yielded", `{"a":"1","a":"2"}`, strs(kv("a", "1"), kv("a", "2"))},
		{"empty keys and values are yielded", `{"":""}`, kv("", "")},
		{"short escapes are decoded", `{"e":"a\"b\\c\/d\b\f\n\r\t"}`, kv("e", "a\"b\\c/d\b\f\n\r\t")},
		{"a unicode escape of a quote is a quote", `{"q":"O\u0027Brien"}`, kv("q", "O'Brien")},
		{"unicode escapes take either case", `["\u00e9\u00C9\u20AC"]`, []jsonString{{"", "éÉ€"}}},
		{"a unicode escape of NUL is NUL", `["a\u0000b"]`, []jsonString{{"", "a\x00b"}}},
		{"an escaped key is decoded before naming its value", `{"k\u0065y":"v"}`, kv("key", "v")},
		{"a surrogate pair is one rune", `["\ud83d\ude00"]`, []jsonString{{"", "😀"}}},
		{"a lone high surrogate is U+FFFD", `["a\ud83db"]`, []jsonString{{"", "a\uFFFDb"}}},
		{"a lone low surrogate is U+FFFD", `["\ude00"]`, []jsonString{{"", "\uFFFD"}}},
		{"a high surrogate before a letter escape is U+FFFD and the letter", `["\ud83d\u0041"]`, []jsonString{{"", "\uFFFDA"}}},
		{"two high surrogates before a low one are U+FFFD and a pair", `["\ud83d\ud83d\ude00"]`, []jsonString{{"", "\uFFFD😀"}}},
		{"a high surrogate at the end is U+FFFD", `["\ud83d"]`, []jsonString{{"", "\uFFFD"}}},
		{"UTF-8 is kept as it is", `["café ☕"]`, []jsonString{{"", "café ☕"}}},
		{"an invalid byte is U+FFFD", "[\"a\xffb\"]", []jsonString{{"", "a\uFFFDb"}}},
		{"each byte of a truncated sequence is U+FFFD", "[\"\xe2\x82\"]", []jsonString{{"", "\uFFFD\uFFFD"}}},
		{"an encoded surrogate is U+FFFD per byte", "[\"\xed\xa0\x80\"]", []jsonString{{"", "\uFFFD\uFFFD\uFFFD"}}},
		{"invalid UTF-8 with escapes is U+FFFD", "[\"\\n\xff\"]", []jsonString{{"", "\n\uFFFD"}}},

		// Malformed documents still yield what they hold.
		{"a truncated value is yielded", `{"a":"b`, kv("a", "b")},
		{"a value truncated after a backslash is yielded", `{"a":"b\`, kv("a", "b")},
		{"a truncated unicode escape is kept as text", `{"a":"\u00`, kv("a", `\u00`)},
		{"an invalid unicode escape is kept as text", `["\u12G4"]`, []jsonString{{"", `\u12G4`}}},
		{"an unknown escape keeps its backslash", `["a\qb"]`, []jsonString{{"", `a\qb`}}},
		{"an unknown escape before a multi-byte rune keeps the rune", `["\é"]`, []jsonString{{"", `\é`}}},
		{"a truncated key is yielded without a name", `{"a":"x","b`, strs(kv("a", "x"), []jsonString{{"a", "b"}})},
		{"single quotes are not strings", `{'a':'b'}`, nil},
		{"text outside strings is skipped", `not json "but" this`, []jsonString{{"", "but"}}},
		{"raw control characters are kept", "[\"a\tb\n\"]", []jsonString{{"", "a\tb\n"}}},
		{"a missing comma does not stop the scan", `{"a":"x" "b":"y"}`, strs(kv("a", "x"), kv("b", "y"))},
		{"an empty body yields nothing", ``, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := scanAll([]byte(c.body))
			if !slices.Equal(got, c.want) {
				t.Errorf("scanJSONStrings(%q)\n got %q\nwant %q", c.body, got, c.want)
			}
			if json.Valid([]byte(c.body)) {
				checkAgainstEncodingJSON(t, []byte(c.body), got)
			}
		})
	}
}

func TestScanJSONStringsStopsWhenAsked(t *testing.T) {
	n := 0
	scanJSONStrings([]byte(`{"a":"b","c":"d"}`), func(name, value string) bool {
		n++
		return n < 3
	})
	if n != 3 {
		t.Errorf("fn called %d times after asking to stop at the third", n)
	}
}

// TestScanJSONStringsMemoryIsLinear bounds what a body of many short escaped
// strings costs: each string must allocate about its own size, not the size
// of the rest of the body.
func TestScanJSONStringsMemoryIsLinear(t *testing.T) {
	const size = 256 << 10
	bodies := map[string][]byte{
		"escaped strings":         []byte("[" + strings.Repeat(`"\n",`, size/5) + `""]`),
		"invalid UTF-8":           []byte("[" + strings.Repeat("\"\xff\",", size/4) + `""]`),
		"one unterminated string": []byte(`"` + strings.Repeat(`\n`, size/2)),
		"unicode escapes":         []byte("[" + strings.Repeat(`"\u0027",`, size/9) + `""]`),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			scanJSONStrings(body, func(string, string) bool { return true })
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*size {
				t.Errorf("scanning %d bytes allocated %d bytes", len(body), alloc)
			}
		})
	}
}

// FuzzScanJSONStrings checks that any body can be scanned, that every string
// yielded is valid UTF-8, and that for a document encoding/json accepts the
// strings are exactly the keys and string values it decodes. The seed
// corpus is in testdata/fuzz/FuzzScanJSONStrings.
//
//	go test -run='^$' -fuzz=FuzzScanJSONStrings -fuzztime=60s .
func FuzzScanJSONStrings(f *testing.F) {
	f.Add([]byte(`{"q":"O\u0027Brien","list":["a",{"b":"c"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := scanAll(data)
		for _, s := range got {
			if !utf8.ValidString(s.value) || !utf8.ValidString(s.name) {
				t.Fatalf("scanJSONStrings(%q) yielded invalid UTF-8: %q", data, s)
			}
		}
		n := 0
		scanJSONStrings(data, func(string, string) bool { n++; return false })
		if n > 1 {
			t.Fatalf("scanJSONStrings(%q) went on after fn returned false", data)
		}
		if json.Valid(data) {
			checkAgainstEncodingJSON(t, data, got)
		}
	})
}

// checkAgainstEncodingJSON compares what scanJSONStrings yielded for a valid
// document with encoding/json. The decoder's tokens give the exact sequence,
// duplicate keys included; json.Unmarshal into any gives the same strings,
// less the duplicate keys and the values they overwrite.
func checkAgainstEncodingJSON(t *testing.T, data []byte, got []jsonString) {
	t.Helper()
	want, names, duplicates, err := jsonTokens(data)
	if err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	values := make([]string, len(got))
	for i, s := range got {
		values[i] = s.value
	}
	if !slices.Equal(values, want) {
		t.Fatalf("scanJSONStrings(%q) yielded %q, encoding/json %q", data, values, want)
	}
	for i, name := range names {
		if name != nil && got[i].name != *name {
			t.Fatalf("scanJSONStrings(%q): string %d %q named %q, want %q", data, i, got[i].value, got[i].name, *name)
		}
	}

	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("json.Unmarshal: %v", err)
	}
	unmarshaled := map[string]int{}
	walkJSON(v, func(s string) { unmarshaled[s]++ })
	scanned := map[string]int{}
	for _, s := range want {
		scanned[s]++
	}
	for s, n := range unmarshaled {
		if scanned[s] < n {
			t.Fatalf("scanJSONStrings(%q) yielded %q %d times, json.Unmarshal has it %d times", data, s, scanned[s], n)
		}
	}
	if !duplicates && fmt.Sprint(unmarshaled) != fmt.Sprint(scanned) {
		t.Fatalf("scanJSONStrings(%q) yielded %v, json.Unmarshal has %v", data, scanned, unmarshaled)
	}
}

// jsonTokens returns the string tokens of a valid document in order, with
// the name each must have: its own text for a key, the key for a value
// directly in an object, nil where the scanner's name is not specified.
func jsonTokens(data []byte) (values []string, names []*string, duplicates bool, err error) {
	type frame struct {
		object  bool
		wantKey bool
		key     string
		keys    map[string]bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return values, names, duplicates, nil
		}
		if err != nil {
			return nil, nil, false, err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok {
			values = append(values, s)
			switch {
			case top != nil && top.object && top.wantKey:
				top.key, top.wantKey = s, false
				duplicates = duplicates || top.keys[s]
				top.keys[s] = true
				names = append(names, &s)
			case top != nil && top.object:
				key := top.key
				names = append(names, &key)
				top.wantKey = true
			default:
				names = append(names, nil)
			}
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, &frame{object: tok == json.Delim('{'), wantKey: true, keys: map[string]bool{}})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				top = stack[len(stack)-1]
			} else {
				top = nil
			}
		}
		if top != nil && top.object {
			top.wantKey = true // a value other than a string ends
		}
	}
}

func walkJSON(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case []any:
		for _, e := range v {
			walkJSON(e, fn)
		}
	case map[string]any:
		for k, e := range v {
			fn(k)
			walkJSON(e, fn)
		}
	}
}
