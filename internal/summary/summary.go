// Package summary is the bounded table with which the SDK and the gateway
// count ordinary requests per actor, route, method and status over a
// window, so that detection sees what "normal" traffic adds up to without
// one event per request.
//
// The bounds are the table's business, in one place, because a client
// chooses much of a key: its method is the client's text, and its session
// is the hash of any cookie it sends. A client (address and user, which it
// cannot vary at will; for IPv6 the address's /64, since one host commonly
// holds a whole /64 and can take a new address per request) that makes
// more than MaxClientKeys keys in a window
// has its further requests folded into a key of its route and status
// class, without method and session, and for IPv6 under the /64's first
// address (2001:db8:1:2::) instead of each address; past twice that, of its
// status class alone. A window holds at most maxKeys keys; the requests of new keys
// beyond that are counted in an overflow that names no actor. So one
// client cannot push the others into the overflow.
package summary

import "net/netip"

// MaxClientKeys is how many keys one client may make in a window before
// its requests are folded.
const MaxClientKeys = 32

// Key is what a summary counts requests by.
type Key struct {
	IP      netip.Addr
	User    string
	Session string
	Route   string
	Method  string
	Status  int
	Static  bool // a static asset by its path (the gateway's: scraping leaves them out)
	Folded  bool // a client's requests past MaxClientKeys keys, of one status class
}

// client is the part of a Key that a client cannot vary at will.
type client struct {
	ip   netip.Addr // an IPv6 address masked to its /64
	user string
}

// clientOf returns k's client.
func clientOf(k Key) client {
	ip := k.IP
	if ip.Is6() && !ip.Is4In6() {
		if p, err := ip.WithZone("").Prefix(64); err == nil {
			ip = p.Addr()
		}
	}
	return client{ip, k.User}
}

// Table counts the keys of one window; E is what the caller keeps per key.
// It is not safe for concurrent use: the caller holds its own lock.
type Table[E any] struct {
	maxKeys  int
	keys     map[Key]*E
	clients  map[client]int // keys per client in the window, folded ones included
	overflow int
}

// New returns an empty table of at most maxKeys keys a window.
func New[E any](maxKeys int) *Table[E] {
	return &Table[E]{maxKeys: maxKeys, keys: map[Key]*E{}, clients: map[client]int{}}
}

// Entry returns the entry that counts a request of key k, made if needed,
// under k or, for a client past MaxClientKeys keys, under its folded key.
// It returns nil when the window already holds its maxKeys keys: the
// request is then counted in the overflow.
func (t *Table[E]) Entry(k Key) *E {
	if e := t.keys[k]; e != nil {
		return e
	}
	c := clientOf(k)
	if n := t.clients[c]; n >= MaxClientKeys {
		k.IP, k.Method, k.Session, k.Status, k.Folded = c.ip, "", "", foldStatus(k.Status), true
		if n >= 2*MaxClientKeys && t.keys[k] == nil {
			k.Route = ""
		}
		if e := t.keys[k]; e != nil {
			return e
		}
	}
	if len(t.keys) >= t.maxKeys {
		t.overflow++
		return nil
	}
	e := new(E)
	t.keys[k] = e
	t.clients[c]++
	return e
}

// Take returns the window's entries and the number of requests counted in
// its overflow, and starts the next window. An empty window returns nil
// and 0 and allocates nothing.
func (t *Table[E]) Take() (map[Key]*E, int) {
	keys, overflow := t.keys, t.overflow
	if len(keys) == 0 && overflow == 0 {
		return nil, 0
	}
	t.keys, t.overflow = make(map[Key]*E, len(keys)), 0
	clear(t.clients)
	return keys, overflow
}

// foldStatus is the status class that a folded key keeps.
func foldStatus(status int) int {
	if status < 100 || status > 999 {
		return 0
	}
	return status / 100 * 100
}
