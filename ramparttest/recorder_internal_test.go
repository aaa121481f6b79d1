package ramparttest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
)

// whenWaiting records ev once a Next or Wait of r has looked at what was
// recorded and is about to sleep, so that it must wake up to see ev.
func whenWaiting(r *Recorder, ev rampart.Event) {
	go func() {
		for {
			r.mu.Lock()
			waiting := r.changed != nil
			r.mu.Unlock()
			if waiting {
				r.WriteEvents(context.Background(), []rampart.Event{ev})
				return
			}
			runtime.Gosched()
		}
	}()
}

func TestNextAndWaitWakeUpForALaterEvent(t *testing.T) {
	r := &Recorder{}
	whenWaiting(r, rampart.Event{Kind: "first"})
	if ev := r.Next(t); ev.Kind != "first" {
		t.Errorf("Next returned %+v", ev)
	}
	whenWaiting(r, rampart.Event{Kind: "second"})
	if ev := r.Wait(t, func(ev rampart.Event) bool { return ev.Kind == "second" }); ev.Kind != "second" {
		t.Errorf("Wait returned %+v", ev)
	}
}

// fatalTB records the message of Fatalf and ends its goroutine, as
// testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure runs fn with a fatalTB and returns what it failed with.
func failure(fn func(testing.TB)) string {
	tb := &fatalTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb.msg
}

func TestAFailedWaitListsWhatWasRecorded(t *testing.T) {
	defer func(d time.Duration) { waitTimeout = d }(waitTimeout)
	waitTimeout = 10 * time.Millisecond
	r := &Recorder{}
	if msg := failure(func(tb testing.TB) { r.Next(tb) }); msg != "ramparttest: no new event in 10ms; no event was recorded" {
		t.Errorf("Next on nothing failed with %q", msg)
	}
	r.WriteEvents(context.Background(), []rampart.Event{
		{Kind: rampart.KindSSRF, Action: rampart.ActionBlocked, Input: rampart.Input{Source: "job", Value: "http://10.0.0.1/"}},
		{Kind: rampart.KindSQLInjection, Action: rampart.ActionMonitored, Route: "GET /search"},
	})
	want := "ramparttest: no event matched in 10ms; 2 recorded:\n" +
		"\t1. ssrf blocked, input job = \"http://10.0.0.1/\"\n" +
		"\t2. sql_injection monitored, route \"GET /search\""
	msg := failure(func(tb testing.TB) {
		r.Wait(tb, func(ev rampart.Event) bool { return ev.Kind == rampart.KindPathTraversal })
	})
	if msg != want {
		t.Errorf("Wait failed with\n%s\nwant\n%s", msg, want)
	}
	r.Next(t)
	r.Next(t)
	if msg := failure(func(tb testing.TB) { r.Next(tb) }); !strings.HasPrefix(msg, "ramparttest: no new event in 10ms; 2 recorded:") {
		t.Errorf("Next past the last event failed with %q", msg)
	}
}

func TestNewAgentFailsTheTestOnABadConfig(t *testing.T) {
	msg := failure(func(tb testing.TB) { NewAgent(tb, rampart.Config{Mode: "log"}) })
	if !strings.HasPrefix(msg, "ramparttest: rampart: Config.Mode") {
		t.Errorf("NewAgent with a bad mode failed with %q", msg)
	}
}
