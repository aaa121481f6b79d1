package ssrfguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
)

// FuzzParseIP checks the address parser against the slow reference
// inet_aton, against netip for what Go accepts, and checks that every
// spelling of an internal address coming from input is refused without DNS.
// Seeds: testdata/fuzz/FuzzParseIP.
func FuzzParseIP(f *testing.F) {
	g := newTestGuard(f, rampart.ModeBlock, Config{})
	tn := &taint{input: rampart.Input{Source: "query"}}
	f.Fuzz(func(t *testing.T, host string) {
		ip, ok := parseIP(host, true)
		if ok && ip.Zone() != "" {
			t.Fatalf("parseIP(%q) = %v keeps a zone", host, ip)
		}
		if !strings.ContainsAny(host, ":[") {
			ref, refOK := referenceAton(host)
			if ok != refOK || ip != ref {
				t.Fatalf("parseIP(%q) = %v %v, reference inet_aton = %v %v", host, ip, ok, ref, refOK)
			}
		}
		if std, err := netip.ParseAddr(host); err == nil {
			if !ok || ip != std.WithZone("") {
				t.Fatalf("parseIP(%q) = %v %v, netip reads %v", host, ip, ok, std)
			}
		}
		if !ok {
			return
		}
		if again, ok2 := parseIP(ip.String(), false); !ok2 || again != ip {
			t.Fatalf("parseIP(%q) = %v, but parseIP(%q, false) = %v %v", host, ip, ip.String(), again, ok2)
		}
		// Without the C library's spellings, only what Go's dialer reads
		// as an address is one.
		if plain, ok2 := parseIP(host, false); ok2 {
			if plain != ip {
				t.Fatalf("parseIP(%q, false) = %v, parseIP(%q, true) = %v", host, plain, host, ip)
			}
			if !strings.ContainsAny(host, ":[") {
				std, err := netip.ParseAddr(strings.TrimSuffix(host, "."))
				if err != nil || std != plain {
					t.Fatalf("parseIP(%q, false) = %v, netip reads %v %v", host, plain, std, err)
				}
			}
		}
		if ip, ok = g.hostIP(host); !ok {
			return
		}
		if classify(ip) != "" || isMetadataAddr(ip) {
			if _, v := g.checkHost(host, 80, tn, netip.AddrPort{}); v == nil {
				t.Fatalf("host %q from input is %v (%s) but checkHost allows it", host, ip, classify(ip))
			}
		}
	})
}

// FuzzHostInInput checks the taint matcher: it never claims a host the
// input does not contain, it always finds a host the input is or carries in
// a URL, and surrounding text or upper case does not hide it.
// Seeds: testdata/fuzz/FuzzHostInInput.
func FuzzHostInInput(f *testing.F) {
	f.Fuzz(func(t *testing.T, input, host string, port uint16) {
		got := hostInInput(input, host, port)
		h := strings.TrimSuffix(host, ".")
		if got {
			v := input
			found := false
			for range 3 {
				if strings.Contains(asciiLower(v), asciiLower(h)) || strings.Contains(asciiLower(caseMapASCII(v)), asciiLower(h)) || namesAddr(v, h) {
					found = true
					break
				}
				v = percentDecode(v)
			}
			if !found || h == "" {
				t.Fatalf("hostInInput(%q, %q, %d) = true, but the input does not contain the host, nor its address in another spelling", input, host, port)
			}
			if !hostInInput("x "+input+" y", host, port) {
				t.Fatalf("hostInInput(%q, %q) = true, but not with text around the input", input, host)
			}
			if !hostInInput(strings.ToUpper(input), host, port) && isASCII(input) {
				t.Fatalf("hostInInput(%q, %q) = true, but not in upper case", input, host)
			}
		}
		// A service that case-maps its input requests the host it makes.
		for _, mapped := range []string{strings.ToLower(input), strings.ToUpper(input)} {
			if validHost(strings.TrimSuffix(mapped, ".")) && !hostInInput(input, mapped, port) {
				t.Fatalf("hostInInput(%q, %q, %d) = false, but the host is the input case-mapped", input, mapped, port)
			}
		}
		if !validHost(h) {
			return
		}
		for _, form := range []string{h, "http://" + h + "/x", "http://user@" + h + "/", bracket(h) + ":" + itoa(port), "see http://" + bracket(h) + ":" + itoa(port) + "/path please"} {
			if !hostInInput(form, host, port) {
				t.Fatalf("hostInInput(%q, %q, %d) = false", form, host, port)
			}
		}
	})
}

// namesAddr reports whether host is an IP address that v names in another
// spelling: an IPv6 literal of the same value (zone aside, IPv4-mapped
// unmapped, maybe followed by a port without brackets), or the IPv4 address
// of an IPv4-mapped host.
func namesAddr(v, host string) bool {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.WithZone("").Unmap()
	for _, tok := range strings.FieldsFunc(v, func(r rune) bool { return r >= 0x80 || !isHostByte(byte(r), true) }) {
		if i := strings.IndexByte(tok, '%'); i >= 0 {
			tok = tok[:i]
		}
		if a, err := netip.ParseAddr(strings.TrimSuffix(tok, ".")); err == nil && a.Unmap() == ip {
			return true
		}
		if k := strings.LastIndexByte(tok, ':'); k >= 0 {
			if a, err := netip.ParseAddr(tok[:k]); err == nil && a.Unmap() == ip {
				return true // ::1:80, an address and a port without brackets
			}
		}
	}
	return ip.Is4() && strings.Contains(host, ":") && strings.Contains(v, ip.String())
}

