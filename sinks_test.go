package rampart_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/rampartsec/rampart"
)

// reportOne reports one SQL injection finding through an agent of service
// built with cfg and closes it, so that the event is delivered.
func reportOne(t *testing.T, service string, cfg rampart.Config) {
	t.Helper()
	cfg.Service, cfg.Mode = service, rampart.ModeMonitor
	agent, err := rampart.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := rampart.WithUntrusted(context.Background(), "job", "1 OR 1=1")
	if err := agent.Report(ctx, rampart.Finding{Kind: rampart.KindSQLInjection, Sink: "database/sql", Detail: "SELECT 1 OR 1=1"}); err != nil {
		t.Fatal(err)
	}
	if err := agent.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// loggedEvents decodes the JSON lines of buf whose message is the
// SlogSink's and whose event names service (slog.Default may also hear
// from what other tests left running).
func loggedEvents(t *testing.T, buf *bytes.Buffer, service string) []map[string]any {
	t.Helper()
	var events []map[string]any
	dec := json.NewDecoder(buf)
	for dec.More() {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		if line["msg"] == "rampart security event" {
			if line["level"] != "WARN" {
				t.Errorf("event logged at %v", line["level"])
			}
			if ev := line["event"].(map[string]any); ev["service"] == service {
				events = append(events, ev)
			}
		}
	}
	return events
}

func TestSlogSinkLogsEachEventAsStructuredAttributes(t *testing.T) {
	var buf bytes.Buffer
	reportOne(t, "orders", rampart.Config{Sinks: []rampart.Sink{rampart.NewSlogSink(slog.New(slog.NewJSONHandler(&buf, nil)))}})
	events := loggedEvents(t, &buf, "orders")
	if len(events) != 1 || events[0]["kind"] != string(rampart.KindSQLInjection) {
		t.Fatalf("logged %v", events)
	}
}

// Without a logger, the agent's messages and, without sinks, its events go
// to slog.Default: the application decides where, and in what format.
func TestAgentLogsThroughTheDefaultLoggerWithoutOne(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	reportOne(t, "default-logger-test", rampart.Config{})
	if events := loggedEvents(t, &buf, "default-logger-test"); len(events) != 1 || events[0]["kind"] != string(rampart.KindSQLInjection) {
		t.Fatalf("slog.Default got %v", events)
	}

	buf.Reset()
	var sink rampart.Sink = rampart.NewSlogSink(nil)
	if err := sink.WriteEvents(context.Background(), []rampart.Event{{Kind: rampart.KindCommandInjection, Service: "nil-logger-test"}}); err != nil {
		t.Fatal(err)
	}
	if events := loggedEvents(t, &buf, "nil-logger-test"); len(events) != 1 || events[0]["kind"] != string(rampart.KindCommandInjection) {
		t.Fatalf("NewSlogSink(nil) logged %v", events)
	}
}
