package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/internal/gateway"
)

// servedGateway is a gateway on loopback whose Serve the test ends when it
// chooses, with an admin listener.
type servedGateway struct {
	*gateway.Gateway
	url   string // http://127.0.0.1:port, client traffic
	addr  string // its host:port
	admin string // http://127.0.0.1:port, /healthz and /readyz

	cancel context.CancelFunc
	served chan error // receives Serve's result, then is closed
	ls     *gateway.Listeners
}

// closed reports whether ln no longer accepts connections. It asks the
// listener itself rather than dialling its address: once freed, the port
// may be given at once to another test's listener.
func closed(ln net.Listener) bool {
	tl := ln.(*net.TCPListener)
	if err := tl.SetDeadline(time.Now().Add(5 * time.Millisecond)); err != nil {
		return true // closed: deadlines cannot be set
	}
	c, err := tl.Accept()
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, net.ErrClosed)
}

// serveGateway is startGateway with an admin listener, a grace period, a
// Serve the test can end (stop) and, if waitReady is false, no wait for the
// control plane.
func serveGateway(t testing.TB, cp *controltest.ControlPlane, yaml string, grace time.Duration, waitReady bool) *servedGateway {
	t.Helper()
	return serveGatewayAs(t, cp, cp.Join(t, "gateway"), nil, yaml, grace, waitReady)
}