// FuzzURL feeds whole URLs through what RoundTrip decides before sending,
// with the URL itself as the untrusted input: whenever net/url accepts it and
// its host is, in any spelling, an internal address or a localhost name, the
// request must be refused. Seeds: testdata/fuzz/FuzzURL.
func FuzzURL(f *testing.F) {
	g := newTestGuard(f, rampart.ModeBlock, Config{})
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https") {
			return // not a URL that net/http sends
		}
		ctx := rampart.WithUntrusted(context.Background(), "query", raw)
		req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}
		p := g.preflight(ctx, req)
		host := u.Hostname()
		ip, isIP := g.hostIP(host)
		internal := isIP && (classify(ip) != "" || isMetadataAddr(ip)) || isLocalhostName(host) || isMetadataHost(host)
		if internal && p.violation == nil {
			t.Fatalf("%q: host %q (%v) from input allowed; taint %+v", raw, host, ip, p.taint)
		}
		if p.violation != nil && p.violation.reason == "" {
			t.Fatalf("%q: violation without a reason", raw)
		}
	})
}

// FuzzCheck feeds any address through Check, the input being the address
// itself or another text: Check refuses whatever the transport's host rules
// refuse for a URL to the same host and port, refuses an internal address
// from input in any spelling, and returns an error that is not a refusal only
// for an address that net.Dial does not accept either. No DNS query is sent.
func FuzzCheck(f *testing.F) {
	noDNS := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) { return nil, errNoDNS }}
	g := newTestGuard(f, rampart.ModeBlock, Config{Resolver: noDNS})
	for _, seed := range [][2]string{
		{"127.0.0.1:80", ""},
		{"[::1]:8080", "http://[::1]:8080/"},
		{"[fe80::1%eth0]:80", "http://[fe80::1%25eth0]/"},
		{"0x7f.1:80", ""},
		{"LOCALHOST.:443", "localhost"},
		{"example.com:https", "example.com"},
		{"169.254.169.254:80", "x"},
		{"metadata.google.internal.:80", "x"},
		{":80", ""},
		{"[::ffff:127.0.0.1]:1", ""},
		{"api.internal:6379", "see http://api.internal:6379/"},
		{"1.2.3.4:65536", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, address, other string) {
		for _, input := range []string{address, other} {
			ctx := rampart.WithUntrusted(context.Background(), "query", input)
			err := g.Check(ctx, "tcp", address)
			host, portStr, splitErr := net.SplitHostPort(address)
			port, numeric := parsePort(portStr)
			if err != nil && !errors.Is(err, rampart.ErrBlocked) {
				if splitErr == nil && host != "" && numeric {
					t.Fatalf("Check(%q) = %v, an error for an address net.Dial accepts", address, err)
				}
				continue
			}
			if splitErr != nil || host == "" {
				t.Fatalf("Check(%q) = %v, but net.SplitHostPort says %v (host %q)", address, err, splitErr, host)
			}
			if !numeric {
				continue // a service name, looked up in /etc/services
			}
			if input == address {
				ip, isIP := g.hostIP(host)
				internal := isIP && (classify(ip) != "" || isMetadataAddr(ip)) || isLocalhostName(host) || isMetadataHost(host)
				if internal && err == nil {
					t.Fatalf("Check(%q) with the address as input = nil; host %q is internal (%v)", address, host, ip)
				}
			}
			u := &url.URL{Scheme: "http", Host: net.JoinHostPort(host, portStr), Path: "/"}
			if u.Hostname() != host || urlPort(u) != port {
				continue // no URL goes to this host and port
			}
			req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}
			if p := g.preflight(ctx, req); p.violation != nil && err == nil {
				t.Fatalf("Check(%q) with input %q = nil; the transport refuses %s: %s", address, input, u, p.violation.reason)
			}
		}
	})
}

// validHost reports whether h could be a URL's Hostname() that a request
// goes to: host-name bytes, or an IPv6 address.
func validHost(h string) bool {
	if h == "" || strings.HasPrefix(h, ".") || strings.Contains(h, "..") {
		return false
	}
	if strings.Contains(h, ":") {
		_, err := netip.ParseAddr(h)
		return err == nil
	}
	for i := 0; i < len(h); i++ {
		if !isHostByte(h[i], false) {
			return false
		}
	}
	return true
}

func bracket(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

func itoa(p uint16) string {
	if p == 0 {
		return "0"
	}
	var b [5]byte
	i := len(b)
	for p > 0 {
		i--
		b[i] = byte('0' + p%10)
		p /= 10
	}
	return string(b[i:])
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
