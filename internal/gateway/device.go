package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/netip"
	"os"
	"sync"
)

// Device fingerprints: what tells two browsers behind one address (an
// office NAT, a carrier's CGNAT) apart, so that detection can key account
// takeover on the device and decisions can name one (decision scope
// "device").
//
// The gateway issues each client a device cookie of its own: a random
// 128-bit id and an HMAC-SHA-256 of it under the gateway's device key,
// HttpOnly, SameSite=Lax, Secure over TLS, for 400 days. A request that
// returns a valid cookie has the device
//
//	"c-" + hex(HMAC(key, "c" | id | User-Agent | TLS version | ALPN))[:32]
//
// and one that returns none (a first visit, a client that keeps no
// cookies, a forged or stale cookie) gets a new cookie in its response and,
// for this request, the device
//
//	"t-" + hex(HMAC(key, "t" | /24 or /64 of the address | User-Agent |
//	                Accept-Language | TLS version | ALPN))[:32]
//
// What a client can and cannot do with it:
//   - It cannot take another device's fingerprint: the cookie id is
//     random and signed, so it can only present ids the gateway gave it,
//     and the victim's cookie is HttpOnly (script cannot read it).
//   - It can always become a new device: drop the cookie (it is then a
//     "t-" device, one per network and traits), or ask for fresh cookies
//     and use each once. Device decisions therefore stop those who keep
//     their cookie (a browser-driven bot, a hijacked browser); the address
//     and range scopes remain for those who do not.
//   - The User-Agent, Accept-Language and TLS traits are the client's
//     choice: they only ever split a device, never merge two. A cookie
//     copied to another browser makes another device.
//   - A "t-" device is shared by the cookie-less clients of one network
//     with the same traits, so a decision on one reaches no further than
//     that network: never a browser model the world over.
//
// The key comes from device.key_file (shared by the gateway's replicas,
// so that a device is the same whichever serves it) or, without one, is
// drawn at random when the gateway starts: cookies then stop being
// recognised at a restart and every client becomes a new device once.
const (
	defaultDeviceCookie = "rampart_device"
	deviceCookieMaxAge  = 400 * 24 * 60 * 60 // seconds: the most browsers keep
	deviceIDBytes       = 16
	deviceMACBytes      = 16
	deviceKeyMinBytes   = 32
	maxDeviceKeyFile    = 4 << 10
)

// DeviceConf configures device fingerprints (see the documentation of
// defaultDeviceCookie):
//
//	device:
//	  cookie: rampart_device   # the cookie the gateway issues; "off" issues none
//	  key_file: /etc/rampart/device.key  # at least 32 bytes, mode 0600; default: random per process
type DeviceConf struct {
	Cookie  string `yaml:"cookie"`
	KeyFile string `yaml:"key_file"`
}

func (d *DeviceConf) validate() error {
	if d.Cookie == "" {
		d.Cookie = defaultDeviceCookie
	}
	if d.Cookie != "off" && !validCookieName(d.Cookie) {
		return fmt.Errorf("device.cookie: %q is not a cookie name (letters, digits, '-', '_', '.')", d.Cookie)
	}
	return nil
}

func validCookieName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// devices computes device fingerprints and issues device cookies.
type devices struct {
	cookie string // "" issues none
	key    []byte
	macs   sync.Pool // hash.Hash: HMAC-SHA-256 under key, reused (keying one costs two SHA-256 blocks)
}

// newMAC returns an HMAC-SHA-256 under the device key, reset; give it back
// with d.macs.Put.
func (d *devices) newMAC() hash.Hash {
	if m, ok := d.macs.Get().(hash.Hash); ok {
		m.Reset()
		return m
	}
	return hmac.New(sha256.New, d.key)
}

func newDevices(cfg DeviceConf) (*devices, error) {
	d := &devices{cookie: cfg.Cookie}
	if d.cookie == "off" {
		d.cookie = ""
	}
	if cfg.KeyFile == "" {
		d.key = make([]byte, deviceKeyMinBytes)
		rand.Read(d.key)
		return d, nil
	}
	key, err := readDeviceKey(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("gateway: device.key_file: %w", err)
	}
	d.key = key
	return d, nil
}

