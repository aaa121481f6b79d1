package rampart_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/benchmesh"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/internal/policy/policytest"
)

// The benchmarks of zero trust per hop and per handshake. Repeat them by
// running the test binary several times rather than with -count, which runs
// all the repetitions of one sub-benchmark before the next one starts:
//
//	go test -c -o /tmp/rampart.test .
//	for i in 1 2 3 4 5 6; do
//		/tmp/rampart.test -test.run '^$' -test.bench ZeroTrustHop -test.benchtime 2000x
//	done > hop.txt
//	benchstat hop.txt
//
// The micro-benchmarks behind the per-hop figures live with their code and
// are not repeated here:
//
//	policy decision, 200 rules    internal/policy    BenchmarkAuthorizer
//	actor token, cached and cold  actor              BenchmarkVerify, BenchmarkFirstVerify (ES256, EdDSA)
//	decision set lookup           internal/decision  BenchmarkRefusal

// hopBody is the JSON body of the benchmarked call: the middleware captures
// it and the handler's walk of rampart.Inputs parses it.
const hopBody = `{"channel":"email","template":"order-shipped","locale":"fr-FR","order":"80417","note":"leave at the door"}`

// hopUserAgent is the User-Agent of the benchmarked call, an input too.
const hopUserAgent = "orders-client/1.4 (go1.26)"

// hopMesh is a control plane and one service, policytest.Service, served
// twice on 127.0.0.1 with the same SVID: once as plain mTLS (no Rampart),
// once behind agent.Handler with zero trust on.
type hopMesh struct {
	plain, rampart   hopServer
	handler, guarded http.Handler        // the service's mux, and agent.Handler(mux)
	caller           *identity.CASource  // the service the policy's last rule admits
	callerChain      []*x509.Certificate // its SVID, as the server sees it
	serverID         spiffeid.ID
	signer           *actor.Signer
	audience         actor.Audience
	method, path     string
}

type hopServer struct {
	url   string
	conns *atomic.Int64 // connections accepted
}

// hopTarget is what the benchmarked call asks for after the path: two query
// parameters, inputs like the body.
const hopTarget = "?notify=true&priority=high"

