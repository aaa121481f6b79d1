package ramparttest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
)

// waitTimeout is how long Next and Wait wait for an event: far longer than
// any delivery takes, so that only a missing event fails a test. The
// package's tests shorten it to see a failure.
var waitTimeout = 30 * time.Second

// Recorder is a rampart.Sink that keeps the events it is given, for a test
// to look at. Its zero value is ready to use, as one of the Sinks of an
// agent made with rampart.New. It is safe for concurrent use; Next and Wait,
// which may fail the test, must be called from the test's goroutine.
type Recorder struct {
	mu      sync.Mutex
	events  []rampart.Event
	next    int           // the index of the event Next returns
	changed chan struct{} // closed, and replaced, when events are added
}

var _ rampart.Sink = (*Recorder)(nil)

// WriteEvents records evs, after those already recorded. It never fails and
// never blocks.
func (r *Recorder) WriteEvents(_ context.Context, evs []rampart.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	return nil
}

// Events returns the events recorded so far, oldest first. An event is
// recorded some time after the call that reported it: to see every event
// of a run, close the agent first, or Wait for the last one.
func (r *Recorder) Events() []rampart.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rampart.Event(nil), r.events...)
}

// Reset forgets the events recorded so far, so that Next, Wait and Events
// see only those of the next step of a test. An event still on its way is
// recorded after Reset: wait for a step's events before resetting.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events, r.next = nil, 0
}

// Next returns the oldest event that Next has not returned yet, as a receive
// from a channel would, waiting for it to be recorded. It fails the test,
// listing what was recorded, if none comes within 30 seconds.
func (r *Recorder) Next(t testing.TB) rampart.Event {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		r.mu.Lock()
		if r.next < len(r.events) {
			ev := r.events[r.next]
			r.next++
			r.mu.Unlock()
			return ev
		}
		changed := r.changedLocked()
		r.mu.Unlock()
		r.sleep(t, changed, deadline, "no new event")
	}
}

// Wait returns the oldest recorded event for which match reports true, a
// nil match taking any, waiting for it to be recorded. It fails the test,
// listing what was recorded, if none comes within 30 seconds. Unlike Next,
// it takes nothing: two Waits with the same match return the same event.
func (r *Recorder) Wait(t testing.TB, match func(rampart.Event) bool) rampart.Event {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		r.mu.Lock()
		evs := r.events // only appended to: its elements never change
		changed := r.changedLocked()
		r.mu.Unlock()
		for _, ev := range evs {
			if match == nil || match(ev) {
				return ev
			}
		}
		r.sleep(t, changed, deadline, "no event matched")
	}
}

// changedLocked returns a channel that WriteEvents closes when it next
// records events. r.mu is held.
func (r *Recorder) changedLocked() <-chan struct{} {
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

// sleep waits until changed is closed, or fails the test at deadline.
func (r *Recorder) sleep(t testing.TB, changed <-chan struct{}, deadline time.Time, failure string) {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-changed:
	case <-timer.C:
		t.Fatalf("ramparttest: %s in %v; %s", failure, waitTimeout, list(r.Events()))
	}
}

// list describes evs for a failure message.
func list(evs []rampart.Event) string {
	if len(evs) == 0 {
		return "no event was recorded"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d recorded:", len(evs))
	for i, ev := range evs {
		fmt.Fprintf(&b, "\n\t%d. %s", i+1, describe(ev))
	}
	return b.String()
}

// describe is an event on one line, the fields a test tells events apart
// by first.
func describe(ev rampart.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", ev.Kind, ev.Action)
	if in := ev.Input; in != (rampart.Input{}) {
		fmt.Fprintf(&b, ", input %s", in.Source)
		if in.Name != "" {
			fmt.Fprintf(&b, " %q", in.Name)
		}
		fmt.Fprintf(&b, " = %q", in.Value)
	}
	for _, f := range []struct{ name, value string }{
		{"sink", ev.Sink}, {"route", ev.Route}, {"path", ev.Path}, {"request", ev.RequestID}, {"reason", ev.Reason}, {"at", ev.Location},
	} {
		if f.value != "" {
			fmt.Fprintf(&b, ", %s %q", f.name, f.value)
		}
	}
	return b.String()
}
