package web

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxStreams bounds the live streams open at once.
const maxStreams = 200

// live counts the open streams, and keeps the live part last rendered
// for each window and state of the store, so that many browsers watching
// cost one rendering per change, not one each.
type live struct {
	h    *Handler
	open atomic.Int64

	mu   sync.Mutex
	last map[liveKey]rendered
}

type rendered struct {
	at   time.Time
	html []byte
}

// liveKey is a window and the store's state: the latest event seq and
// change revision the stream was woken with. The live part holds no
// session's data (no form, no token), so streams share it.
type liveKey struct {
	window      string
	seq, change int64
}

func newLive(h *Handler) *live { return &live{h: h, last: map[liveKey]rendered{}} }

// part returns the live part for key, rendering it unless a stream did in
// the last liveInterval (a stream that opened after a change has not seen
// its revision, so the key alone may name an older state).
func (l *live) part(key liveKey, render func() ([]byte, error)) ([]byte, error) {
	l.mu.Lock()
	r, ok := l.last[key]
	l.mu.Unlock()
	if ok && time.Since(r.at) < liveInterval {
		return r.html, nil
	}
	b, err := render()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if len(l.last) >= 16 {
		clear(l.last)
	}
	l.last[key] = rendered{time.Now(), b}
	l.mu.Unlock()
	return b, nil
}

// stream serves the overview's live part as server-sent events: an
// "overview" message with the part's HTML each time events are stored or
// decisions change, at most every liveInterval.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, s *session) error {
	if h.live.open.Add(1) > maxStreams {
		h.live.open.Add(-1)
		return &userError{http.StatusServiceUnavailable, "Too many live views are open; the page still works, reload it to refresh."}
	}
	defer h.live.open.Add(-1)
	ctx, cancel := context.WithTimeout(r.Context(), streamLife)
	defer cancel()
	events, err := h.cfg.Store.SubscribeEvents(ctx)
	if err != nil {
		return err
	}
	changes, err := h.cfg.Store.Subscribe(ctx)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The server's write timeout is for requests, not streams.
	rc.SetWriteDeadline(time.Time{})
	if _, err := w.Write([]byte("retry: 3000\n: live\n\n")); err != nil {
		return nil
	}
	rc.Flush()
	heartbeat := time.NewTicker(20 * time.Second)
	defer heartbeat.Stop()
	var last time.Time
	pending := false
	key := liveKey{window: r.URL.Query().Get("window")}
	if _, ok := windows[key.window]; !ok {
		key.window = "1h"
	}
	var wait <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.stopping:
			return nil
		case seq, ok := <-events:
			if !ok {
				return nil
			}
			key.seq, pending = max(key.seq, seq), true
		case rev, ok := <-changes:
			if !ok {
				return nil
			}
			key.change, pending = max(key.change, rev), true
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": ping\n\n")); err != nil {
				return nil
			}
			rc.Flush()
			continue
		case <-wait:
			wait = nil
		}
		if !pending || wait != nil {
			continue
		}
		if d := liveInterval - time.Since(last); d > 0 {
			wait = time.After(d)
			continue
		}
		pending, last = false, time.Now()
		part, err := h.live.part(key, func() ([]byte, error) {
			v, err := h.overviewData(r.WithContext(ctx))
			if err != nil {
				return nil, err
			}
			return h.renderPart("overview", "live", s, r, v)
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.log.Warn("web: live overview", "err", err)
			continue
		}
		var buf bytes.Buffer
		buf.WriteString("event: overview\n")
		for _, line := range bytes.Split(part, []byte("\n")) {
			buf.WriteString("data: ")
			buf.Write(bytes.TrimRight(line, "\r"))
			buf.WriteByte('\n')
		}
		buf.WriteByte('\n')
		if _, err := w.Write(buf.Bytes()); err != nil {
			return nil
		}
		rc.Flush()
	}
}
