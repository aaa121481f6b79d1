package ssrfguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/rampartsec/rampart"
)

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dialError is returned by a guarded dial that refused an address. RoundTrip
// finds it in the transport's error and reports it.
type dialError struct {
	v    *violation
	addr string
}

func (e *dialError) Error() string {
	return "ssrfguard: refused to connect to " + e.addr + ": " + e.v.reason
}

// guardDial returns the DialContext of a guarded transport clone. Without a
// base dial function, it dials with a net.Dialer whose ControlContext checks
// each address the dialer is about to connect to, after resolution and for
// every address Happy Eyeballs tries: the address checked is the address
// connected to, so a name that resolves to a public address when someone
// checked it and to 127.0.0.1 when the connection is made is caught.
//
// With a base dial function (a custom Transport.DialContext), it resolves
// the name itself, checks every address and hands base the address literals
// one by one, so base cannot resolve again to something else.
func (g *Guard) guardDial(base dialFunc) dialFunc {
	if base == nil {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Resolver: g.resolver}
			if st := stateFrom(ctx); st == nil || !st.proxied {
				c, err := g.newDialCheck(st, addr)
				if err != nil {
					return nil, err
				}
				d.ControlContext = c.control
			}
			return d.DialContext(ctx, network, addr)
		}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		st := stateFrom(ctx)
		if st != nil && st.proxied {
			return base(ctx, network, addr)
		}
		c, err := g.newDialCheck(st, addr)
		if err != nil {
			return nil, err
		}
		var ips []netip.Addr
		if ip, err := netip.ParseAddr(c.host); err == nil {
			ips = []netip.Addr{ip}
		} else {
			ips, err = g.resolver.LookupNetIP(ctx, ipNetwork(network), c.host)
			if err != nil {
				if c.tn != nil {
					// Resolving again in base could answer differently
					// (the first answer may have been made to fail).
					return nil, &net.OpError{Op: "dial", Net: network, Err: err}
				}
				// base may know names that the resolver does not.
				return base(ctx, network, addr)
			}
		}
		var firstErr, refused error
		for _, ip := range ips {
			target := netip.AddrPortFrom(ip, c.port).String()
			if err := c.check(ip, target); err != nil {
				if refused == nil {
					refused = err
				}
				continue
			}
			conn, err := base(ctx, network, target)
			if err == nil {
				return conn, nil
			}
			if firstErr == nil {
				firstErr = err
			}
			if ctx.Err() != nil {
				break
			}
		}
		if refused != nil {
			return nil, refused
		}
		if firstErr == nil {
			firstErr = &net.OpError{Op: "dial", Net: network, Err: errors.New("no address to dial")}
		}
		return nil, firstErr
	}
}

// guardTLSDial wraps a custom Transport.DialTLSContext, which net/http uses
// instead of DialContext for https. It needs the host name (for SNI and the
// certificate), so the guard resolves and checks beforehand and base
// resolves again: a DNS answer that changes in between is not caught.
func (g *Guard) guardTLSDial(base dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		st := stateFrom(ctx)
		if st != nil && st.proxied {
			return base(ctx, network, addr)
		}
		c, err := g.newDialCheck(st, addr)
		if err != nil {
			return nil, err
		}
		if ip, err := netip.ParseAddr(c.host); err == nil {
			if err := c.check(ip, addr); err != nil {
				return nil, err
			}
		} else if c.tn != nil {
			ips, err := g.resolver.LookupNetIP(ctx, ipNetwork(network), c.host)
			if err != nil {
				return nil, &net.OpError{Op: "dial", Net: network, Err: err}
			}
			for _, ip := range ips {
				if err := c.check(ip, netip.AddrPortFrom(ip, c.port).String()); err != nil {
					return nil, err
				}
			}
		}
		return base(ctx, network, addr)
	}
}

func ipNetwork(network string) string {
	switch network {
	case "tcp4", "udp4":
		return "ip4"
	case "tcp6", "udp6":
		return "ip6"
	}
	return "ip"
}

// dialCheck applies the rules to the addresses of one dial.
type dialCheck struct {
	g    *Guard
	st   *dialState
	host string
	port uint16
	hv   hostVerdict
	tn   *taint
	self netip.AddrPort
}

// newDialCheck prepares the checks of a dial to addr (host:port, as the
// transport dials it: after IDNA mapping, so "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ" arrives as
// "localhost") and applies the host rules to it.
func (g *Guard) newDialCheck(st *dialState, addr string) (*dialCheck, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("ssrfguard: dial address %q: %w", addr, err)
	}
	port, _ := parsePort(portStr)
	c := &dialCheck{g: g, st: st, host: host, port: port}
	if st != nil {
		c.tn, c.self = st.taint, st.self
	}
	hv, v := g.checkHost(host, port, c.tn, c.self)
	if v != nil {
		if err := c.refuse(v, addr); err != nil {
			return nil, err
		}
	}
	c.hv = hv
	return c, nil
}

func (c *dialCheck) check(ip netip.Addr, addr string) error {
	if v := c.g.checkIP(ip, c.port, c.hv, c.tn, c.self); v != nil {
		return c.refuse(v, addr)
	}
	return nil
}

// refuse returns the error that stops the dial, or in monitor mode records
// the violation for RoundTrip and lets the dial proceed.
func (c *dialCheck) refuse(v *violation, addr string) error {
	if c.g.agent.Mode() == rampart.ModeMonitor {
		if c.st != nil {
			c.st.record(v, addr)
		}
		return nil
	}
	return &dialError{v: v, addr: addr}
}

// control is the net.Dialer's ControlContext: it runs after the socket is
// created and before it connects, with the address it connects to.
func (c *dialCheck) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("ssrfguard: dial address %q: %w", address, err)
	}
	return c.check(ap.Addr(), address)
}
