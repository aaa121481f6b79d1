package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/controltest"
)

// healthz is the gateway's /healthz answer.
type healthz struct {
	Status        string `json:"status"`
	DroppedEvents uint64 `json:"dropped_events"`
	Events        struct {
		Spooled   int    `json:"spooled"`
		Delivered uint64 `json:"delivered"`
		QueueFull uint64 `json:"dropped_queue_full"`
		SpoolFull uint64 `json:"dropped_spool_full"`
		Expired   uint64 `json:"expired"`
		Rejected  uint64 `json:"rejected"`
		Lost      uint64 `json:"lost"`
		Failures  uint64 `json:"delivery_failures"`
	} `json:"events"`
}

func getHealth(t *testing.T, gw *servedGateway) healthz {
	t.Helper()
	resp, err := http.Get(gw.admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h healthz
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d, %v", resp.StatusCode, err)
	}
	return h
}

func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 60 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func attack(t *testing.T, gw *servedGateway, marker string) {
	t.Helper()
	resp, err := http.Get(gw.url + "/items?marker=" + marker + "&q=" + url.QueryEscape("1' UNION SELECT username, password FROM users--"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("attack answered %d, want 403 from the WAF", resp.StatusCode)
	}
}

// wafEvents returns the paths of the gateway's stored WAF events.
func wafEvents(t *testing.T, cp *controltest.ControlPlane) []string {
	t.Helper()
	var paths []string
	for _, raw := range cp.Events(t, "kind=waf&service=gateway&limit=1000") {
		var e struct {
			Data struct {
				Path string `json:"path"`
			} `json:"data"`
		}
		json.Unmarshal(raw, &e)
		paths = append(paths, e.Data.Path)
	}
	return paths
}

// The issue: a WAF event was given up after ten seconds of retries during
// a control-plane outage while /healthz said nothing was dropped. It now
// waits in the gateway's spool, through a restart of the gateway too.
func TestAWAFEventOutlivesAnOutageAndARestartOfTheGateway(t *testing.T) {
	t.Run("spool_dir", func(t *testing.T) {
		testWAFEventOutlivesARestart(t, "events:\n  spool_dir: "+filepath.Join(t.TempDir(), "spool")+"\n")
	})
	// Without spool_dir, the spool is kept next to the saved identity.
	t.Run("identity_dir", func(t *testing.T) {
		// (serveGatewayAs's YAML ends inside control_plane.)
		testWAFEventOutlivesARestart(t, "  identity_dir: "+filepath.Join(t.TempDir(), "identity")+"\n")
	})
}

func testWAFEventOutlivesARestart(t *testing.T, where string) {
	cp := controltest.Start(t, controltest.Config{})
	src := cp.Join(t, "gateway")
	yaml := fmt.Sprintf("%sroutes:\n  - upstream: http://%s\n", where, freePort(t))
	gw := serveGatewayAs(t, cp, src, nil, yaml, time.Second, true)
	cp.Stop()
	attack(t, gw, "during-the-outage")
	pollUntil(t, "6 failed deliveries", func() bool { return getHealth(t, gw).Events.Failures >= 6 })
	if h := getHealth(t, gw); h.DroppedEvents != 0 || h.Events.Spooled < 1 {
		t.Fatalf("/healthz during the outage: %+v, want the event spooled and nothing dropped", h)
	}
	gw.stop(t, 10*time.Second)
	gw.Close() // tries to deliver for a while, then leaves it in the spool
	if st := gw.EventStats(); st.Spooled < 1 || st.Undelivered() != 0 {
		t.Fatalf("stats of the stopped gateway %+v: want the event kept", st)
	}

	cp.Restart(t)
	again := serveGatewayAs(t, cp, src, nil, yaml, time.Second, true)
	pollUntil(t, "the WAF event stored", func() bool { return len(wafEvents(t, cp)) > 0 })
	pollUntil(t, "the spool empty", func() bool { return getHealth(t, again).Events.Spooled == 0 })
	if paths := wafEvents(t, cp); len(paths) != 1 || paths[0] != "/items" {
		t.Errorf("stored WAF events %q, want the one of the outage, once", paths)
	}
	if h := getHealth(t, again); h.DroppedEvents != 0 || h.Events.Delivered < 1 {
		t.Errorf("/healthz after the restart: %+v", h)
	}
}

// /healthz counts every event that will never reach the control plane,
// and the control plane hears of them once it is back.
func TestHealthzCountsTheEventsAFullSpoolDrops(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	src := cp.Join(t, "gateway")
	yaml := fmt.Sprintf("routes:\n  - upstream: http://%s\nevents:\n  spool_max_bytes: 65536\n", freePort(t))
	gw := serveGatewayAs(t, cp, src, nil, yaml, time.Second, true)
	cp.Stop()
	const attacks = 120
	for i := range attacks {
		attack(t, gw, fmt.Sprint(i))
	}
	pollUntil(t, "drops", func() bool { return getHealth(t, gw).Events.SpoolFull > 0 })
	h := getHealth(t, gw)
	if h.DroppedEvents != h.Events.SpoolFull+h.Events.QueueFull || h.DroppedEvents != gw.DroppedEvents() {
		t.Fatalf("/healthz %+v: dropped_events is not the sum of its parts, or not DroppedEvents() %d", h, gw.DroppedEvents())
	}
	cp.Restart(t)
	pollUntil(t, "the spool delivered and its drops reported", func() bool {
		st := gw.EventStats()
		return st.Spooled == 0 && st.DropReports > 0
	})
	st := gw.EventStats()
	stored := wafEvents(t, cp)
	var reported int
	for _, raw := range cp.Events(t, "kind=events_dropped&service=gateway") {
		var e struct {
			Data struct {
				Count int `json:"count"`
			} `json:"data"`
		}
		json.Unmarshal(raw, &e)
		reported += e.Data.Count
	}
	if uint64(reported) != st.Dropped || len(stored)+int(st.Dropped) < attacks || st.Undelivered() != st.Dropped {
		t.Errorf("stats %+v, %d WAF events stored, drops reported %d: every attack must be stored or counted as dropped",
			st, len(stored), reported)
	}
	if !strings.Contains(fmt.Sprint(stored), "/items") {
		t.Errorf("stored %v", stored)
	}
}
