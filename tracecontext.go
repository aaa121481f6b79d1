package rampart

import (
	"context"
	"encoding/hex"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// The W3C Trace Context headers (https://www.w3.org/TR/trace-context/),
// read and written as OpenTelemetry's propagation.TraceContext does, so
// that Rampart's traces join the application's own. The span context lives
// in OpenTelemetry's trace package, which an application that traces
// already links; the propagation package, and the baggage and global error
// handler it brings, stay out of the SDK's graph. Baggage is never read:
// any client can write it. tracecontext_test.go holds this code to
// propagation.TraceContext's answers.
const (
	traceparentHeader = "traceparent"
	tracestateHeader  = "tracestate"
)

// injectTrace sets the traceparent and tracestate of ctx's span, if it has
// a valid one, in h.
func injectTrace(ctx context.Context, h http.Header) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	if ts := sc.TraceState().String(); ts != "" {
		h.Set(tracestateHeader, ts)
	}
	// Only the flags the specification defines: sampled and random.
	flags := sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom)
	traceID, spanID := sc.TraceID(), sc.SpanID()
	var b [2 + 1 + 32 + 1 + 16 + 1 + 2]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], traceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], spanID[:])
	b[52] = '-'
	hex.Encode(b[53:], []byte{byte(flags)})
	h.Set(traceparentHeader, string(b[:]))
}

// extractTrace returns the remote span context that h's traceparent and
// tracestate name, and false if there is no valid traceparent. A
// tracestate that does not parse is dropped without affecting the
// traceparent, as the specification requires.
func extractTrace(h http.Header) (trace.SpanContext, bool) {
	tp := h.Get(traceparentHeader)
	if tp == "" {
		return trace.SpanContext{}, false
	}
	var version, flags [1]byte
	var scc trace.SpanContextConfig
	if !traceField(version[:], &tp, 2) || version[0] == 0xff { // ff is never a valid version
		return trace.SpanContext{}, false
	}
	if !traceField(scc.TraceID[:], &tp, 32) || !traceField(scc.SpanID[:], &tp, 16) || !traceField(flags[:], &tp, 2) {
		return trace.SpanContext{}, false
	}
	// Version 00 has no further fields and no other flag bits; a later
	// version may add both, and is read as far as 00 goes.
	if version[0] == 0 && (tp != "" || flags[0] > 3) {
		return trace.SpanContext{}, false
	}
	scc.TraceFlags = trace.TraceFlags(flags[0]) & (trace.FlagsSampled | trace.FlagsRandom)
	scc.TraceState, _ = trace.ParseTraceState(h.Get(tracestateHeader))
	scc.Remote = true
	sc := trace.NewSpanContext(scc)
	return sc, sc.IsValid() // all-zero IDs are invalid
}

// traceField decodes the next dash-separated field of *s, which must be n
// lower-case hex digits, into dst, and advances *s past it.
func traceField(dst []byte, s *string, n int) bool {
	field, rest, _ := strings.Cut(*s, "-")
	*s = rest
	if len(field) != n {
		return false
	}
	for i := 0; i < n; i += 2 {
		hi, lo := lowerHex(field[i]), lowerHex(field[i+1])
		if hi > 0xf || lo > 0xf {
			return false
		}
		dst[i/2] = hi<<4 | lo
	}
	return true
}

// lowerHex is the value of a lower-case hex digit, 0xff for any other byte
// (upper case included: the specification forbids it).
func lowerHex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return 0xff
}
