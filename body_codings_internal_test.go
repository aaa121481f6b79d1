package rampart

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Nested gzip layers are decoded up to maxContentCodings; a body that lists
// more is not decoded at all (and so fails closed when the handler reads
// it), since every layer may inflate up to the capture limit.
func TestNestedContentCodingsAreBounded(t *testing.T) {
	const payload = `{"name":"x' OR '1'='1"}`
	for layers := 1; layers <= maxContentCodings+2; layers++ {
		body := []byte(payload)
		for range layers {
			body = gzipped(t, body)
		}
		got, how := decodeContent([]string{strings.Repeat("gzip, ", layers-1) + "gzip"}, body, 1<<20)
		switch {
		case layers <= maxContentCodings && (how != codingDecoded || string(got) != payload):
			t.Errorf("%d layers: coding %d, body %q; want it decoded", layers, how, got)
		case layers > maxContentCodings && how != codingUnknown:
			t.Errorf("%d layers: coding %d, want codingUnknown (not decoded)", layers, how)
		}
	}
}
