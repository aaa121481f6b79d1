package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

// env is a control-plane API on 127.0.0.1 over a SQLite store in a
// temporary directory.
type env struct {
	url   string
	admin string
	store store.Store
	ca    *ca.CA
	h     http.Handler
}

func newEnv(t *testing.T) *env { return newBenchEnv(t) }

func newBenchEnv(t testing.TB) *env {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ca.NewKeySet(ca.KeySetConfig{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	token, hash := control.NewAdminToken()
	h, err := control.New(control.Config{
		Store: s, CA: c, KeySet: ks, AdminTokenHash: hash,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return &env{url: srv.URL, admin: token, store: s, ca: c, h: h}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the admin token and a JSON body (a string is sent
// as is, anything else marshalled).
func (e *env) do(t testing.TB, method, path string, body any) response {
	t.Helper()
	return e.doWith(t, method, path, body, "Bearer "+e.admin, "application/json")
}

func (e *env) doTB(t testing.TB, method, path string, body any, auth, contentType string) response {
	t.Helper()
	return e.doWith(t, method, path, body, auth, contentType)
}

func (e *env) doWith(t testing.TB, method, path string, body any, auth, contentType string) response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// decode unmarshals a response body, failing the test unless the status is
// want.
func decode[T any](t *testing.T, r response, want int) T {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

// wantError checks that r is a JSON error with status and code.
func wantError(t *testing.T, r response, status int, code string) control.ErrorBody {
	t.Helper()
	eb := decode[control.ErrorBody](t, r, status)
	if eb.Code != code || eb.Error == "" || eb.RequestID == "" {
		t.Errorf("error body %s, want code %q, a message and a request id", r.body, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	return eb
}

// batchOf is the body of POST /v1/events with evs, without actor tokens.
func batchOf(evs ...store.Event) control.EventBatch {
	b := control.EventBatch{Events: make([]control.IncomingEvent, len(evs))}
	for i, e := range evs {
		b.Events[i].Event = e
	}
	return b
}
