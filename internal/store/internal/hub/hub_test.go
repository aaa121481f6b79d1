package hub

import (
	"context"
	"testing"
)

func TestSlowSubscribersSeeTheLatestRevision(t *testing.T) {
	var h Hub
	ch, ok := h.Subscribe(t.Context())
	if !ok {
		t.Fatal("Subscribe failed on a new hub")
	}
	for rev := range int64(5) {
		h.Publish(rev + 1)
	}
	h.Publish(3) // late echo of an older revision
	if got := <-ch; got != 5 {
		t.Fatalf("got %d, want 5", got)
	}
	select {
	case got := <-ch:
		t.Fatalf("unexpected %d", got)
	default:
	}
}

func TestSubscriptionsEnd(t *testing.T) {
	var h Hub
	ctx, cancel := context.WithCancel(t.Context())
	a, _ := h.Subscribe(ctx)
	b, _ := h.Subscribe(t.Context())
	cancel()
	if _, open := <-a; open {
		t.Fatal("channel open after its context ended")
	}
	h.Publish(1) // must not send on a's closed channel
	h.Close()
	if got := <-b; got != 1 {
		t.Fatalf("got %d, want 1", got)
	}
	if _, open := <-b; open {
		t.Fatal("channel open after Close")
	}
	if _, ok := h.Subscribe(t.Context()); ok {
		t.Fatal("Subscribe succeeded after Close")
	}
}