// readDeviceKey reads a key file: at least deviceKeyMinBytes, readable by
// its owner only, as secrets are.
func readDeviceKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %04o, want 0600: the key lets anyone mint device cookies", path, info.Mode().Perm())
	}
	if info.Size() > maxDeviceKeyFile {
		return nil, fmt.Errorf("%s: %d bytes, at most %d", path, info.Size(), maxDeviceKeyFile)
	}
	key := make([]byte, info.Size())
	n, err := f.Read(key)
	if err != nil && n == 0 {
		return nil, err
	}
	key = key[:n]
	if len(key) < deviceKeyMinBytes {
		return nil, errors.New(path + ": shorter than 32 bytes (make one with: head -c 32 /dev/urandom)")
	}
	return key, nil
}

// identify returns the device of r, from the address ip, and issues a
// device cookie in h when r returned no valid one.
func (d *devices) identify(h http.Header, r *http.Request, ip netip.Addr) string {
	if d == nil {
		return ""
	}
	if id, ok := d.cookieID(r); ok {
		return d.fingerprint('c', id, netip.Prefix{}, r)
	}
	if d.cookie != "" {
		var id [deviceIDBytes]byte
		rand.Read(id[:])
		c := http.Cookie{Name: d.cookie, Value: d.cookieValue(id[:]), Path: "/", MaxAge: deviceCookieMaxAge,
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode}
		h.Add("Set-Cookie", c.String())
	}
	bits := 64
	if ip.Unmap().Is4() {
		bits = 24
	}
	network, _ := ip.Unmap().WithZone("").Prefix(bits)
	return d.fingerprint('t', nil, network, r)
}

// cookieID returns the id of r's device cookie if its signature is the
// gateway's.
func (d *devices) cookieID(r *http.Request) ([]byte, bool) {
	if d.cookie == "" {
		return nil, false
	}
	c, err := r.Cookie(d.cookie)
	if err != nil || len(c.Value) != base64.RawURLEncoding.EncodedLen(deviceIDBytes+deviceMACBytes) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil, false
	}
	id, mac := raw[:deviceIDBytes], raw[deviceIDBytes:]
	want := d.mac(id)
	if !hmac.Equal(mac, want[:]) {
		return nil, false
	}
	return id, true
}

func (d *devices) mac(id []byte) [deviceMACBytes]byte {
	m := d.newMAC()
	defer d.macs.Put(m)
	m.Write([]byte("rampart device cookie v1\x00"))
	m.Write(id)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return [deviceMACBytes]byte(sum[:deviceMACBytes])
}

func (d *devices) cookieValue(id []byte) string {
	mac := d.mac(id)
	return base64.RawURLEncoding.EncodeToString(append(append([]byte{}, id...), mac[:]...))
}

// fingerprint hashes what identifies the device: the cookie id ('c') or
// the network ('t'), and the traits of the client. Each variable-length
// part is length-prefixed, so that no two lists of parts hash alike.
func (d *devices) fingerprint(kind byte, id []byte, network netip.Prefix, r *http.Request) string {
	m := d.newMAC()
	defer d.macs.Put(m)
	var n [4]byte
	part := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		m.Write(n[:])
		m.Write(b)
	}
	part([]byte("rampart device v1"))
	part([]byte{kind})
	if kind == 'c' {
		part(id)
	} else {
		nb, _ := network.MarshalBinary()
		part(nb)
		part([]byte(r.Header.Get("Accept-Language")))
	}
	part([]byte(r.Header.Get("User-Agent")))
	if r.TLS != nil {
		binary.BigEndian.PutUint32(n[:], uint32(r.TLS.Version))
		part(n[:])
		part([]byte(r.TLS.NegotiatedProtocol))
	} else {
		part(nil)
		part(nil)
	}
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	var out [2 + 32]byte
	out[0], out[1] = kind, '-'
	hex.Encode(out[2:], sum[:16])
	return string(out[:])
}
