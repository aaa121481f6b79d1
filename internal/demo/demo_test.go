package demo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/demo"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, mode rampart.Mode) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Config{Addr: "127.0.0.1:0", Mode: mode, Out: out, Ready: ready})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo.Run: %v", err)
		}
	})
	select {
	case base := <-ready:
		return base, out
	case err := <-done:
		t.Fatalf("demo stopped before serving: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not start")
	}
	return "", nil
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, out *syncBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("output never contained %q:\n%s", text, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTheDemoBlocksItsInjectionAndPrintsTheEvent(t *testing.T) {
	base, out := start(t, rampart.ModeBlock)
	injection := base + "/products?q=" + url.QueryEscape(demo.InjectionQuery)
	waitFor(t, out, "Security event (sql_injection, blocked at ")
	var text string
	waitFor(t, out, "Security event (ssrf, blocked at ")
	text = out.String()
	for _, want := range []string{"Service URL: " + base, "curl '" + injection + "'", "SQL injection -> HTTP 403", `"request_id"`, "examples/shop/shop.go:", `"route": "GET /products"`,
		"SSRF import 1 -> blocked", "the internal service was reached 0 times", "examples/shop/worker.go:", `"source": "job"`} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	// The printed curl line, sent again, is blocked again and leaks nothing.
	code, body := get(t, injection)
	if code != http.StatusForbidden || strings.Contains(body, "sk_live") {
		t.Errorf("injection answered %d %s, want 403 without secrets", code, body)
	}
	// The same handler still serves honest searches.
	code, body = get(t, base+"/products?q=moka")
	if code != http.StatusOK || !strings.Contains(body, "Moka pot") {
		t.Errorf("search answered %d %s", code, body)
	}
	// The parameterized write stores SQL-looking text verbatim.
	review := `{"product_id":1,"author":"Ann O'Neil","body":"1=1; DROP TABLE reviews; -- great cup"}`
	resp, err := http.Post(base+"/reviews", "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("review answered %d", resp.StatusCode)
	}
	code, body = get(t, base+"/products/1/reviews")
	var reviews []struct{ Author, Body string }
	if err := json.Unmarshal([]byte(body), &reviews); err != nil || code != 200 || len(reviews) != 1 || reviews[0].Body != "1=1; DROP TABLE reviews; -- great cup" || reviews[0].Author != "Ann O'Neil" {
		t.Errorf("reviews answered %d %s", code, body)
	}
}

func TestInMonitorModeTheDemoInjectionReallyLeaksTheKeys(t *testing.T) {
	base, out := start(t, rampart.ModeMonitor)
	code, body := get(t, base+"/products?q="+url.QueryEscape(demo.InjectionQuery))
	if code != http.StatusOK || !strings.Contains(body, "sk_live_ana_7f3c9e") {
		t.Fatalf("unblocked injection answered %d %s; the demo's exploit must be real", code, body)
	}
	waitFor(t, out, "Security event (sql_injection, monitored at ")
	// The worker's SSRF really reaches the internal service when let through.
	waitFor(t, out, "Security event (ssrf, monitored at ")
	if text := out.String(); !strings.Contains(text, "SSRF import 1 -> done") || !strings.Contains(text, "the internal service was reached 1 times") {
		t.Errorf("monitor-mode SSRF did not reach the internal service:\n%s", text)
	}
}
