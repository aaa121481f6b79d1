package control_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Every service asks for the policy as it starts; before anyone applied one
// the answer is a 404, which is normal and was logged at info level once per
// service (319 lines per replica in the 1,000-service load test). It is
// still answered as before, and logged at debug level only; a 404 for a
// version that does not exist is still logged.
func TestNoPolicyYetIsAnsweredButNotLoggedAsAFailure(t *testing.T) {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ca.NewKeySet(ca.KeySetConfig{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	token, hash := control.NewAdminToken()
	h, err := control.New(control.Config{Store: s, CA: c, KeySet: ks, AdminTokenHash: hash,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		if _, err := b.ReadFrom(resp.Body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b.String()
	}
	for range 3 {
		if status, body := get("/v1/policy"); status != http.StatusNotFound || !strings.Contains(body, `"request_id"`) {
			t.Fatalf("GET /v1/policy with none applied = %d %s, want 404 with a request id", status, body)
		}
	}
	if n := strings.Count(logs.String(), "request failed"); n != 0 {
		t.Fatalf("no policy yet was logged %d times at info level:\n%s", n, logs.String())
	}
	if status, _ := get("/v1/policy?version=7"); status != http.StatusNotFound {
		t.Fatalf("GET /v1/policy?version=7 = %d, want 404", status)
	}
	if status, _ := get("/v1/policy?version=x"); status != http.StatusBadRequest {
		t.Fatalf("GET /v1/policy?version=x = %d, want 400", status)
	}
	if n := strings.Count(logs.String(), "request failed"); n != 2 {
		t.Fatalf("a missing version and a bad one were logged %d times, want 2:\n%s", n, logs.String())
	}
}
