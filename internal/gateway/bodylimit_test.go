package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/internal/gateway/waf"
)

// TestBodyOverTheInspectionLimitIsRefused is issue 10, item 4: the WAF read
// the first 128 KiB of a body while the gateway forwarded up to 10 MiB, so
// an injection after 128 KiB of padding reached the service uninspected.
// Such a body is now refused with 413 and an event, whether its length is
// declared or not, unless the route opts into partial inspection, and then
// the event says the body was partly inspected.
func TestBodyOverTheInspectionLimitIsRefused(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	cp.ApplyPolicy(t, policyYAML)
	var reached atomic.Int64 // requests whose body carried the payload to the service
	const injection = "1' UNION SELECT username, password FROM users--"
	shop := startUpstream(t, cp, "shop", func(mux *http.ServeMux) {
		mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if bytes.Contains(body, []byte("UNION")) {
				reached.Add(1)
			}
		})
	})
	gw := serveGateway(t, cp, "routes:\n"+
		"  - {name: shop, path_prefix: /, upstream: "+shop.url+", service: shop}\n"+
		"  - {name: uploads, path_prefix: /api/uploads/, upstream: "+shop.url+", service: shop, partial_body_inspection: true}\n",
		time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	pad := strings.Repeat("a", waf.DefaultBodyLimit)
	bodies := map[string]struct{ contentType, plain, padded string }{
		"form": {"application/x-www-form-urlencoded",
			"q=" + url.QueryEscape(injection),
			"pad=" + pad + "&q=" + url.QueryEscape(injection)},
		"JSON": {"application/json",
			`{"q":"` + injection + `"}`,
			`{"pad":"` + pad + `","q":"` + injection + `"}`},
	}
	post := func(path, contentType, body string, chunked bool) *http.Response {
		t.Helper()
		var r io.Reader = strings.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // no length known: sent chunked
		}
		req, _ := http.NewRequest("POST", gw.url+path, r)
		req.Header.Set("Content-Type", contentType)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s (%s, %d bytes, chunked %v): %v", path, contentType, len(body), chunked, err)
		}
		return resp
	}
	for name, b := range bodies {
		t.Run(name, func(t *testing.T) {
			// The CRS catches the payload where it can see it.
			resp := post("/api/search", b.contentType, b.plain, false)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("the payload alone: %s, want 403 (the CRS must catch it for this test to mean anything)", resp.Status)
			}
			before := reached.Load()
			for _, chunked := range []bool{false, true} {
				resp := post("/api/search", b.contentType, b.padded, chunked)
				errorJSON(t, "padded payload, chunked "+map[bool]string{false: "no", true: "yes"}[chunked], resp, http.StatusRequestEntityTooLarge)
			}
			if n := reached.Load() - before; n != 0 {
				t.Errorf("the padded payload reached the service %d times", n)
			}
			// A route that opts into partial inspection lets it through,
			// and says so. (Shown with JSON only: the CRS takes seconds of
			// CPU over a 128 KiB form field, milliseconds over JSON.)
			if name != "JSON" {
				return
			}
			resp = post("/api/uploads/1", b.contentType, b.padded, true)
			resp.Body.Close()
			if resp.StatusCode != 200 || reached.Load()-before != 1 {
				t.Errorf("on the partial route: %s, reached the service %d times; want 200 and once", resp.Status, reached.Load()-before)
			}
		})
	}
	// Four refusals (two bodies, with and without a declared length) and
	// one partial inspection, each with its event.
	deadline := time.Now().Add(time.Minute)
	for {
		refused, partial := 0, 0
		for _, raw := range cp.Events(t, "kind=body_over_inspection_limit&service=gateway") {
			var stored struct{ Data rampart.Event }
			if err := json.Unmarshal(raw, &stored); err != nil {
				t.Fatal(err)
			}
			ev := stored.Data
			switch {
			case ev.Action == rampart.ActionBlocked && ev.Route == "shop" && ev.Path == "/api/search":
				refused++
			case ev.Action == rampart.ActionMonitored && ev.Route == "uploads" && strings.Contains(ev.Reason, "partly inspected"):
				partial++
			default:
				t.Errorf("unexpected event %+v", ev)
			}
		}
		if refused == 4 && partial == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %d refusal events (want 4), %d partial inspection events (want 1)", refused, partial)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
