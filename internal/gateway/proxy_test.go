package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/internal/gateway"
)

// The tests of this file send real traffic through a gateway on loopback to
// service "shop" (mTLS, the rampart SDK) and say what the proxy does with
// streams, upgrades, forwarding headers, bad input and shutdown.

// shopRoute is the YAML of one route to the shop service.
func (p *proxyEnv) route(name, prefix, extra string) string {
	return fmt.Sprintf("  - name: %s\n    path_prefix: %s\n    upstream: %s\n    service: shop\n%s", name, prefix, p.shop.url, extra)
}

// errorJSON checks that resp is the gateway's JSON refusal with status want.
func errorJSON(t *testing.T, what string, resp *http.Response, want int) {
	t.Helper()
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if resp.StatusCode != want {
		t.Errorf("%s: %s %s, want %d", what, resp.Status, data, want)
		return
	}
	if err := json.Unmarshal(data, &e); err != nil || e.Error == "" || len(e.RequestID) != 32 ||
		resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Request-Id") != e.RequestID {
		t.Errorf("%s: body %q (Content-Type %q): want JSON {error, request_id}", what, data, resp.Header.Get("Content-Type"))
	}
}

func TestStreamedResponsesReachTheClientChunkByChunk(t *testing.T) {
	if testing.Short() {
		t.Skip("streamed responses (Server-Sent Events, bodies of unknown length) reach the client chunk by chunk and outlive write_timeout; about 8 s of paced chunks, run without -short")
	}
	p := newProxyEnv(t)
	// write_timeout is shorter than the streams: a stream that keeps
	// flushing must outlive it.
	gw := serveGateway(t, p.cp, "limits: {write_timeout: 1s}\nroutes:\n"+p.route("shop", "/", ""), 2*time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	for _, c := range []struct {
		name, typ string
		first     time.Duration // before the first chunk
		pad       int           // bytes added to each chunk
	}{
		{"Server-Sent Events", "text/event-stream", 0, 0},
		{"a body of unknown length", "application/octet-stream", 0, 0},
		{"large chunks, the first after write_timeout", "text/event-stream", 1500 * time.Millisecond, 32 << 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			const n, every = 20, 100 * time.Millisecond
			p.streamed.Store(0)
			start := time.Now()
			resp, err := client.Get(fmt.Sprintf("%s/stream?n=%d&every=%v&type=%s&first=%v&pad=%d&lockstep=1", gw.url, n, every, c.typ, c.first, c.pad))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.ContentLength != -1 {
				t.Fatalf("%s, Content-Length %d", resp.Status, resp.ContentLength)
			}
			br := bufio.NewReader(resp.Body)
			var first time.Duration
			for i := range n {
				event, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("chunk %d after %v: %v", i, time.Since(start).Round(time.Millisecond), err)
				}
				br.ReadString('\n')
				if want := fmt.Sprintf("data: %d%s\n", i, strings.Repeat("x", c.pad)); event != want {
					t.Fatalf("chunk %d is %.20q (%d bytes), want %.20q (%d bytes)", i, event, len(event), want, len(want))
				}
				// The upstream writes the next chunk only once the client
				// has this one: a gateway that buffered would leave both
				// waiting until the client's timeout. Counted, not timed.
				if sent := p.streamed.Load(); sent != int64(i+1) {
					t.Errorf("chunk %d arrived when the upstream had written %d", i, sent)
				}
				p.received <- struct{}{}
				if i == 0 {
					first = time.Since(start)
				}
			}
			total := time.Since(start)
			t.Logf("first chunk after %v, all %d after %v", first.Round(time.Millisecond), n, total.Round(time.Millisecond))
			// That each chunk came before the next was written is
			// proved above; how soon is load's business. The last cannot
			// come before the upstream paced it out: a lower bound, which a
			// busy machine only moves later.
			if total < c.first+(n-1)*every {
				t.Errorf("last chunk after %v: want it after %v, when the upstream wrote it", total, c.first+(n-1)*every)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("after the last chunk: %v, want EOF", err)
			}
			if err := <-p.streamDone; err != nil {
				t.Errorf("the upstream's stream ended with %v", err)
			}
		})
	}

	t.Run("a client that stops reading a stream is cut after write_timeout", func(t *testing.T) {
		conn, err := net.Dial("tcp", gw.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// 64 chunks of 256 KB, more than the socket buffers hold, at once.
		fmt.Fprintf(conn, "GET /stream?n=64&type=text/event-stream&pad=%d HTTP/1.1\r\nHost: x\r\n\r\n", 256<<10)
		start := time.Now()
		select {
		case err := <-p.streamDone:
			if err == nil {
				t.Fatal("the upstream wrote the whole stream to a client that reads nothing")
			}
			t.Logf("the upstream's stream ended after %v with %v", time.Since(start).Round(time.Millisecond), err)
		case <-time.After(time.Minute):
			t.Fatal("the stream to a client that reads nothing is still open after a minute")
		}
	})
}

