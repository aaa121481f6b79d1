package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/controltest"
)

// TestWAFEventsNeverCarryASecret: the SDK redacts secret-looking inputs
// from its events (issue 10, item 13), but the gateway's WAF events carried
// the CRS's matched data verbatim, which names the variable and repeats its
// value: a password, reset token or session cookie that trips
// a rule ("s3cr3t' OR '1'='1") was stored in clear in the control plane.
// The events must still say which rule matched and in which variable.
func TestWAFEventsNeverCarryASecret(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, policyYAML)
	shop := startUpstream(t, cp, "shop", nil)
	gw := serveGateway(t, cp, "routes:\n  - {name: shop, path_prefix: /, upstream: "+shop.url+", service: shop}\n", time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	const secret = "s3cr3t' OR '1'='1"
	type sent struct {
		path, where string // where: the variable the event must name
		req         *http.Request
	}
	var reqs []sent
	add := func(method, path, contentType, body, where string, hdr ...string) {
		var r *http.Request
		if body != "" {
			r, _ = http.NewRequest(method, gw.url+path, strings.NewReader(body))
			r.Header.Set("Content-Type", contentType)
		} else {
			r, _ = http.NewRequest(method, gw.url+path, nil)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		reqs = append(reqs, sent{path: r.URL.Path, where: where, req: r})
	}
	add("POST", "/login/form", "application/x-www-form-urlencoded", "user=alice&password="+url.QueryEscape(secret), "ARGS:password")
	add("POST", "/login/json", "application/json", `{"user":"alice","password":"`+secret+`"}`, "ARGS:json.password")
	add("GET", "/reset", "", "", "ARGS:token")
	reqs[len(reqs)-1].req.URL.RawQuery = "token=" + url.QueryEscape(secret)
	add("GET", "/account/cookie", "", "", "REQUEST_COOKIES:session", "Cookie", "session="+url.QueryEscape(secret))
	for _, s := range reqs {
		resp, err := client.Do(s.req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %s, want 403 (the CRS must catch the value for this test to mean anything)", s.path, resp.Status)
		}
	}
	byPath := map[string]string{}
	deadline := time.Now().Add(time.Minute)
	for len(byPath) < len(reqs) {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute, WAF events for %d of %d requests", len(byPath), len(reqs))
		}
		time.Sleep(50 * time.Millisecond)
		for _, raw := range cp.Events(t, "kind=waf&service=gateway") {
			var stored struct{ Data rampart.Event }
			if err := json.Unmarshal(raw, &stored); err != nil {
				t.Fatal(err)
			}
			byPath[stored.Data.Path] = string(raw)
		}
	}
	fragments := []string{"s3cr3t", "1'='1", url.QueryEscape(secret)}
	for _, s := range reqs {
		raw := byPath[s.path]
		for _, f := range fragments {
			if strings.Contains(raw, f) {
				t.Errorf("%s: the event holds %q of the secret: %s", s.path, f, raw)
			}
		}
		if !strings.Contains(raw, s.where) || !strings.Contains(raw, "942100") {
			t.Errorf("%s: the event no longer says that rule 942100 matched %s: %s", s.path, s.where, raw)
		}
	}
}
