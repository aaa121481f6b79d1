package web

import (
	"bytes"
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// maxStreams bounds the live streams open at once.
const maxStreams = 200

// live counts the open streams.
type live struct {
	h    *Handler
	open atomic.Int64
}

func newLive(h *Handler) *live { return &live{h: h} }

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
	var wait <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.stopping:
			return nil
		case _, ok := <-events:
			if !ok {
				return nil
			}
			pending = true
		case _, ok := <-changes:
			if !ok {
				return nil
			}
			pending = true
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
		v, err := h.overviewData(r.WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.log.Warn("web: live overview", "err", err)
			continue
		}
		part, err := h.renderPart("overview", "live", s, r, v)
		if err != nil {
			h.log.Error("web: live overview", "err", err)
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
