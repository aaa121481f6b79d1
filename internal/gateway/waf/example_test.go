package waf_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/rampartsec/rampart/internal/gateway/waf"
)

// The gateway inspects each request before proxying it: a refused request
// gets the status the rules chose, and an accepted one reaches the service
// with its body intact.
func ExampleFirewall_Inspect() {
	fw, err := waf.New(waf.Config{}) // blocking, paranoia level 1, 128 KiB of body inspected
	if err != nil {
		log.Fatal(err)
	}
	service := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "service got %d bytes", len(body))
	})
	gateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := fw.Inspect(r, "", waf.WholeBody)
		if err != nil {
			http.Error(w, "request not inspected", http.StatusBadRequest)
			return
		}
		if v.BodyOverLimit { // longer than the WAF reads: not inspected
			http.Error(w, "request body too large to inspect", http.StatusRequestEntityTooLarge)
			return
		}
		if v.Blocked {
			for _, m := range v.Matches {
				fmt.Printf("matched %d: %s\n", m.RuleID, m.Message)
			}
			http.Error(w, http.StatusText(v.Status), v.Status)
			return
		}
		service.ServeHTTP(w, r) // in the gateway: the reverse proxy
	})

	for _, r := range []*http.Request{
		httptest.NewRequest("GET", "/api/search?q="+url.QueryEscape("' OR '1'='1"), nil),
		httptest.NewRequest("POST", "/api/comments", strings.NewReader(`{"comment":"I can't wait!"}`)),
	} {
		r.Header.Set("User-Agent", "example/1.0")
		r.Header.Set("Accept", "*/*")
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		gateway.ServeHTTP(w, r)
		fmt.Printf("%s %s: %d %s\n", r.Method, r.URL.Path, w.Code, strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// matched 942100: SQL Injection Attack Detected via libinjection
	// matched 949110: Inbound Anomaly Score Exceeded (Total Score: 5)
	// GET /api/search: 403 Forbidden
	// POST /api/comments: 200 service got 27 bytes
}