// serveGatewayAs is serveGateway with the gateway's identity joined
// already, so that the control plane may be down when the gateway starts,
// and a logger (nil discards).
func serveGatewayAs(t testing.TB, cp *controltest.ControlPlane, src identity.Source, logger *slog.Logger, yaml string, grace time.Duration, waitReady bool) *servedGateway {
	t.Helper()
	full := fmt.Sprintf("listen:\n  http: 127.0.0.1:0\n  admin: 127.0.0.1:0\ncontrol_plane:\n  url: %s\n  service: gateway\n%s", cp.URL, yaml)
	cfg, err := gateway.ParseConfig([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := gateway.Bind(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g, err := gateway.New(context.Background(), gateway.Options{Config: cfg, Identity: src, Logger: logger})
	if err != nil {
		ls.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sg := &servedGateway{Gateway: g, addr: ls.HTTP.Addr().String(), admin: "http://" + ls.Admin.Addr().String(),
		cancel: cancel, served: make(chan error, 1), ls: ls}
	sg.url = "http://" + sg.addr
	go func() {
		defer close(sg.served)
		sg.served <- g.Serve(ctx, ls, grace)
	}()
	t.Cleanup(func() {
		cancel()
		<-sg.served
		g.Close()
	})
	if waitReady {
		select {
		case <-g.Ready():
		case <-time.After(time.Minute):
			t.Fatal("gateway not ready after a minute")
		}
	}
	return sg
}

// stop ends Serve and returns its result, failing the test if it takes
// longer than within.
func (sg *servedGateway) stop(t testing.TB, within time.Duration) error {
	t.Helper()
	sg.cancel()
	select {
	case err := <-sg.served:
		return err
	case <-time.After(within):
		t.Fatalf("Serve still running %v after its context ended", within)
		return nil
	}
}

// proxyEnv is a control plane and service "shop" with the handlers the
// proxy tests need besides the echo of gateway_test.go:
//
//	/stream?n=N&every=D&type=T&first=F&pad=P&lockstep=1
//	                            N chunks ("data: i\n\n", P bytes longer), flushed,
//	                            one every D, the first after F; with lockstep, each
//	                            after the test said (on received) that the client
//	                            has the one before
//	/ws                         the server half of an RFC 6455 handshake, then an echo of raw bytes
//	/slow?d=D                   answers after D (or when the request is cancelled)
//	/held                       answers once the test closes release (or when the request is cancelled)
type proxyEnv struct {
	cp   *controltest.ControlPlane
	shop *upstream

	streamed   atomic.Int64  // chunks /stream has begun to write
	received   chan struct{} // the test sends when its client has a chunk of a lockstep /stream
	streamDone chan error    // receives when a /stream ends: nil if it wrote every chunk
	arrived    chan string   // the path of each /slow or /held request, when it arrives
	release    chan struct{} // closed by the test to let /held requests answer
	upgrades   atomic.Int64  // connections /ws has upgraded
	wsClosed   chan struct{} // receives when an upgraded connection ends
}

func newProxyEnv(t *testing.T) *proxyEnv {
	t.Helper()
	p := &proxyEnv{arrived: make(chan string, 16), release: make(chan struct{}), received: make(chan struct{}, 1), wsClosed: make(chan struct{}, 16), streamDone: make(chan error, 16)}
	p.cp = controltest.Start(t, controltest.Config{})
	p.cp.ApplyPolicy(t, policyYAML)
	p.shop = startUpstream(t, p.cp, "shop", func(mux *http.ServeMux) {
		mux.HandleFunc("/stream", p.stream)
		mux.HandleFunc("/ws", p.websocket)
		mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
			d, _ := time.ParseDuration(r.URL.Query().Get("d"))
			select {
			case p.arrived <- r.URL.Path:
			default:
			}
			select {
			case <-time.After(d):
				fmt.Fprintf(w, "slept %v\n", d)
			case <-r.Context().Done():
			}
		})
		mux.HandleFunc("/held", func(w http.ResponseWriter, r *http.Request) {
			select {
			case p.arrived <- r.URL.Path:
			default:
			}
			select {
			case <-p.release:
				fmt.Fprintln(w, "released")
			case <-r.Context().Done():
			}
		})
	})
	return p
}

func (p *proxyEnv) stream(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	every, _ := time.ParseDuration(r.URL.Query().Get("every"))
	first, _ := time.ParseDuration(r.URL.Query().Get("first"))
	pad, _ := strconv.Atoi(r.URL.Query().Get("pad"))
	lockstep := r.URL.Query().Get("lockstep") == "1"
	w.Header().Set("Content-Type", r.URL.Query().Get("type"))
	rc := http.NewResponseController(w)
	var err error
	defer func() {
		select {
		case p.streamDone <- err:
		default:
		}
	}()
	for i := range n {
		wait := every
		if i == 0 {
			wait = first
		}
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
			err = r.Context().Err()
			return
		}
		p.streamed.Add(1)
		fmt.Fprintf(w, "data: %d%s\n\n", i, strings.Repeat("x", pad))
		if err = rc.Flush(); err != nil {
			return
		}
		if lockstep {
			select {
			case <-p.received:
			case <-r.Context().Done():
				err = r.Context().Err()
				return
			}
		}
	}
}

// websocketGUID is the constant of RFC 6455, section 1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func websocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (p *proxyEnv) websocket(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" ||
		!strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
		http.Error(w, "not a WebSocket handshake", http.StatusBadRequest)
		return
	}
	// The upgrade request came with the gateway's actor token, like any
	// other.
	if a, ok := actor.FromContext(r.Context()); !ok || !a.IP.IsValid() {
		http.Error(w, "no actor", http.StatusForbidden)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer func() {
		conn.Close()
		p.wsClosed <- struct{}{}
	}()
	p.upgrades.Add(1)
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", websocketAccept(key))
	if brw.Flush() != nil {
		return
	}
	io.Copy(conn, brw.Reader)
}

// dialWebSocket does the client half of the handshake through the gateway
// at addr and returns the upgraded connection and its reader.
func dialWebSocket(t *testing.T, addr, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	key := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: http://chat.example.com\r\n\r\n", path, key)
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("handshake through the gateway: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		t.Fatalf("handshake through the gateway: %s %s", resp.Status, body)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), websocketAccept(key); got != want {
		t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("Upgrade %q", resp.Header.Get("Upgrade"))
	}
	conn.SetReadDeadline(time.Time{})
	return conn, br
}

// echo writes msg on an upgraded connection and reads it back.
func echo(t *testing.T, conn net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(time.Minute))
	defer conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatalf("write on the upgraded connection: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("read the echo of %q: %v (got %q)", msg, err, got)
	}
	if string(got) != msg {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

// rawRequest sends raw bytes on a new connection to addr and returns the
// status line of the answer ("" if the connection closed without one).
func rawRequest(t *testing.T, addr, raw string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}

// freePort returns an address on loopback where nothing listens.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// logBuffer collects what a logger writes, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// access returns the access log records written so far.
func (b *logBuffer) access() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var records []map[string]any
	for _, line := range strings.Split(b.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "access" {
			records = append(records, rec)
		}
	}
	return records
}