// startHopMesh starts the control plane with policytest.Bench (200 allow
// rules for the service) and 50 decisions, none of which matches the
// benchmark's actors, so that every lookup is made and none refuses.
func startHopMesh(b *testing.B) *hopMesh {
	b.Helper()
	// A long watch timeout keeps the agent's long poll quiet while the
	// benchmarks run.
	cp := controltest.Start(b, controltest.Config{WatchTimeout: 10 * time.Minute})
	cp.ApplyPolicy(b, policytest.Bench())
	for i := range 40 {
		cp.AddDecision(b, controltest.Decision{Scope: "ip", Value: fmt.Sprintf("198.51.100.%d", i), Action: "block"})
	}
	for i := range 5 {
		cp.AddDecision(b, controltest.Decision{Scope: "cidr", Value: fmt.Sprintf("172.16.%d.0/24", i), Action: "read-only"})
	}
	cp.AddDecision(b, controltest.Decision{Scope: "cidr", Value: "192.0.2.0/24", Action: "block-sensitive"})
	for _, u := range []string{"mallory", "eve"} {
		cp.AddDecision(b, controltest.Decision{Scope: "user", Value: u, Action: "block"})
		cp.AddDecision(b, controltest.Decision{Scope: "session", Value: strings.Repeat(u[:1]+"0", 32), Action: "block"})
	}

	last := policytest.LastRule()
	m := &hopMesh{method: last.Method, path: last.Path}
	src := cp.Join(b, policytest.Service)
	svid, err := src.GetX509SVID()
	if err != nil {
		b.Fatal(err)
	}
	m.serverID = svid.ID
	m.caller = cp.Join(b, last.Caller)
	callerSVID, err := m.caller.GetX509SVID()
	if err != nil {
		b.Fatal(err)
	}
	m.callerChain = callerSVID.Certificates
	m.signer = cp.Signer(b, cp.Join(b, "gateway"))
	// The token names the service and its caller, as a gateway's names
	// the services a request can reach.
	if m.audience, err = actor.NewAudience(m.serverID.String(), callerSVID.ID.String()); err != nil {
		b.Fatal(err)
	}

	agent, err := rampart.New(rampart.Config{
		Service: policytest.Service, Identity: src, ControlPlane: cp.URL,
		Sinks: []rampart.Sink{benchDiscard{}}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { agent.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
	defer cancel()
	if err := agent.Ready(ctx); err != nil {
		b.Fatal(err)
	}

	// The handler reads the body and walks the inputs once, as a handler
	// that makes one guarded call (a SQL query) does; behind plain TLS the
	// walk finds nothing.
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/notifications/{id}/actions/{action}", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for range rampart.Inputs(r.Context()) {
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"queued":true}`)
	})
	m.handler, m.guarded = mux, agent.Handler(mux)

	// The decisions are in force: an actor they block is refused.
	blocked, err := m.signer.TokenFor(actor.Actor{IP: netip.MustParseAddr("198.51.100.7")}, m.audience)
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.guarded.ServeHTTP(rec, m.request(blocked))
	if rec.Code != http.StatusForbidden {
		b.Fatalf("an actor blocked by a decision: status %d %s, want 403", rec.Code, rec.Body)
	}

	m.plain = hopServe(b, m.handler, identity.ServerTLSConfig(src))
	m.rampart = hopServe(b, m.guarded, agent.ServerTLSConfig())
	return m
}

// request returns the benchmarked call as the server receives it from the
// caller, without the network.
func (m *hopMesh) request(token string) *http.Request {
	r := httptest.NewRequest(m.method, m.path+hopTarget, strings.NewReader(hopBody))
	r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, PeerCertificates: m.callerChain}
	setHopHeaders(r.Header, token)
	return r
}

func setHopHeaders(h http.Header, token string) {
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", hopUserAgent)
	h.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if token != "" {
		h.Set(actor.Header, token)
	}
}

func hopServe(b *testing.B, h http.Handler, cfg *tls.Config) hopServer {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := hopServer{url: "https://" + ln.Addr().String(), conns: new(atomic.Int64)}
	srv := &http.Server{Handler: h, TLSConfig: cfg, ErrorLog: slogDiscard(), ReadHeaderTimeout: time.Minute,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		}}
	go srv.ServeTLS(ln, "", "")
	b.Cleanup(func() { srv.Close() })
	return s
}

// hopActorIP numbers the actors of cold tokens, so that no two tokens of a
// process are the same and each costs the verifier a signature check.
var hopActorIP atomic.Uint32

// tokens returns n tokens for the actor case: the same token n times
// (cached), or n distinct tokens (cold), minted now.
func (m *hopMesh) tokens(b *testing.B, kind string, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	a := actor.Actor{IP: netip.MustParseAddr("203.0.113.7"), User: "alice", Session: strings.Repeat("5e", 32)}
	for i := range tokens {
		if kind == "cold" {
			v := hopActorIP.Add(1)
			a.IP = netip.AddrFrom4([4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)})
		}
		t, err := m.signer.TokenFor(a, m.audience)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = t
	}
	return tokens
}

// client returns a client with the caller's SVID, expecting the
// service's, that speaks only proto.
func (m *hopMesh) client(proto string) *http.Client {
	var p http.Protocols
	p.SetHTTP1(proto == "h1")
	p.SetHTTP2(proto == "h2")
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: identity.ClientTLSConfig(m.caller, m.serverID),
		Protocols:       &p,
	}}
}

// do sends the benchmarked call and reads the answer to the end.
func (m *hopMesh) do(c *http.Client, base, token string) (*http.Response, error) {
	req, err := http.NewRequest(m.method, base+m.path+hopTarget, strings.NewReader(hopBody))
	if err != nil {
		return nil, err
	}
	setHopHeaders(req.Header, token)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, err
}

// BenchmarkZeroTrustHop measures service-to-service calls on kept-alive
// mTLS connections over loopback, from the client's Do to the end of the
// answer, to the same service served twice: "plain" is TLS 1.3 with the
// same SVIDs and no Rampart; "rampart" is agent.Handler with zero trust
// (caller SVID → 200-rule policy, actor token, 50 decisions, body and input
// capture). Both get the same bytes: a POST with a 106-byte JSON body, two
// query parameters, a traceparent and the actor token.
//
//   - actor=none is gone: the route is sensitive, and a sensitive route
//     requires an actor token (a call without one is refused with 401),
//     so a call without a token measures a refusal, not a hop.
//   - actor=cached: the same token on every call, verified once before.
//   - actor=cold: a new token on every call (a new actor IP), so that each
//     costs a signature check (EdDSA, the control plane's default).
//
// Each iteration is a pair of calls, one to each server, in alternating
// order, so that both sides see the same moments of a machine shared with
// other jobs; ns/op is the pair. The metrics give each side's mean, p50,
// p90 and p99 per call and what Rampart adds at each (benchmesh.ReportPair).
// Client and server share the process and its cores.
func BenchmarkZeroTrustHop(b *testing.B) {
	m := startHopMesh(b)
	for _, proto := range []string{"h2", "h1"} {
		for _, kind := range []string{"cached", "cold"} {
			b.Run(fmt.Sprintf("proto=%s/actor=%s", proto, kind), func(b *testing.B) {
				plainClient, rampartClient := m.client(proto), m.client(proto)
				defer plainClient.CloseIdleConnections()
				defer rampartClient.CloseIdleConnections()
				// Warm up: the handshakes, HTTP/2 windows, and for
				// actor=cached the verifier's memory of the token.
				for _, tok := range m.tokens(b, kind, 50) {
					m.mustCall(b, plainClient, m.plain, tok, proto)
					m.mustCall(b, rampartClient, m.rampart, tok, proto)
				}
				tokens := m.tokens(b, kind, b.N)
				plainConns, rampartConns := m.plain.conns.Load(), m.rampart.conns.Load()
				plain, guarded := make(benchmesh.Latencies, 0, b.N), make(benchmesh.Latencies, 0, b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					for j := range 2 {
						if (i+j)%2 == 0 {
							start := time.Now()
							m.mustCall(b, plainClient, m.plain, tokens[i], "")
							plain.Since(start)
						} else {
							start := time.Now()
							m.mustCall(b, rampartClient, m.rampart, tokens[i], "")
							guarded.Since(start)
						}
					}
				}
				b.StopTimer()
				if m.plain.conns.Load() != plainConns || m.rampart.conns.Load() != rampartConns {
					b.Fatal("new connections during the calls: a connection was not kept alive")
				}
				benchmesh.ReportPair(b, "plain", plain, "rampart", guarded)
			})
		}
	}
}

// mustCall makes the benchmarked call to srv and fails b unless it is
// answered 200 OK, over proto if proto is not "".
func (m *hopMesh) mustCall(b *testing.B, c *http.Client, srv hopServer, token, proto string) {
	resp, err := m.do(c, srv.url, token)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: status %d", srv.url, resp.StatusCode)
	}
	if proto == "h1" && resp.ProtoMajor != 1 || proto == "h2" && resp.ProtoMajor != 2 {
		b.Fatalf("answered over %s, want %s", resp.Proto, proto)
	}
}

// BenchmarkZeroTrustHandler is the server's side of BenchmarkZeroTrustHop
// without the network: the same call, built as the server receives it
// (r.TLS holding the caller's SVID), served by the mux (mw=off) or by
// agent.Handler(mux) (mw=on) into an httptest.ResponseRecorder. The
// difference is the CPU that Rampart adds to a hop, free of the noise of
// loopback I/O and scheduling.
//
// Compare with: benchstat -col /mw
func BenchmarkZeroTrustHandler(b *testing.B) {
	m := startHopMesh(b)
	for _, kind := range []string{"cached", "cold"} {
		for _, mw := range []string{"off", "on"} {
			h := m.handler
			if mw == "on" {
				h = m.guarded
			}
			b.Run(fmt.Sprintf("actor=%s/mw=%s", kind, mw), func(b *testing.B) {
				for _, tok := range m.tokens(b, kind, 10) {
					h.ServeHTTP(httptest.NewRecorder(), m.request(tok))
				}
				// The mux ignores the token: a few distinct ones will do.
				n := b.N
				if mw == "off" {
					n = min(n, 100)
				}
				tokens := m.tokens(b, kind, n)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, m.request(tokens[i%n]))
					if rec.Code != http.StatusOK {
						b.Fatalf("call %d: status %d %s", i, rec.Code, rec.Body)
					}
				}
			})
		}
	}
}

// BenchmarkMTLSHandshake measures a full TLS 1.3 mutual handshake over a
// new loopback TCP connection: dial, handshake, and the server's first
// byte, which the server writes once it has verified the client's SVID
// (in TLS 1.3 the client finishes first). Both sides present SVIDs of one
// CA and verify the peer's with go-spiffe, as identity.ServerTLSConfig and
// ClientTLSConfig do; the server issues no session tickets and the client
// keeps no session cache, so nothing resumes. kex=default is Go's default
// key exchange (X25519MLKEM768 in Go 1.26, post-quantum hybrid);
// kex=X25519 is the classical one alone. tls=none is the same exchange
// over bare TCP, the floor under the others. Client and server share the
// process, so ns/op and cpu-µs/op count both sides' work.
//
//   - root=P-256/leaf=P-256: what Rampart issues today (ca.Generate and
//     identity.Join's keys).
//   - root=P-256/leaf=Ed25519: Ed25519 service keys, the CA unchanged
//     (ca.SignCSR accepts them).
//   - root=Ed25519/leaf=Ed25519: an imported Ed25519 root (ca.Import).
func BenchmarkMTLSHandshake(b *testing.B) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	p256CA, err := ca.Generate(td, ca.Config{})
	if err != nil {
		b.Fatal(err)
	}
	edCA := ed25519CA(b, td)
	newP256 := func() crypto.Signer {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k
	}
	newEd25519 := func() crypto.Signer {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return k
	}
	b.Run("tls=none", func(b *testing.B) { benchHandshakes(b, nil, nil) })
	for _, bc := range []struct {
		name string
		ca   *ca.CA
		key  func() crypto.Signer
	}{
		{"root=P-256/leaf=P-256", p256CA, newP256},
		{"root=P-256/leaf=Ed25519", p256CA, newEd25519},
		{"root=Ed25519/leaf=Ed25519", edCA, newEd25519},
	} {
		server := handshakeSVID(b, bc.ca, "api", bc.key())
		client := handshakeSVID(b, bc.ca, "web", bc.key())
		bundle := bc.ca.Bundle()
		for _, kex := range []struct {
			name   string
			curves []tls.CurveID
		}{
			{"default", nil},
			{"X25519", []tls.CurveID{tls.X25519}},
		} {
			sc := tlsconfig.MTLSServerConfig(server, bundle, tlsconfig.AuthorizeMemberOf(td))
			sc.MinVersion = tls.VersionTLS13
			sc.SessionTicketsDisabled = true
			sc.CurvePreferences = kex.curves
			cc := tlsconfig.MTLSClientConfig(client, bundle, tlsconfig.AuthorizeID(server.ID))
			cc.MinVersion = tls.VersionTLS13
			cc.CurvePreferences = kex.curves
			b.Run("tls=1.3/kex="+kex.name+"/"+bc.name, func(b *testing.B) { benchHandshakes(b, sc, cc) })
		}
	}
}

// benchHandshakes connects b.N times to a listener that serves one byte
// per connection, over TLS unless sc is nil.
func benchHandshakes(b *testing.B, sc, cc *tls.Config) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var serverErrs atomic.Int64
	var lastErr atomic.Value
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				c := conn
				if sc != nil {
					tc := tls.Server(conn, sc)
					if err := tc.Handshake(); err != nil {
						serverErrs.Add(1)
						lastErr.Store(err)
						return
					}
					c = tc
				}
				c.Write([]byte{1})
			}()
		}
	}()
	addr := ln.Addr().String()
	one := make([]byte, 1)
	connect := func() error {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		// Close with a reset: thousands of connections in TIME_WAIT would
		// otherwise use up the ephemeral ports.
		conn.(*net.TCPConn).SetLinger(0)
		defer conn.Close()
		c := conn
		if cc != nil {
			tc := tls.Client(conn, cc)
			if err := tc.Handshake(); err != nil {
				return err
			}
			c = tc
		}
		_, err = io.ReadFull(c, one)
		return err
	}
	if cc != nil && b.N == 1 { // say what was negotiated, once
		conn, err := tls.Dial("tcp", addr, cc)
		if err != nil {
			b.Fatal(err)
		}
		st := conn.ConnectionState()
		b.Logf("%s, %s, resumed %v, leaf key %T", tls.VersionName(st.Version), st.CurveID, st.DidResume, st.PeerCertificates[0].PublicKey)
		io.ReadFull(conn, one)
		conn.Close()
	}
	b.ReportAllocs()
	rec := benchmesh.Start(b)
	for i := range b.N {
		start := time.Now()
		err := connect()
		rec.Since(start)
		if err != nil {
			b.Fatalf("connection %d: %v (server: %v)", i, err, lastErr.Load())
		}
	}
	rec.Stop()
	if n := serverErrs.Load(); n != 0 {
		b.Fatalf("%d server handshakes failed: %v", n, lastErr.Load())
	}
}

// handshakeSVID issues an SVID for service and key through ca.SignCSR, as
// the control plane does.
func handshakeSVID(b *testing.B, c *ca.CA, service string, key crypto.Signer) *x509svid.SVID {
	b.Helper()
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		b.Fatal(err)
	}
	chain, err := c.SignCSR(csr, service, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	var raw []byte
	for _, cert := range chain {
		raw = append(raw, cert.Raw...)
	}
	svid, err := x509svid.ParseRaw(raw, keyDER)
	if err != nil {
		b.Fatal(err)
	}
	return svid
}

// ed25519CA imports a self-signed Ed25519 root for td, shaped like
// ca.Generate's.
func ed25519CA(b *testing.B, td spiffeid.TrustDomain) *ca.CA {
	b.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"Rampart"}, CommonName: "Rampart CA " + td.Name() + " (Ed25519)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{td.ID().URL()},
		PermittedURIDomains:   []string{td.Name()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		b.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	c, err := ca.Import(td,
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		b.Fatal(err)
	}
	return c
}
