package identity_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/controltest"
)

// silentProxy forwards TCP connections to a target until cut, and then
// drops every byte in both directions without closing anything: what a
// network partition looks like to both ends (no FIN, no RST; packets
// vanish).
type silentProxy struct {
	ln     net.Listener
	target string
	cut    atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

func newSilentProxy(t *testing.T, target string) *silentProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &silentProxy{ln: ln, target: target}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			wg.Go(func() { p.pipe(up, c) })
			wg.Go(func() { p.pipe(c, up) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *silentProxy) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.cut.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A control plane that stops answering in the middle of a request (a
// network partition: the connection stays open and its packets vanish)
// must not hold the request, and the long poll or heartbeat behind it,
// until TCP gives up many minutes later: the client's connection checks
// that the peer answers, gives the request an error once it does not, and
// the next request, once the network is back, gets through on a new
// connection.
func TestControlPlaneClientGivesUpOnAConnectionThatStopsAnswering(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	src := cp.Join(t, "orders")
	proxy := newSilentProxy(t, strings.TrimPrefix(cp.URL, "https://"))
	url := "https://" + proxy.ln.Addr().String() + "/v1/bundle"
	client := src.ControlPlaneClient()
	defer client.CloseIdleConnections()
	get := func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
	if err := get(); err != nil {
		t.Fatalf("through the proxy, before the cut: %v", err)
	}

	proxy.cut.Store(true)
	done := make(chan error, 1)
	go func() { done <- get() }()
	// The deadline is many times what the connection's check takes (tens
	// of seconds); without the check the request waits for TCP, whose
	// retransmissions to a silent peer go on for about 15 minutes.
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a request through a cut connection succeeded")
		}
		t.Logf("the request through the cut connection failed: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("a request on a connection whose peer went silent was still waiting after 3 minutes")
	}

	proxy.cut.Store(false)
	deadline := time.Now().Add(time.Minute)
	for {
		err := get()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests still fail a minute after the network returned: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
