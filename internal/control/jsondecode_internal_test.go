package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// BenchmarkDecodeEventBatch decodes a batch of 100 events, each with a
// nested JSON body, as POST /v1/events does: strictly (duplicate keys and
// depth checked first), and with encoding/json alone as before.
func BenchmarkDecodeEventBatch(b *testing.B) {
	var batch strings.Builder
	batch.WriteString(`{"events":[`)
	for i := range 100 {
		if i > 0 {
			batch.WriteByte(',')
		}
		fmt.Fprintf(&batch, `{"id":"ev-%04d","time":"2026-01-02T03:04:05Z","kind":"sql_injection","action":"blocked","service":"shop","route":"GET /items",`+
			`"actor_ip":"203.0.113.7","actor_user":"alice","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736",`+
			`"data":{"kind":"sql_injection","input":{"name":"q","source":"query","value":"1 OR 1=1"},"query":"SELECT * FROM items WHERE id = 1 OR 1=1","stack":["main.handler","net/http.HandlerFunc.ServeHTTP"]}}`, i)
	}
	batch.WriteString(`]}`)
	data := []byte(batch.String())
	b.Run("strict", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var v EventBatch
			if err := decodeStrict(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var v EventBatch
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
