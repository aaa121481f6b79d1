package web_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/web"
)

func TestTheOverviewStreamSendsNewAttacks(t *testing.T) {
	eachSource(t, func(t *testing.T, start func(testing.TB, func(*web.Config)) *ui) {
		u := start(t, nil)
		c := u.signIn()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", u.url+"/ui/stream?window=1h", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
		}
		r := bufio.NewReader(resp.Body)
		// The stream is open (its first comment) before the attack is stored.
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
			t.Fatalf("first line %q, %v", line, err)
		}
		u.clock.Add(time.Second)
		u.event("sql_injection", "blocked", "orders", "192.0.2.45", "", map[string]any{"reason": "<b>bold</b> attack"})
		var msg strings.Builder
		inOverview := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("the stream ended before an overview with the attack: %v", err)
			}
			switch {
			case line == "event: overview\n":
				inOverview = true
				msg.Reset()
			case inOverview && strings.HasPrefix(line, "data: "):
				msg.WriteString(strings.TrimPrefix(line, "data: "))
			case inOverview && line == "\n":
				if strings.Contains(msg.String(), "192.0.2.45") {
					if strings.Contains(msg.String(), "<b>bold") || !strings.Contains(msg.String(), "&lt;b&gt;bold") {
						t.Fatal("the streamed part does not escape the event's reason")
					}
					return
				}
				inOverview = false
			}
		}
	})
}

func TestStreamsEndWhenTheServerStops(t *testing.T) {
	u := startUI(t, nil)
	c := u.signIn()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u.url+"/ui/stream", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	r.ReadString('\n')
	u.h.EndStreams()
	for {
		if _, err := r.ReadString('\n'); err != nil {
			return // ended, long before the context's deadline
		}
	}
}
