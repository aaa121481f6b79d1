// Package ssrfguard blocks server-side request forgery at the outbound call:
// an HTTP request, or any TCP or UDP connection, whose host an attacker chose
// may not reach the service's own machine, its network or the cloud's
// metadata endpoints.
//
// Guard the client once, at start-up, and pass each request the context of
// the work it serves (the incoming request's, or a job's marked with
// rampart.WithUntrusted):
//
//	guard, err := ssrfguard.New(agent, ssrfguard.Config{})
//	client := guard.Client(nil) // or guard.Transport(myTransport)
//	req, _ := http.NewRequestWithContext(r.Context(), "GET", userURL, nil)
//	resp, err := client.Do(req) // errors.Is(err, rampart.ErrBlocked) when refused
//
// Clients that are not net/http's take the guard's dial function, which has
// net.Dialer.DialContext's shape, or call Check before they dial:
//
//	conn, err := guard.DialContext(ctx, "tcp", addr) // a raw dial, gRPC's WithContextDialer
//	err := guard.Check(ctx, "tcp", addr)             // vet only: see "Other clients" below
//
// # The rule
//
// A request is refused when its host came from untrusted input and the
// address it connects to is internal: loopback, private (RFC 1918, IPv6
// unique local), link-local (which holds the metadata endpoints), CGNAT
// (100.64.0.0/10), unspecified (0.0.0.0 and ::, which reach the host itself;
// the rest of 0.0.0.0/8 only where an interface of the machine has an address
// in it, as elsewhere the kernel connects such an address nowhere), multicast
// or reserved, an address of one of the machine's own interfaces (the public
// address of a server, the global IPv6 address of a cloud instance: the
// kernel delivers a connection to it as to loopback, past any firewall in
// front of the machine; the guard reads the interfaces again every 30
// seconds), or an IPv6 form that embeds one of those IPv4 addresses
// (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64 64:ff9b::/96).
//
// The host came from input when an input of the context contains the whole
// host as a token of its own: the input may be the host, host:port, a URL in
// any form, or text with a URL in it, in any case, percent-encoded once or
// twice. Case includes the four non-ASCII letters that strings.ToLower and
// strings.ToUpper turn into ASCII ones (U+212A KELVIN SIGN into k, U+0130 İ
// into i, U+017F ſ into S, U+0131 ı into I): an input "\u212Aubernetes.svc"
// chose the host "kubernetes.svc" of a service that lower-cases it. A host
// that is an IPv6 address (or an IPv4 one) may also be written
// another way in the input ([0:0:0:0:0:0:0:1] for ::1, [::ffff:7f00:1] for
// 127.0.0.1, with or without a zone), as a service that reads the input as an
// address and dials it as Go writes it turns one into the other. A word of
// the host is not enough: the input "api" does not make
// api.internal attacker-chosen. When the input names the host with an
// explicit port and the request goes to another port, the service built that
// URL itself (a Referer of http://localhost:3000/ does not taint a call to
// localhost:9090); port 0, which names no service, counts as no port. An input that is exactly a single-label service name
// ("redis", "api") does taint a request to that name: it cannot be told from
// "http://" + input; name such services in Config.Allow if inputs may equal
// them. The same goes for an input that is exactly "localhost", which Allow
// cannot open safely: a service whose users may send that word, and which
// calls a sidecar on localhost, should call the sidecar with a client of its
// own. Likewise, a service that calls itself through its public name, when
// that name resolves to a private address inside the network (split-horizon
// DNS) or to an address of its own machine on another port (a reverse proxy
// on the same machine) and appears in an input, needs the name in
// Config.Allow.
//
// Requests whose host did not come from input may reach any address — the
// service's own calls to its database API or sidecar are its business —
// except the cloud metadata endpoints (169.254.169.254, fd00:ec2::254,
// 100.100.100.200, metadata.google.internal), the endpoints that hand out the
// credentials of a container or pod on AWS (ECS: 169.254.170.2; EKS Pod
// Identity: 169.254.170.23, fd00:ec2::23) and Config.Deny, which apply to
// every request. Config.Allow names hosts and networks that any request may
// reach; it opens one of those endpoints only with an entry that names it
// exactly (its address, or metadata.google.internal).
//
// # Spellings
//
// What matters is the address the dialer connects to, not how the URL
// spells it. Hosts that are addresses are judged before any DNS query, and
// they are read as the resolver that dials them reads them. Dotted decimal
// IPv4 (one trailing dot ignored) and IPv6 are addresses everywhere. The C
// library's other spellings — inet_aton(3) forms: 2130706433, 0x7f.1,
// 0177.0.0.1, 127.1 — are addresses only where the C library resolves names:
// glibc's getaddrinfo through Go's cgo resolver, and the system resolvers of
// macOS and Windows connect to http://2130706433/ as to 127.0.0.1. Go's own
// resolver does not: it looks an all-numeric name up in /etc/hosts only and
// sends 0x7f.1 to DNS, so there a number in a URL (?page=40184 that ends up
// as a host) is a name, not 0.0.156.248, and not an event; whatever DNS
// answers for a name is checked when it is dialed.
//
// Which resolver a process uses, Go decides from the netgo and netcgo build
// tags, cgo, GODEBUG=netdns, Resolver.PreferGo, the operating system and, on
// Linux, /etc/nsswitch.conf, /etc/resolv.conf and a few environment
// variables. The guard does not guess: once, on the first host that needs it,
// it resolves "127.1" with a resolver like Config.Resolver (same PreferGo)
// that cannot send a DNS query, and reads the spellings as addresses if the
// answer is 127.0.0.1. Where the host is resolved by something the guard
// does not see — a proxy (Transport.Proxy), the dial of a RoundTripper
// other than *http.Transport, the client that dials after Guard.Check — the
// spellings count, as such resolvers are commonly the C library's. localhost, *.localhost and the localhost aliases
// of /etc/hosts are judged without DNS too. Userinfo
// (http://public@127.0.0.1/), brackets and zones, trailing dots, and Unicode
// hosts that IDNA maps to ASCII (http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/, which net/http dials as
// localhost) are seen through.
//
// # Where the check happens
//
// On an *http.Transport the check is made on every address actually dialed,
// so DNS rebinding (a name that resolves to a public address when validated
// and to 127.0.0.1 when connected) cannot get through:
//
//   - With the default dialer (base nil, http.DefaultTransport as net/http
//     made it, or a Transport without DialContext and Dial), the guard dials
//     with a net.Dialer whose ControlContext checks each address after
//     resolution, including every address that Happy Eyeballs tries.
//   - With a custom DialContext (or Dial), the guard resolves the name with
//     Config.Resolver, checks every address, and hands the custom dialer the
//     address literals, one after another. A host from input that does not
//     resolve is not dialed by name; a host that is not from input is (the
//     custom dialer may know names the resolver does not).
//   - With a custom DialTLSContext (or DialTLS), used for https, the custom
//     dialer needs the name: the guard checks what a host from input resolves
//     to just before, and a DNS answer that changes in between is not caught.
//   - Through a proxy (Transport.Proxy), the proxy resolves the host: the
//     guard checks what a host from input resolves to before the request, with
//     the same limit. The dial to the proxy itself is not checked.
//
// The guarded transport keeps three pools of connections, cloned from the
// base transport: one for hosts not from input, one for hosts from input,
// one for hosts from input on the port the service listens on (see below). A
// connection dialed under the looser rules is never reused by a request that
// the stricter rules govern.
//
// Any other RoundTripper is wrapped and checked before the call: the host
// rules for every request and, for a host from input, every address it
// resolves to at that moment. DNS rebinding is not caught there, nor are
// metadata endpoints reached through a name without input involved. Put the
// guard innermost, on the *http.Transport, and wrap instrumentation around it.
//
// # Other clients
//
// Guard.DialContext applies the same rules to any TCP or UDP dial, and
// checks each address it connects to as the guarded *http.Transport does
// (a net.Dialer's ControlContext), so DNS rebinding cannot get through. It
// is not for an http.Transport's DialContext, where a redirect, or a
// Unicode host that net/http maps to localhost, reaches the dial with a
// host that no input names: give that Transport to Guard.Transport.
// Guard.Check applies them without connecting, for a client whose dial
// cannot be replaced: it resolves a name with Config.Resolver and checks
// every address, and the client then resolves it again when it dials, which
// leaves a DNS rebinding window that only DialContext closes. Both take the
// host:port that net.Dial takes; a URL is the transport's business, which
// also follows redirects and keeps connections dialed for hosts from input
// apart. The service's own address (see below) counts for them as for the
// transport, over TCP only: a UDP socket on the service's port number is
// another service.
//
// # Redirects
//
// http.Client sends every redirect through the transport, which checks it
// like any request; and a redirect from a hop whose host came from input is
// itself from input, wherever it points: the attacker's server answering 302
// to http://169.254.169.254/ gains nothing, nor does an open redirect on an
// allowed host.
//
// # Calls of the service to itself
//
// A host from input may reach the address and port on which the service
// received the request being served (http.LocalAddrContextKey of the context;
// loopback addresses count as one): a page that calls its own API through
// the Host of the request, with that host in the Referer, is not forging
// anything, and the attacker could have sent that request to the service
// directly. The Host header is not trusted for this — anyone can send
// Host: 127.0.0.1. Another port of the same machine is another service and
// stays forbidden, and a job (no incoming request) has no "self". A service
// that trusts callers on loopback more than others (admin routes limited to
// 127.0.0.1) should not rely on that: such routes are reachable this way.
//
// # Monitor mode
//
// In monitor mode nothing is refused: what would have been refused is
// reported, with the location of the client call. Requests whose host came
// from input do not reuse connections, so that each attempt is dialed,
// checked and reported; a metadata endpoint that a request without input
// reaches through a name is reported when its connection is made.
package ssrfguard
