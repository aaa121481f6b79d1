package control

import (
	"encoding/json"
	"errors"
	"testing"
)

// countKeys counts the keys of every object in a decoded JSON value.
func countKeys(v any) int {
	n := 0
	switch v := v.(type) {
	case map[string]any:
		n += len(v)
		for _, e := range v {
			n += countKeys(e)
		}
	case []any:
		for _, e := range v {
			n += countKeys(e)
		}
	}
	return n
}

// FuzzDecodeStrict checks the strict decoder against encoding/json: it
// accepts only valid JSON; what it refuses that encoding/json accepts is a
// duplicate key or deep nesting, with a 400; and what it accepts has no key
// that encoding/json would have collapsed into another.
func FuzzDecodeStrict(f *testing.F) {
	for _, seed := range []string{
		`{"service":"evil","service":"gateway"}`, `{"service":"evil","SERVICE":"gateway"}`,
		`{"kind":"a","\u212Aind":"b"}`, `{"a":{"b":1,"b":2}}`, `[{"a":1},{"a":1}]`, `{"a":[{"x":1,"y":{"x":2}}],"x":3}`,
		`{"events":[{"id":"e1","data":{"k":"v"}}]}`, `{}`, `[]`, `null`, `1`, `"s"`, `{"a":1}{"a":2}`, `{"a":1,}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
		"{\"\xff\":1,\"\xfe\":2}", `{"a":"\ud800","a":"x"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		err := decodeStrict(data, &v)
		var std any
		stdErr := json.Unmarshal(data, &std)
		if err == nil {
			if stdErr != nil {
				t.Fatalf("accepted %q, which encoding/json refuses: %v", data, stdErr)
			}
			keys, scanErr := scanKeys(data)
			if scanErr != nil {
				t.Fatalf("decodeStrict accepted %q, scanKeys refuses it: %v", data, scanErr)
			}
			if got := countKeys(v); got != keys {
				t.Fatalf("accepted %q with %d keys, but its decoded form has %d: keys were collapsed", data, keys, got)
			}
			return
		}
		ae, ok := errors.AsType[*apiError](err)
		if !ok || ae.status != 400 || ae.msg == "" {
			t.Fatalf("error for %q is %v (%T), want a 400 apiError", data, err, err)
		}
		if stdErr == nil && ae.code != CodeDuplicateKey && ae.code != "invalid" {
			t.Fatalf("refused valid JSON %q with code %q", data, ae.code)
		}
	})
}

func TestScanKeysNamesThePathOfTheDuplicate(t *testing.T) {
	for body, want := range map[string]string{
		`{"a":{"b":1,"b":2}}`:             "a.b",
		`{"a":[{"x":1},{"x":1,"x":2}]}`:   "a[1].x",
		`[{"a":1},[{"b":1,"B":2}]]`:       "[1][0].B",
		`{"a":[[1],{"c":{"d":1,"d":1}}]}`: "a[1].c.d",
	} {
		_, err := scanKeys([]byte(body))
		ae, ok := errors.AsType[*apiError](err)
		if !ok || ae.code != CodeDuplicateKey || ae.field != want {
			t.Errorf("scanKeys(%s) = %v, want a duplicate at %q", body, err, want)
		}
	}
}
