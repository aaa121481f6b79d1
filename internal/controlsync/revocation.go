package controlsync

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/rampartsec/rampart/identity"
)

// ErrRevoked is the error of a handshake with a revoked service.
var ErrRevoked = errors.New("service revoked")

// MaxTrackedConns bounds the connections a Revocations tracks; beyond it new
// connections are not tracked (a revocation still refuses their next
// handshake and, at a service, their next request).
const MaxTrackedConns = 100_000

// Revocations is the set of revoked services, kept current by the watch
// (Source), and the live mTLS connections to and from each service, so
// that a revocation refuses the service's next handshakes and closes its
// connections at once rather than when its last SVID expires. It is safe
// for concurrent use.
//
// A revocation names a service, not a certificate: every SVID of a revoked
// service is refused until the service is reinstated.
type Revocations struct {
	revoked atomic.Pointer[map[string]struct{}]

	mu    sync.Mutex
	conns map[string]map[net.Conn]struct{} // by service name
	n     int
	sweep time.Time
}

// NewRevocations returns an empty set.
func NewRevocations() *Revocations {
	r := &Revocations{conns: map[string]map[net.Conn]struct{}{}}
	r.revoked.Store(&map[string]struct{}{})
	return r
}

// Source is the piece of state that keeps r current: it loads GET
// /v1/revocations at the start and at every change of kind service.
func (r *Revocations) Source() Source {
	return Source{Name: "revocations", Kinds: []string{"service"}, Load: r.load}
}

func (r *Revocations) load(ctx context.Context, c *Client) error {
	var l struct {
		Revoked []struct {
			Service string `json:"service"`
		} `json:"revoked"`
	}
	err := c.Get(ctx, "/v1/revocations", &l)
	if IsNotFound(err) { // a control plane from before revocations were published
		return nil
	}
	if err != nil {
		return err
	}
	names := make([]string, 0, len(l.Revoked))
	for _, s := range l.Revoked {
		names = append(names, s.Service)
	}
	r.Set(names)
	return nil
}

// Set makes services the revoked ones and closes the tracked connections
// of those among them.
func (r *Revocations) Set(services []string) {
	m := make(map[string]struct{}, len(services))
	for _, s := range services {
		m[s] = struct{}{}
	}
	r.revoked.Store(&m)
	var doomed []net.Conn
	r.mu.Lock()
	for s := range m {
		for c := range r.conns[s] {
			doomed = append(doomed, c)
		}
		r.n -= len(r.conns[s])
		delete(r.conns, s)
	}
	r.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

// Revoked reports whether service is revoked.
func (r *Revocations) Revoked(service string) bool {
	m := *r.revoked.Load()
	if len(m) == 0 {
		return false
	}
	_, ok := m[service]
	return ok
}

// Track remembers c as a connection with service, to close when service
// is revoked; if it is already, Track closes c at once.
func (r *Revocations) Track(service string, c net.Conn) {
	if c == nil {
		return
	}
	if r.Revoked(service) {
		c.Close()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.sweep) > 10*time.Second || r.n >= MaxTrackedConns {
		r.sweep = now
		r.sweepLocked()
	}
	if r.n >= MaxTrackedConns {
		return
	}
	m := r.conns[service]
	if m == nil {
		m = map[net.Conn]struct{}{}
		r.conns[service] = m
	}
	if _, ok := m[c]; !ok {
		m[c] = struct{}{}
		r.n++
	}
	// Set may have revoked service between the check above and now.
	if r.Revoked(service) {
		delete(m, c)
		r.n--
		c.Close()
	}
}

// Tracked returns how many connections with service are tracked.
func (r *Revocations) Tracked(service string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked()
	return len(r.conns[service])
}

// sweepLocked forgets the connections already closed. Only connections
// with a file descriptor (TCP, Unix) can be seen closed; the others stay
// until their service is revoked, within MaxTrackedConns.
func (r *Revocations) sweepLocked() {
	for s, m := range r.conns {
		for c := range m {
			if closed(c) {
				delete(m, c)
				r.n--
			}
		}
		if len(m) == 0 {
			delete(r.conns, s)
		}
	}
}

// closed reports whether c is known to be closed.
func closed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	// Control fails once the descriptor is closed; it does not touch the
	// connection otherwise.
	return raw.Control(func(uintptr) {}) != nil
}

// peerService returns the service name of the leaf SVID of a verified
// connection, "" if it has none.
func peerService(cs tls.ConnectionState) (spiffeid.ID, string) {
	if len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, ""
	}
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, ""
	}
	name, _ := identity.ServiceName(id)
	return id, name
}

// VerifyConnection returns a tls.Config.VerifyConnection that refuses a
// peer whose SVID is of a revoked service and, on success, tracks conn (the
// connection under TLS, nil if unknown) with that service. next, if not
// nil, runs first.
func (r *Revocations) VerifyConnection(conn net.Conn, next func(tls.ConnectionState) error) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if next != nil {
			if err := next(cs); err != nil {
				return err
			}
		}
		id, service := peerService(cs)
		if service == "" {
			return nil // not an SVID of a service: the SVID check refuses it, not this one
		}
		if r.Revoked(service) {
			return fmt.Errorf("%w: %s", ErrRevoked, id)
		}
		r.Track(service, conn)
		return nil
	}
}

// GuardClient makes tlsConfig, for connections to service, refuse a
// revoked server at the handshake, and wraps dial so that every connection
// it makes is tracked with service and closed when service is revoked. It
// returns the new dial function.
func (r *Revocations) GuardClient(tlsConfig *tls.Config, service string,
	dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	next := tlsConfig.VerifyConnection
	tlsConfig.VerifyConnection = r.VerifyConnection(nil, next)
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if r.Revoked(service) {
			return nil, fmt.Errorf("%w: %s", ErrRevoked, service)
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		r.Track(service, c)
		return c, nil
	}
}
