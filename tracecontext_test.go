package rampart

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The SDK reads and writes W3C trace context itself, to keep
// OpenTelemetry's propagation package out of every guard's import graph;
// these tests hold it to that package's answers, which were the SDK's
// before.

var traceContextCases = []struct{ name, traceparent, tracestate string }{
	{"a sampled trace", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""},
	{"an unsampled trace with a tracestate", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
	{"the random flag", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", ""},
	{"a reserved flag in version 00", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", ""},
	{"a later version with more fields", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-holds", ""},
	{"version 00 with more fields", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", ""},
	{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""},
	{"upper-case hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", ""},
	{"an all-zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
	{"an all-zero span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ""},
	{"a short trace id", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", ""},
	{"a tracestate that does not parse", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "not a list member"},
	{"no traceparent", "", "rojo=00f067aa0ba902b7"},
	{"garbage", "hello", ""},
}

// sameAsOpenTelemetry fails t unless extractTrace and injectTrace give
// what propagation.TraceContext gives for the headers.
func sameAsOpenTelemetry(t *testing.T, traceparent, tracestate string) {
	t.Helper()
	h := http.Header{}
	if traceparent != "" {
		h.Set(traceparentHeader, traceparent)
	}
	if tracestate != "" {
		h.Set(tracestateHeader, tracestate)
	}
	want := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h)))
	got, ok := extractTrace(h)
	if ok != want.IsValid() || (ok && !got.Equal(want)) {
		t.Fatalf("extract(%q, %q) = %v, %v; OpenTelemetry: %v", traceparent, tracestate, got, ok, want)
	}
	if !ok {
		return
	}
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), got)
	ours, theirs := http.Header{}, http.Header{}
	injectTrace(ctx, ours)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(theirs))
	for _, k := range []string{traceparentHeader, tracestateHeader} {
		if ours.Get(k) != theirs.Get(k) || len(ours.Values(k)) != len(theirs.Values(k)) {
			t.Fatalf("inject after extract(%q, %q): %s %q; OpenTelemetry: %q", traceparent, tracestate, k, ours.Values(k), theirs.Values(k))
		}
	}
}

func TestTraceContextIsReadAndWrittenAsOpenTelemetryDoes(t *testing.T) {
	for _, c := range traceContextCases {
		t.Run(c.name, func(t *testing.T) { sameAsOpenTelemetry(t, c.traceparent, c.tracestate) })
	}
}

func TestNoTraceContextIsWrittenWithoutASpan(t *testing.T) {
	h := http.Header{}
	injectTrace(context.Background(), h)
	if len(h) != 0 {
		t.Fatalf("headers without a span: %v", h)
	}
}

func FuzzTraceContext(f *testing.F) {
	for _, c := range traceContextCases {
		f.Add(c.traceparent, c.tracestate)
	}
	f.Fuzz(func(t *testing.T, traceparent, tracestate string) {
		sameAsOpenTelemetry(t, traceparent, tracestate)
	})
}

func TestOnlyTheDefinedFlagsAreWritten(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: 0xff,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	ours, theirs := http.Header{}, http.Header{}
	injectTrace(ctx, ours)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(theirs))
	const want = "00-01020300000000000000000000000000-0405060000000000-03"
	if got := ours.Get(traceparentHeader); got != want || theirs.Get(traceparentHeader) != want {
		t.Fatalf("traceparent %q, OpenTelemetry %q, want %q", got, theirs.Get(traceparentHeader), want)
	}
}

// BenchmarkTraceContext reads the trace context of an incoming request and
// writes it on an outbound one, as a hop does, beside OpenTelemetry's
// propagator doing the same.
func BenchmarkTraceContext(b *testing.B) {
	in := http.Header{}
	in.Set(traceparentHeader, traceContextCases[1].traceparent)
	in.Set(tracestateHeader, traceContextCases[1].tracestate)
	b.Run("rampart", func(b *testing.B) {
		for b.Loop() {
			sc, _ := extractTrace(in)
			out := http.Header{}
			injectTrace(trace.ContextWithRemoteSpanContext(context.Background(), sc), out)
		}
	})
	b.Run("opentelemetry", func(b *testing.B) {
		tc := propagation.TraceContext{}
		for b.Loop() {
			ctx := tc.Extract(context.Background(), propagation.HeaderCarrier(in))
			out := http.Header{}
			tc.Inject(ctx, propagation.HeaderCarrier(out))
		}
	})
}
