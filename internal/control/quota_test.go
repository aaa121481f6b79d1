package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/internal/store"
)

// call makes one request with a service's client and returns the status,
// the headers and the body.
func call(ctx context.Context, c *http.Client, method, url string, body any) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data, err
}

// checkRefusal reports what is wrong with a 429 answer, or "".
func checkRefusal(header http.Header, body []byte, quota string) string {
	var eb control.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		return fmt.Sprintf("body %q is not JSON: %v", body, err)
	}
	if eb.Code != control.CodeQuotaExceeded || eb.Field != quota || eb.RequestID == "" || eb.Error == "" {
		return fmt.Sprintf("body %s, want code %s, field %s and a request id", body, control.CodeQuotaExceeded, quota)
	}
	if s, err := strconv.Atoi(header.Get("Retry-After")); err != nil || s < 1 {
		return fmt.Sprintf("Retry-After %q, want a number of seconds", header.Get("Retry-After"))
	}
	return ""
}

// quotaEvents returns the quota_exceeded events of service, by quota.
func quotaEvents(t *testing.T, cp *controltest.ControlPlane, service string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, raw := range cp.Events(t, "kind=quota_exceeded&service="+service+"&limit=1000") {
		var ev struct {
			Data struct {
				Quota   string `json:"quota"`
				Refused int64  `json:"refused"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil || ev.Data.Refused < 1 {
			t.Fatalf("quota event %s: %v", raw, err)
		}
		out[ev.Data.Quota]++
	}
	return out
}

// TestAMisbehavingServiceCannotExhaustTheControlPlane has one service
// identity register fresh instance ids and open long polls as fast as it
// can, while an admin works: the admin's requests all succeed, the store
// never holds more instances of the service than its quota, the server
// never holds more of its watches than their limit, the excess is refused
// with 429, and the refusals leave a few events, not one each.
func TestAMisbehavingServiceCannotExhaustTheControlPlane(t *testing.T) {
	const maxInstances, maxWatches, maxAllWatches = 20, 6, 10
	cp := controltest.Start(t, controltest.Config{Quotas: control.Quotas{
		InstancesPerService: maxInstances, WatchesPerService: maxWatches, Watches: maxAllWatches,
		RequestsPerSecond: 1e6, Burst: 1e6, // the other quotas are under test here
	}})
	started := time.Now()
	rogue := cp.Join(t, "rogue").ControlPlaneClient()
	t.Cleanup(rogue.CloseIdleConnections)
	var latest control.WatchResult
	cp.MustDo(t, http.MethodGet, "/v1/watch?since=latest", nil, http.StatusOK, &latest)

	ctx, cancel := context.WithCancel(t.Context())
	stop := ctx.Done()
	var wg sync.WaitGroup
	var registered, refusedInstances, watched, refusedWatches atomic.Int64
	var failures sync.Map
	fail := func(what string) { failures.LoadOrStore(what, true) }
	var n atomic.Int64
	for range 4 { // heartbeats with fresh instance ids
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				hb := control.Heartbeat{Service: "rogue", ID: fmt.Sprintf("fresh-%d", n.Add(1))}
				status, header, body, err := call(ctx, rogue, http.MethodPost, cp.URL+"/v1/heartbeat", hb)
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					fail("heartbeat: " + err.Error())
					return
				case status == http.StatusNoContent:
					registered.Add(1)
				case status == http.StatusTooManyRequests:
					refusedInstances.Add(1)
					if msg := checkRefusal(header, body, control.QuotaInstances); msg != "" {
						fail("heartbeat refusal: " + msg)
					}
				default:
					fail(fmt.Sprintf("heartbeat: %d %s", status, body))
				}
			}
		})
	}
	for range 3 * maxWatches { // long polls, more than the service may hold
		wg.Go(func() {
			since := latest.Revision
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, header, body, err := call(ctx, rogue, http.MethodGet, fmt.Sprintf("%s/v1/watch?since=%d&timeout=20s", cp.URL, since), nil)
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					fail("watch: " + err.Error())
					return
				case status == http.StatusOK:
					watched.Add(1)
					var res control.WatchResult
					json.Unmarshal(body, &res)
					since = res.Revision
				case status == http.StatusTooManyRequests:
					refusedWatches.Add(1)
					if msg := checkRefusal(header, body, control.QuotaWatches); msg != "" {
						fail("watch refusal: " + msg)
					}
					time.Sleep(10 * time.Millisecond) // as a client would, more politely
				default:
					fail(fmt.Sprintf("watch: %d %s", status, body))
				}
			}
		})
	}
	stopAll := sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stopAll)

	// Wait until the service is being refused on both counts.
	deadline := time.Now().Add(time.Minute)
	for refusedInstances.Load() == 0 || refusedWatches.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %d instances registered, %d refused; %d watch refusals", registered.Load(), refusedInstances.Load(), refusedWatches.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Logf("refused on both counts after %v", time.Since(started))
	// Meanwhile the admin works, and every request succeeds.
	checkBounds := func() {
		t.Helper()
		var ins control.InstanceList
		cp.MustDo(t, http.MethodGet, "/v1/instances?service=rogue", nil, http.StatusOK, &ins)
		if len(ins.Instances) > maxInstances {
			t.Fatalf("the store holds %d instances of rogue, over its quota of %d", len(ins.Instances), maxInstances)
		}
		var rep control.QuotaReport
		cp.MustDo(t, http.MethodGet, "/v1/quotas", nil, http.StatusOK, &rep)
		if rep.OpenWatches > maxAllWatches {
			t.Fatalf("the server holds %d watches, over its limit of %d", rep.OpenWatches, maxAllWatches)
		}
		for _, s := range rep.Services {
			if s.OpenWatches > maxWatches {
				t.Fatalf("the server holds %d watches of %s, over the limit of %d", s.OpenWatches, s.Service, maxWatches)
			}
		}
	}
	const adminRounds = 30
	for i := range adminRounds {
		cp.MustDo(t, http.MethodPost, "/v1/decisions", control.DecisionRequest{ // wakes every watcher
			Scope: store.ScopeIP, Value: fmt.Sprintf("192.0.2.%d", i+1), Action: store.ActionBlock, TTL: "1h",
		}, http.StatusCreated, nil)
		cp.MustDo(t, http.MethodGet, "/v1/decisions", nil, http.StatusOK, nil)
		cp.MustDo(t, http.MethodGet, "/v1/services", nil, http.StatusOK, nil)
		checkBounds()
	}
	t.Logf("admin rounds done after %v", time.Since(started))
	var rep control.QuotaReport
	cp.MustDo(t, http.MethodGet, "/v1/quotas", nil, http.StatusOK, &rep)
	stopAll()
	t.Logf("stopped after %v", time.Since(started))
	failures.Range(func(k, _ any) bool { t.Error(k); return true })
	checkBounds()

	var ins control.InstanceList
	cp.MustDo(t, http.MethodGet, "/v1/instances?service=rogue", nil, http.StatusOK, &ins)
	t.Logf("rogue: %d heartbeats registered, %d refused; %d watches answered, %d refused; %d instances stored",
		registered.Load(), refusedInstances.Load(), watched.Load(), refusedWatches.Load(), len(ins.Instances))
	// An instance counts as gone control.DefaultStaleAfter after its last
	// heartbeat, and a new one may take its place: only a run that outlasts
	// that (a busy machine) may register more than the quota over its
	// course, never more than the quota at once (checkBounds).
	if reg := registered.Load(); len(ins.Instances) != maxInstances || reg < maxInstances ||
		reg != maxInstances && time.Since(started) < control.DefaultStaleAfter {
		t.Errorf("%d instances stored, %d registered in %v; want exactly the quota, %d", len(ins.Instances), reg, time.Since(started).Round(time.Second), maxInstances)
	}
	if watched.Load() == 0 {
		t.Error("no watch of rogue was ever answered: the quota refused them all")
	}
	var reported int64
	for _, s := range rep.Services {
		if s.Service == "rogue" {
			reported = s.Refused[control.QuotaInstances] + s.Refused[control.QuotaWatches]
		}
	}
	if reported == 0 {
		t.Errorf("GET /v1/quotas reports no refusal of rogue: %+v", rep)
	}
	// One event per quota and QuotaEventInterval, however many refusals.
	events := quotaEvents(t, cp, "rogue")
	intervals := int(time.Since(started)/control.QuotaEventInterval) + 1
	for _, quota := range []string{control.QuotaInstances, control.QuotaWatches} {
		if events[quota] < 1 || events[quota] > intervals {
			t.Errorf("%d quota_exceeded events for %s, want 1 to %d (refusals: %d instances, %d watches)",
				events[quota], quota, intervals, refusedInstances.Load(), refusedWatches.Load())
		}
	}
}

// TestAServiceOverItsRequestRateIsRefusedAndTheAdminIsNot spends a
// service's token bucket: the requests past its burst get 429 with
// Retry-After, one event, and the admin's requests, as many, all pass.
func TestAServiceOverItsRequestRateIsRefusedAndTheAdminIsNot(t *testing.T) {
	const burst, requests = 10, 40
	cp := controltest.Start(t, controltest.Config{Quotas: control.Quotas{RequestsPerSecond: 0.01, Burst: burst}})
	chatty := cp.Join(t, "chatty").ControlPlaneClient()
	t.Cleanup(chatty.CloseIdleConnections)
	var ok, refused int
	for range requests {
		status, header, body, err := call(t.Context(), chatty, http.MethodGet, cp.URL+"/v1/decisions", nil)
		switch {
		case err != nil:
			t.Fatal(err)
		case status == http.StatusOK:
			ok++
		case status == http.StatusTooManyRequests:
			refused++
			if msg := checkRefusal(header, body, control.QuotaRequests); msg != "" {
				t.Fatal(msg)
			}
		default:
			t.Fatalf("%d %s", status, body)
		}
	}
	// At 0.01 per second, the bucket refills by one request in 100 s: a
	// slow machine may let one more through, not more.
	if ok < burst || ok > burst+1 || refused != requests-ok {
		t.Errorf("%d answered, %d refused; want the burst, %d, answered and the rest refused", ok, refused, burst)
	}
	for range requests {
		cp.MustDo(t, http.MethodGet, "/v1/decisions", nil, http.StatusOK, nil)
	}
	if events := quotaEvents(t, cp, "chatty"); events[control.QuotaRequests] != 1 {
		t.Errorf("quota events %v, want one for %d refusals", events, refused)
	}
}
