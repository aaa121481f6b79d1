package ssrfguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
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

// zeroNetReachable reports whether an address of 0.0.0.0/8 other than
// 0.0.0.0 can be connected to from this machine: only when one of its
// interfaces has an address in that network (Linux allows it since 5.3).
// Otherwise the kernel refuses such a destination, and a bare number that
// the C library reads as 0.0.156.248 ("40184") leads nowhere: it is not an
// internal address to guard. The answer is refreshed every 30 seconds.
func zeroNetReachable() bool {
	zeroNetMu.Lock()
	defer zeroNetMu.Unlock()
	if now := time.Now(); now.After(zeroNetChecked.Add(30 * time.Second)) {
		zeroNetChecked = now
		zeroNetOnLink = false
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			zeroNetOnLink = true // cannot tell: the safe answer
		}
		for _, a := range addrs {
			if p, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(p.IP); ok && zeroNet.Contains(ip.Unmap()) {
					zeroNetOnLink = true
				}
			}
		}
	}
	return zeroNetOnLink
}

var (
	zeroNetMu      sync.Mutex
	zeroNetChecked time.Time
	zeroNetOnLink  bool
)