func TestWebSocketUpgradeToAnMTLSUpstream(t *testing.T) {
	p := newProxyEnv(t)
	// read_timeout and write_timeout bound requests, not the upgraded
	// connection that outlives its request.
	var log logBuffer
	gw := serveGatewayAs(t, p.cp, p.cp.Join(t, "gateway"), slog.New(slog.NewJSONHandler(&log, nil)),
		"limits: {read_timeout: 1s, write_timeout: 1s}\nroutes:\n"+p.route("shop", "/", ""), 2*time.Second, true)
	conn, br := dialWebSocket(t, gw.addr, "/ws")
	echo(t, conn, br, "hello through the gateway")
	// Binary data, as frames would carry, in both directions.
	echo(t, conn, br, string([]byte{0x82, 0x05, 0x00, 0xff, 0x10, 0x0d, 0x0a}))
	time.Sleep(1500 * time.Millisecond)
	echo(t, conn, br, "still open after read_timeout and write_timeout")
	big := strings.Repeat("0123456789abcdef", 64<<10/16)
	echo(t, conn, br, big)
	if n := p.upgrades.Load(); n != 1 {
		t.Errorf("%d upgrades at the upstream, want 1", n)
	}
	// The client closing ends the upstream's side.
	conn.Close()
	select {
	case <-p.wsClosed:
	case <-time.After(time.Minute):
		t.Error("the upstream's connection is still open a minute after the client closed")
	}
	// The access log has the upgrade, once it ended.
	deadline := time.Now().Add(60 * time.Second)
	for {
		recs := log.access()
		if len(recs) == 1 && recs[0]["path"] == "/ws" && recs[0]["status"] == float64(101) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("access log %v, want one record of /ws with status 101", recs)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Run("a handshake the upstream refuses gets its answer, not 101", func(t *testing.T) {
		conn, err := net.Dial("tcp", gw.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// No Sec-WebSocket-Key: the upstream refuses, and the client gets its 400, not a 101.
		fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s, want the upstream's 400", resp.Status)
		}
	})
}

func TestForwardingHeadersAreBelievedOnlyFromTrustedProxies(t *testing.T) {
	p := newProxyEnv(t)
	routes := "routes:\n" + p.route("shop", "/", "")
	trusting := serveGateway(t, p.cp, "trusted_proxies: [127.0.0.1/32]\n"+routes, time.Second, true)
	trustingFwd := serveGateway(t, p.cp, "trusted_proxies: [127.0.0.1/32]\ntrusted_proxy_header: Forwarded\n"+routes, time.Second, true)
	distrusting := serveGateway(t, p.cp, routes, time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	get := func(base string, hdr http.Header) (int, saw) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/api/items", nil)
		req.Header = hdr
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s saw
		if resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, s
	}
	for _, c := range []struct {
		name      string
		forwarded bool // the trusted proxy writes Forwarded, not X-Forwarded-For
		header    http.Header
		want      string // the actor IP behind a trusted 127.0.0.1, or "400"
	}{
		{"X-Forwarded-For with one address", false, http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9"},
		{"X-Forwarded-For with a chain: the rightmost untrusted hop", false, http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.9"}}, "203.0.113.9"},
		{"X-Forwarded-For on two lines", false, http.Header{"X-Forwarded-For": {"198.51.100.1", "203.0.113.9"}}, "203.0.113.9"},
		{"Forwarded", true, http.Header{"Forwarded": {"for=203.0.113.10;proto=https"}}, "203.0.113.10"},
		{"Forwarded with IPv6 and a port", true, http.Header{"Forwarded": {`for="[2001:db8::7]:4711"`}}, "2001:db8::7"},
		{"Forwarded is not read from an X-Forwarded-For proxy", false, http.Header{"Forwarded": {"for=198.51.100.1"}, "X-Forwarded-For": {"203.0.113.11"}}, "203.0.113.11"},
		{"X-Forwarded-For is not read from a Forwarded proxy", true, http.Header{"Forwarded": {"for=203.0.113.11"}, "X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.11"},
		{"a chain through another trusted hop", false, http.Header{"X-Forwarded-For": {"203.0.113.12, 127.0.0.1"}}, "203.0.113.12"},
		{"garbage is refused", false, http.Header{"X-Forwarded-For": {"not an address"}}, "400"},
		{"no header", false, http.Header{}, "127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := trusting.url
			if c.forwarded {
				base = trustingFwd.url
			}
			status, s := get(base, c.header)
			switch {
			case c.want == "400":
				if status != 400 {
					t.Errorf("behind a trusted proxy: %d, actor IP %q; want 400", status, s.ActorIP)
				}
			case status != 200 || s.ActorIP != c.want || s.ForwardedFor != c.want:
				t.Errorf("behind a trusted proxy: %d, actor IP %q, X-Forwarded-For %q; want %q", status, s.ActorIP, s.ForwardedFor, c.want)
			}
			if _, ok := s.Headers["Forwarded"]; ok {
				t.Errorf("the client's Forwarded header reached the upstream: %q", s.Headers["Forwarded"])
			}
			status, s = get(distrusting.url, c.header)
			if status != 200 || s.ActorIP != "127.0.0.1" || s.ForwardedFor != "127.0.0.1" {
				t.Errorf("without trusted proxies: %d, actor IP %q, X-Forwarded-For %q; want the peer, 127.0.0.1", status, s.ActorIP, s.ForwardedFor)
			}
		})
	}
}

func TestClientCannotSendIdentityHeadersUpstream(t *testing.T) {
	p := newProxyEnv(t)
	gw := serveGateway(t, p.cp, "routes:\n"+p.route("shop", "/", ""), time.Second, true)
	forged := "eyJhbGciOiJFUzI1NiIsImtpZCI6ImZvcmdlZCJ9.eyJpc3MiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy9zdmMvYWRtaW4ifQ.c2ln"
	req, _ := http.NewRequest("GET", gw.url+"/api/items", nil)
	req.Header = http.Header{
		actor.Header:              {forged, "second"},
		"X-Forwarded-Client-Cert": {"By=spiffe://example.org/svc/admin;URI=spiffe://example.org/svc/admin"},
		"X-Real-Ip":               {"10.0.0.1"},
		"X-Spiffe-Id":             {"spiffe://example.org/svc/admin"},
		"X-Rampart-User":          {"admin"},
		"X-Request-Id":            {"chosen-by-the-client"},
		"True-Client-Ip":          {"10.0.0.2"},
		// Servers that map headers to variables (CGI, WSGI, PHP) read
		// these as the names with "-".
		"Rampart_Actor":           {forged},
		"X_Forwarded_For":         {"10.0.0.3"},
		"x_real_ip":               {"10.0.0.4"},
		"X-Forwarded_Client-Cert": {"By=spiffe://example.org/svc/admin"},
		"Authorization":           {"Basic YWRtaW46YWRtaW4="},
		"Http_Authorization":      {"kept: not a header the gateway reads"},
		// Naming the gateway's own headers hop-by-hop must not remove them.
		"Connection": {"Rampart-Actor, X-Forwarded-For, X-Request-Id"},
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s saw
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: %v", resp.Status, err)
	}
	for _, name := range []string{"X-Forwarded-Client-Cert", "X-Real-Ip", "X-Spiffe-Id", "X-Rampart-User", "True-Client-Ip", "Authorization"} {
		if v, ok := s.Headers[name]; ok {
			t.Errorf("%s reached the upstream: %q", name, v)
		}
	}
	for name, v := range s.Headers {
		if strings.Contains(name, "_") && name != "Http_authorization" {
			t.Errorf("%s reached the upstream: %q", name, v)
		}
	}
	if len(s.Headers["Http_authorization"]) != 1 {
		t.Errorf("a header that only looks like another was dropped: %v", s.Headers)
	}
	if v := s.Headers["X-Forwarded-For"]; len(v) != 1 || v[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For at the upstream %q, want the gateway's 127.0.0.1", v)
	}
	if v := s.Headers["X-Request-Id"]; len(v) != 1 || len(v[0]) != 32 {
		t.Errorf("X-Request-Id at the upstream %q, want the gateway's", v)
	}
	tokens := s.Headers[actor.Header]
	if len(tokens) != 1 || tokens[0] == forged {
		t.Fatalf("actor tokens at the upstream: %q, want one, the gateway's", tokens)
	}
	parts := strings.Split(tokens[0], ".")
	if len(parts) != 3 {
		t.Fatalf("actor token %q is not a JWS", tokens[0])
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Issuer string `json:"iss"`
	}
	json.Unmarshal(payload, &claims)
	if claims.Issuer != "spiffe://example.org/svc/gateway" {
		t.Errorf("actor token issued by %q, want the gateway", claims.Issuer)
	}
	// The SDK verified it (it names the actor) and the caller is the gateway.
	if s.ActorIP != "127.0.0.1" || s.Caller != "spiffe://example.org/svc/gateway" {
		t.Errorf("upstream saw actor IP %q from caller %q", s.ActorIP, s.Caller)
	}
}

func TestBadInputIsRefusedAndTheGatewayKeepsServing(t *testing.T) {
	p := newProxyEnv(t)
	gw := serveGateway(t, p.cp, fmt.Sprintf(`limits: {max_header_bytes: 4096, max_body_bytes: 1024, read_header_timeout: 1s, upstream_timeout: 5s}
routes:
%s%s  - name: down
    path_prefix: /down/
    upstream: http://%s
`, p.route("shop", "/", ""), p.route("raw", "/raw/", "    inspect_body: false\n"), freePort(t)), 2*time.Second, true)
	client := &http.Client{Timeout: time.Minute}
	ok := func(t *testing.T) {
		t.Helper()
		resp, err := client.Get(gw.url + "/api/items")
		if err != nil {
			t.Fatalf("ordinary request after bad input: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("ordinary request after bad input: %s", resp.Status)
		}
	}

	t.Run("headers over max_header_bytes get 431", func(t *testing.T) {
		for _, size := range []int{2000, 16 << 10, 1 << 20} {
			req, _ := http.NewRequest("GET", gw.url+"/api/items", nil)
			req.Header.Set("X-Padding", strings.Repeat("a", size))
			resp, err := client.Do(req)
			want := 200
			if size > 4096+4096 { // net/http allows 4 KB of slack
				want = http.StatusRequestHeaderFieldsTooLarge
			}
			if err != nil {
				t.Fatalf("%d bytes of header: %v", size, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%d bytes of header: %s, want %d", size, resp.Status, want)
			}
			ok(t)
		}
	})

	t.Run("bodies over max_body_bytes get 413", func(t *testing.T) {
		body := append([]byte("a="), bytes.Repeat([]byte("x"), 8<<10)...)
		for _, path := range []string{"/api/upload", "/raw/upload"} {
			for _, chunked := range []bool{false, true} {
				var r io.Reader = bytes.NewReader(body)
				if chunked {
					r = struct{ io.Reader }{r} // no length: sent chunked
				}
				req, _ := http.NewRequest("POST", gw.url+path, r)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s chunked=%v: %v", path, chunked, err)
				}
				if chunked && !resp.Close {
					t.Errorf("%s chunked: the connection stays open after the 413, to read the rest of the body", path)
				}
				errorJSON(t, fmt.Sprintf("%s chunked=%v", path, chunked), resp, http.StatusRequestEntityTooLarge)
				ok(t)
			}
			// At the limit passes.
			req, _ := http.NewRequest("POST", gw.url+path, struct{ io.Reader }{bytes.NewReader(body[:1024])})
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var s saw
			json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if resp.StatusCode != 200 || s.BodyBytes != 1024 {
				t.Errorf("%s with 1024 bytes: %s, upstream read %d", path, resp.Status, s.BodyBytes)
			}
		}
	})

	t.Run("malformed HTTP gets 400", func(t *testing.T) {
		for _, c := range []struct{ name, raw, want string }{
			{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not HTTP at all\r\n\r\n", "400"},
			{"no version", "GET /\r\n\r\n", "400"},
			{"header without colon", "GET / HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n", "400"},
			{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", "400"},
			{"two different Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "400"},
			{"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", "400"},
			{"bad chunk size", "POST /api/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400"},
			{"control character in a header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", "400"},
			{"unsupported transfer encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "501"},
		} {
			got := rawRequest(t, gw.addr, c.raw)
			if !strings.HasPrefix(got, "HTTP/1.1 "+c.want+" ") {
				t.Errorf("%s: %q, want %s", c.name, got, c.want)
			}
			ok(t)
		}
	})

	t.Run("a Content-Length beside chunked framing is ignored, so nothing is smuggled", func(t *testing.T) {
		conn, err := net.Dial("tcp", gw.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		// By Content-Length the body is "3\r\na=b\r\n0\r\n\r\nGET /smuggled..."; by
		// the chunks, it is "a=b" and a second request follows.
		io.WriteString(conn, "POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
			"Content-Length: 45\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na=b\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(conn)
		for i, want := range []string{"/api/x", "/smuggled"} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			var s saw
			json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if resp.StatusCode != 200 || s.Path != want || (i == 0 && s.BodyBytes != 3) {
				t.Errorf("response %d: %s, upstream saw %q with %d body bytes; want %s", i, resp.Status, s.Path, s.BodyBytes, want)
			}
		}
	})

	t.Run("slowloris connections are cut by read_header_timeout while others are served", func(t *testing.T) {
		// Each connection sends a header byte every 500 ms until the
		// gateway cuts it: without read_header_timeout it would stay open
		// until the test's own deadline of a minute. How soon after the
		// second it is cut is the machine's business; not before it is
		// the gateway's (a lower bound, which load only moves later).
		const conns = 50
		start := time.Now()
		cut := make(chan time.Duration, conns)
		var open atomic.Int32
		open.Store(conns)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range conns {
			c, err := net.Dial("tcp", gw.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			wg.Add(2)
			go func() { // one header byte every 500 ms, until cut
				defer wg.Done()
				io.WriteString(c, "GET /api/items HTTP/1.1\r\nHost: x\r\nX-Slow: ")
				for {
					select {
					case <-stop:
						return
					case <-time.After(500 * time.Millisecond):
					}
					if _, err := c.Write([]byte("a")); err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				defer open.Add(-1)
				c.SetReadDeadline(time.Now().Add(time.Minute))
				_, err := io.Copy(io.Discard, c) // until the gateway closes
				if errors.Is(err, os.ErrDeadlineExceeded) {
					cut <- -1
					return
				}
				cut <- time.Since(start)
			}()
		}
		// Ordinary requests are served while the slow connections are
		// held open (at least one, however long it takes).
		var latencies []time.Duration
		for len(latencies) == 0 || open.Load() == conns {
			t0 := time.Now()
			ok(t)
			latencies = append(latencies, time.Since(t0))
			time.Sleep(20 * time.Millisecond)
		}
		for range conns {
			if d := <-cut; d < 0 {
				t.Error("a slowloris connection was still open after a minute, want it cut after read_header_timeout (1 s)")
			} else if d < 900*time.Millisecond {
				t.Errorf("a slowloris connection was cut after %v, before read_header_timeout (1 s)", d)
			}
		}
		close(stop)
		slices.Sort(latencies)
		t.Logf("%d ordinary requests during the attack: p50 %v, max %v", len(latencies), latencies[len(latencies)/2], latencies[len(latencies)-1])
		wg.Wait()
	})

	t.Run("an upstream that is down gets 502", func(t *testing.T) {
		resp, err := client.Get(gw.url + "/down/x")
		if err != nil {
			t.Fatal(err)
		}
		errorJSON(t, "upstream down", resp, http.StatusBadGateway)
	})

	t.Run("an upstream slower than upstream_timeout gets 504", func(t *testing.T) {
		start := time.Now()
		resp, err := (&http.Client{Timeout: time.Minute}).Get(gw.url + "/slow?d=40s")
		if err != nil {
			t.Fatal(err)
		}
		errorJSON(t, "slow upstream", resp, http.StatusGatewayTimeout)
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("504 after %v, want about 5 s (upstream_timeout), long before the upstream answers at 40 s", d)
		}
	})
}

func TestPathsThatUpstreamsMayReadDifferentlyAreRefused(t *testing.T) {
	p := newProxyEnv(t)
	key := "k-" + strings.Repeat("8", 40)
	// The WAF is off: its path traversal rules would hide what the
	// routing does.
	gw := serveGateway(t, p.cp, fmt.Sprintf("waf: {mode: off}\nauth:\n  api_keys: [{name: ops, sha256: %x}]\nroutes:\n%s%s",
		sha256.Sum256([]byte(key)), p.route("public", "/", "    auth: off\n"), p.route("admin", "/admin/", "    auth: required\n")), time.Second, true)
	get := func(path string, hdr ...string) string {
		t.Helper()
		status := rawRequest(t, gw.addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n"+strings.Join(hdr, "")+"\r\n")
		if f := strings.Fields(status); len(f) > 1 {
			return f[1]
		}
		return status
	}
	for _, path := range []string{
		"/public/../admin/users",
		"/public/%2e%2e/admin/users",
		"/public/%2E%2e/admin/users",
		"/public/..%2fadmin/users",
		"/public/..;/admin/users",
		"/public/..\\admin/users",
		"/public/%2e%2e%5cadmin/users",
		"/./admin/users",
		"/public/..",
		"/public/.",
		"//admin/users",
		"/public//admin/users",
		"/public%2F..%2Fadmin/users",
		"/admin%2fusers",
	} {
		if got := get(path); got != "400" {
			t.Errorf("GET %s: %s, want 400", path, got)
		}
	}
	for path, want := range map[string]string{
		"/admin/users":           "401",
		"/public/file..txt":      "200",
		"/public/.well-known/a":  "200",
		"/public/...":            "200",
		"/public/a.b/c..d/..e/.": "400",
	} {
		if got := get(path); got != want {
			t.Errorf("GET %s: %s, want %s", path, got, want)
		}
	}
	if got := get("/admin/users", "X-Api-Key: "+key+"\r\n"); got != "200" {
		t.Errorf("GET /admin/users with the key: %s", got)
	}
}

// TestShutdownLetsRequestsInFlightFinish holds a request at the upstream
// until the test has seen the listeners close, rather than letting it
// sleep for a time a busy machine might outlast before the test looks.
func TestShutdownLetsRequestsInFlightFinish(t *testing.T) {
	p := newProxyEnv(t)
	gw := serveGateway(t, p.cp, "routes:\n"+p.route("shop", "/", ""), time.Minute, true)
	type result struct {
		status int
		body   string
		err    error
		at     time.Time
	}
	done := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 2 * time.Minute}).Get(gw.url + "/held")
		if err != nil {
			done <- result{err: err, at: time.Now()}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, string(body), err, time.Now()}
	}()
	select {
	case <-p.arrived:
	case <-time.After(time.Minute):
		t.Fatal("the request did not reach the upstream")
	}
	gw.cancel()
	// The listeners close, the admin one too, while the request is still
	// in flight.
	deadline := time.Now().Add(time.Minute)
	for _, ln := range []net.Listener{gw.ls.HTTP, gw.ls.Admin} {
		for !closed(ln) {
			if time.Now().After(deadline) {
				t.Fatalf("%s still accepts connections a minute after Serve's context ended", ln.Addr())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	select {
	case r := <-done:
		t.Fatalf("the request in flight ended (%d, %v) before the upstream answered", r.status, r.err)
	case err := <-gw.served:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	close(p.release)
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "released\n" {
		t.Fatalf("request in flight: %d %q %v", r.status, r.body, r.err)
	}
	select {
	case err := <-gw.served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		if time.Now().Before(r.at) {
			t.Error("Serve returned before the request in flight was answered")
		}
	case <-time.After(time.Minute):
		t.Fatal("Serve still running a minute after the last request ended")
	}
	if !closed(gw.ls.HTTP) {
		t.Error("the listener accepts connections after Serve returned")
	}

	t.Run("upgraded connections are closed at the end of the grace", func(t *testing.T) {
		// The grace is long enough for an echo on a busy machine; Serve
		// must not return before it ends (a lower bound, which load only
		// moves later), and must close the upgraded connection when it
		// does.
		const grace = 2 * time.Second
		gw := serveGateway(t, p.cp, "routes:\n"+p.route("shop", "/", ""), grace, true)
		conn, br := dialWebSocket(t, gw.addr, "/ws")
		echo(t, conn, br, "before the shutdown")
		start := time.Now()
		gw.cancel()
		// Still usable during the grace.
		echo(t, conn, br, "during the grace")
		select {
		case err := <-gw.served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("Serve still running a minute after its context ended")
		}
		took := time.Since(start)
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("upgraded connection after Serve returned: read %d, %v; want EOF", n, err)
		}
		select {
		case <-p.wsClosed:
		case <-time.After(time.Minute):
			t.Error("the upstream's side of the upgraded connection is still open a minute after Serve returned")
		}
		if took < grace-100*time.Millisecond {
			t.Errorf("Serve returned %v after its context ended, want after the grace of %v", took, grace)
		}
	})
}

func TestHealthAndReadiness(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	src := cp.Join(t, "gateway")
	cp.Stop()
	gw := serveGatewayAs(t, cp, src, nil, fmt.Sprintf("routes:\n  - upstream: http://%s\n", freePort(t)), time.Second, false)
	client := &http.Client{Timeout: time.Minute}
	get := func(url string) (int, map[string]any) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Errorf("GET %s: %v", url, err)
		}
		return resp.StatusCode, body
	}
	// Give the gateway time to try, and fail, to reach the control plane.
	time.Sleep(300 * time.Millisecond)
	if status, body := get(gw.admin + "/healthz"); status != 200 || body["status"] != "ok" {
		t.Errorf("/healthz with the control plane down: %d %v", status, body)
	}
	if status, body := get(gw.admin + "/readyz"); status != 503 {
		t.Errorf("/readyz before the first sync: %d %v, want 503", status, body)
	}
	resp, err := client.Get(gw.url + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	errorJSON(t, "client traffic before the first sync", resp, http.StatusServiceUnavailable)

	cp.Restart(t)
	start := time.Now()
	select {
	case <-gw.Ready():
	case <-time.After(time.Minute):
		t.Fatal("not ready a minute after the control plane came back")
	}
	t.Logf("ready %v after the control plane came back", time.Since(start).Round(time.Millisecond))
	if status, body := get(gw.admin + "/readyz"); status != 200 || body["status"] != "ready" {
		t.Errorf("/readyz after the sync: %d %v", status, body)
	}
	// Client traffic now reaches the route (whose upstream is down).
	resp, err = client.Get(gw.url + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	errorJSON(t, "client traffic after the sync", resp, http.StatusBadGateway)
	// The admin listener serves nothing else.
	if resp, err := client.Get(gw.admin + "/anything"); err != nil || resp.StatusCode != 404 {
		t.Errorf("admin /anything: %v %v", resp.Status, err)
	} else {
		resp.Body.Close()
	}
}

func TestHTTPSListener(t *testing.T) {
	p := newProxyEnv(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "edge.crt"), filepath.Join(dir, "edge.key")
	roots := writeSelfSigned(t, certFile, keyFile)
	cfg, err := gateway.ParseConfig(fmt.Appendf(nil, "listen: {https: 127.0.0.1:0, tls_cert: %s, tls_key: %s}\ncontrol_plane: {url: %q}\nroutes:\n%s",
		certFile, keyFile, p.cp.URL, p.route("shop", "/", "")))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(context.Background(), gateway.Options{Config: cfg, Identity: p.cp.Join(t, "gateway"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	<-g.Ready()

	t.Run("a bad certificate is an error and nothing is served", func(t *testing.T) {
		ls, err := gateway.Bind(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ls.Close()
		plain, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls.HTTP = plain
		broken := *cfg
		broken.Listen.TLSKey = certFile // not a key
		bg, err := gateway.New(context.Background(), gateway.Options{Config: &broken, Identity: p.cp.Join(t, "gateway"), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer bg.Close()
		if err := bg.Serve(context.Background(), ls, time.Second); err == nil || !strings.Contains(err.Error(), "tls_key") {
			t.Fatalf("Serve with a bad key: %v", err)
		}
		// The plain listener was not served either: nothing answers.
		c, err := net.Dial("tcp", plain.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if n, err := c.Read(make([]byte, 1)); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the plain listener answered (%d bytes, %v) after Serve failed", n, err)
		}
	})

	ls, err := gateway.Bind(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, ls, time.Second) }()
	defer func() {
		cancel()
		<-served
	}()
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	for _, path := range []string{"/api/items", "/stream?n=3&every=10ms&type=text/event-stream"} {
		resp, err := client.Get("https://" + ls.HTTPS.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Errorf("%s over HTTPS: %s %s", path, resp.Proto, resp.Status)
		}
		if path == "/api/items" {
			var s saw
			json.Unmarshal(body, &s)
			if fmt.Sprint(s.Headers["X-Forwarded-Proto"]) != "[https]" || s.ActorIP != "127.0.0.1" {
				t.Errorf("upstream saw X-Forwarded-Proto %q, actor IP %q", s.Headers["X-Forwarded-Proto"], s.ActorIP)
			}
		} else if string(body) != "data: 0\n\ndata: 1\n\ndata: 2\n\n" {
			t.Errorf("stream over HTTP/2: %q", body)
		}
	}
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key, and
// returns a pool that trusts it.
func writeSelfSigned(t *testing.T, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
