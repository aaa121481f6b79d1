package identity_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/controltest"
)

// recorder is a slog.Handler that keeps the records it is given.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

// waitFor polls until a record at level with msg in its message arrives,
// and returns it.
func (r *recorder) waitFor(t *testing.T, level slog.Level, msg string) slog.Record {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r.mu.Lock()
		for _, rec := range r.records {
			if rec.Level == level && strings.Contains(rec.Message, msg) {
				r.mu.Unlock()
				return rec
			}
		}
		var got []string
		for _, rec := range r.records {
			got = append(got, rec.Level.String()+" "+rec.Message)
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s %q logged in 60 s; got %q", level, msg, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func attr(rec slog.Record, key string) string {
	var v string
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// joinAndLoseTheControlPlane joins as orders with short-lived SVIDs and
// stops the control plane, so that every renewal fails from then on.
func joinAndLoseTheControlPlane(t *testing.T, logger *slog.Logger) {
	t.Helper()
	// 5 s: under -race beside busy loops, joining took longer than 2 s
	// and the SVID had expired before Join could verify it.
	cp := controltest.Start(t, controltest.Config{SVIDTTL: 5 * time.Second})
	src, err := identity.Join(t.Context(), identity.JoinConfig{
		ControlPlane: cp.URL, ControlPlaneBundle: cp.BundlePEM, Service: "orders", Token: cp.JoinToken(t, "orders"),
		RetryInterval: 50 * time.Millisecond, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	cp.Stop()
}

// A service whose SVID is about to expire, and then expired, must be told
// through the logger it configured: it is the last warning before peers
// refuse it.
func TestExpiryWarningsReachTheConfiguredLogger(t *testing.T) {
	rec := &recorder{}
	joinAndLoseTheControlPlane(t, slog.New(rec))
	expired := rec.waitFor(t, slog.LevelError, "SVID expired and could not be renewed")
	if attr(expired, "service") != "orders" || attr(expired, "err") == "" {
		t.Errorf("the error does not say which service, or why: %v", expired)
	}
	// The warning before expiry is logged when a failed renewal falls in
	// the last quarter of the SVID's life; on a busy machine the retries
	// (doubling from 50 ms) may step over that half second, so it is
	// checked when it came, and the error above is what must come.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.records {
		if r.Level == slog.LevelWarn && strings.Contains(r.Message, "SVID expires soon and could not be renewed") &&
			(attr(r, "service") != "orders" || attr(r, "err") == "") {
			t.Errorf("the warning does not say which service, or why: %v", r)
		}
	}
}

// Without JoinConfig.Logger the warnings go to slog.Default, the
// application's choice, rather than nowhere.
func TestExpiryWarningsReachTheDefaultLoggerWithoutOne(t *testing.T) {
	rec := &recorder{}
	prev := slog.Default()
	slog.SetDefault(slog.New(rec))
	t.Cleanup(func() { slog.SetDefault(prev) })
	joinAndLoseTheControlPlane(t, nil)
	rec.waitFor(t, slog.LevelError, "SVID expired and could not be renewed")
}
