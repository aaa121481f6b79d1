package control_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

// FuzzSVIDEndpoint posts arbitrary bodies to the join endpoint: every
// answer is a JSON 4xx (or a 201 for a real token), never a 5xx or a panic.
func FuzzSVIDEndpoint(f *testing.F) {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	c, err := ca.Generate(spiffeid.RequireTrustDomainFromString("rampart.test"), ca.Config{})
	if err != nil {
		f.Fatal(err)
	}
	_, hash := control.NewAdminToken()
	h, err := control.New(control.Config{Store: s, CA: c, AdminTokenHash: hash})
	if err != nil {
		f.Fatal(err)
	}
	tok, _, err := s.CreateJoinToken(context.Background(), store.JoinTokenSpec{Service: "api", TTL: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	_, csr := keyAndCSRTB(f)
	for _, seed := range []string{
		`{"token":"` + tok + `","service":"api","csr":"` + csr + `"}`,
		`{"token":"rjt_x","service":"api","csr":"AAAA"}`,
		`{"token":"` + tok + `","service":"api","csr":"MIIBADCBpgIBADAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}`,
		`{"token":1}`, `[]`, `null`, `{"csr":"` + strings.Repeat("A", 4096) + `"}`, "\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/v1/svid", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code != http.StatusCreated {
			var eb control.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" || eb.Code == "" {
				t.Fatalf("status %d for %q: body %q is not a JSON error", rec.Code, body, rec.Body)
			}
		}
	})
}
