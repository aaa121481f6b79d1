package loadtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// watchRecorder is a RoundTripper that reads the answers of GET /v1/watch
// as the member's syncer receives them, to check what the member was told:
// the revisions it watched from, which must never go back, even when it
// moves to another replica.
type watchRecorder struct {
	next http.RoundTripper

	mu        sync.Mutex
	revision  int64 // the highest revision an answer gave
	backwards int   // answers whose revision was below one given before
	answers   int
}

func (w *watchRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := w.next.RoundTrip(req)
	if err != nil || req.URL.Path != "/v1/watch" || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	resp.Body = &recordedBody{ReadCloser: resp.Body, w: w}
	return resp, nil
}

// CloseIdleConnections closes the wrapped transport's idle connections.
func (w *watchRecorder) CloseIdleConnections() {
	if c, ok := w.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (w *watchRecorder) note(data []byte) {
	var res struct {
		Revision int64 `json:"revision"`
	}
	if json.Unmarshal(data, &res) != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answers++
	if res.Revision < w.revision {
		w.backwards++
	}
	w.revision = max(w.revision, res.Revision)
}

func (w *watchRecorder) state() (revision int64, backwards, answers int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.revision, w.backwards, w.answers
}

// recordedBody keeps what is read (a watch answer is small) and gives it to
// the recorder at the end.
type recordedBody struct {
	io.ReadCloser
	w    *watchRecorder
	buf  bytes.Buffer
	done bool
}

func (b *recordedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.buf.Write(p[:n])
	if err == io.EOF && !b.done {
		b.done = true
		b.w.note(b.buf.Bytes())
	}
	return n, err
}
