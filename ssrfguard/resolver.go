package ssrfguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// readsSpellings reports whether the guard's resolver, in this process, reads
// the C library's spellings of IPv4 addresses (127.1, 2130706433, 0x7f.1) as
// addresses rather than as DNS names: whether host names are resolved by the
// C library (glibc's getaddrinfo through Go's cgo resolver, the system
// resolver on macOS and Windows) or by Go's own resolver.
//
// Go decides that from many things: the netgo and netcgo build tags, whether
// cgo is available, GODEBUG=netdns, Resolver.PreferGo, the operating system,
// and on Linux the contents of /etc/nsswitch.conf and /etc/resolv.conf and a
// few environment variables. Rather than guess at those rules, the guard asks
// once: it resolves "127.1" with a resolver like its own (same PreferGo) but
// which cannot send a DNS query. The C library answers 127.0.0.1 without
// one; Go's resolver finds nothing. The answer is kept for the guard's life,
// as Go makes its choice once per process.
func (g *Guard) readsSpellings() bool {
	g.spellingsOnce.Do(func() { g.spellings = resolverReadsSpellings(g.resolver) })
	return g.spellings
}

var errNoDNS = errors.New("ssrfguard: no DNS query while probing the resolver")

func resolverReadsSpellings(r *net.Resolver) bool {
	probe := &net.Resolver{
		PreferGo:     r != nil && r.PreferGo,
		StrictErrors: r != nil && r.StrictErrors,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errNoDNS
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := probe.LookupNetIP(ctx, "ip4", "127.1")
	return err == nil && len(ips) > 0 && ips[0].Unmap() == netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

var zeroNet = netip.MustParsePrefix("0.0.0.0/8")

// machine is what the guard knows of this machine's interfaces, for the
// addresses that reach the machine itself although no range says so.
type machine struct {
	checked time.Time
	// zeroNetOnLink: an address of 0.0.0.0/8 other than 0.0.0.0 can be
	// connected to from this machine, which is so only when one of its
	// interfaces has an address in that network (Linux allows it since
	// 5.3). Otherwise the kernel refuses such a destination, and a bare
	// number that the C library reads as 0.0.156.248 ("40184") leads
	// nowhere: it is not an internal address to guard.
	zeroNetOnLink bool
	// addrs are the addresses of the interfaces (unmapped, without zone): a
	// connection to any of them is delivered to this machine, as to
	// loopback, whether the address is private or the public one of a
	// server or of a cloud instance's IPv6.
	addrs []netip.Addr
}

func (m *machine) has(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	for _, a := range m.addrs {
		if a == ip {
			return true
		}
	}
	return false
}

// thisMachine returns what the interfaces of this machine are, read again
// when 30 seconds old: an address added since is known to the guard within
// that time.
func thisMachine() *machine {
	if m := machineNow.Load(); m != nil && time.Since(m.checked) < 30*time.Second {
		return m
	}
	machineMu.Lock()
	defer machineMu.Unlock()
	if m := machineNow.Load(); m != nil && time.Since(m.checked) < 30*time.Second {
		return m
	}
	m := &machine{checked: time.Now()}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		m.zeroNetOnLink = true // cannot tell: the safe answer
	}
	for _, a := range addrs {
		p, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(p.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		m.addrs = append(m.addrs, ip)
		if zeroNet.Contains(ip) {
			m.zeroNetOnLink = true
		}
	}
	machineNow.Store(m)
	return m
}

var (
	machineMu  sync.Mutex
	machineNow atomic.Pointer[machine]
)
