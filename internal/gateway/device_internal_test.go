package gateway

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeKey(t *testing.T, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "device.key")
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// Two gateways with one key file recognise each other's device cookies (a
// device is the same whichever replica serves it); a gateway with another
// key does not; a key file others can read, or too short, is refused.
func TestDeviceKeyFile(t *testing.T) {
	key := strings.Repeat("k", 40)
	p := writeKey(t, key, 0o600)
	d1, err := newDevices(DeviceConf{Cookie: defaultDeviceCookie, KeyFile: p})
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := newDevices(DeviceConf{Cookie: defaultDeviceCookie, KeyFile: p})
	d3, _ := newDevices(DeviceConf{Cookie: defaultDeviceCookie}) // a random key
	ip := netip.MustParseAddr("198.51.100.7")

	first := httptest.NewRequest("GET", "/", nil)
	rec := httptest.NewRecorder()
	if dev := d1.identify(rec.Header(), first, ip); !strings.HasPrefix(dev, "t-") {
		t.Fatalf("first visit: %q", dev)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != defaultDeviceCookie {
		t.Fatalf("cookies issued: %v", cookies)
	}
	back := func(d *devices, ua string, ip netip.Addr) (string, http.Header) {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(cookies[0])
		r.Header.Set("User-Agent", ua)
		h := http.Header{}
		return d.identify(h, r, ip), h
	}
	a, h := back(d1, "ua", ip)
	b, _ := back(d2, "ua", netip.MustParseAddr("203.0.113.9")) // another replica, another address
	if !strings.HasPrefix(a, "c-") || a != b || h.Get("Set-Cookie") != "" {
		t.Errorf("the cookie back at its gateway %q and at a replica with the key %q (cookie issued again: %v); want one c- device",
			a, b, h.Get("Set-Cookie") != "")
	}
	if c, _ := back(d1, "another browser", ip); c == a {
		t.Error("the cookie in another User-Agent: the same device")
	}
	if c, h := back(d3, "ua", ip); !strings.HasPrefix(c, "t-") || h.Get("Set-Cookie") == "" {
		t.Errorf("at a gateway of another key: %q; want the cookie ignored and a new one issued", c)
	}

	if _, err := newDevices(DeviceConf{KeyFile: writeKey(t, key, 0o644)}); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Errorf("a key file others can read: %v", err)
	}
	if _, err := newDevices(DeviceConf{KeyFile: writeKey(t, "short", 0o600)}); err == nil {
		t.Error("a key of 5 bytes accepted")
	}
}

// Without a cookie, the device is per network and traits: two addresses
// of one /24 with the same browser are one device, another /24 or another
// TLS version is another; cookie "off" issues none.
func TestCookielessDevices(t *testing.T) {
	d, _ := newDevices(DeviceConf{Cookie: "off"})
	req := func(ua string, tlsVersion uint16) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("User-Agent", ua)
		if tlsVersion != 0 {
			r.TLS = &tls.ConnectionState{Version: tlsVersion, NegotiatedProtocol: "h2"}
		}
		return r
	}
	h := http.Header{}
	x := d.identify(h, req("ua", 0), netip.MustParseAddr("192.0.2.10"))
	y := d.identify(h, req("ua", 0), netip.MustParseAddr("192.0.2.200"))
	z := d.identify(h, req("ua", 0), netip.MustParseAddr("192.0.3.10"))
	w := d.identify(h, req("ua", tls.VersionTLS13), netip.MustParseAddr("192.0.2.10"))
	v6a := d.identify(h, req("ua", 0), netip.MustParseAddr("2001:db8:1:2::1"))
	v6b := d.identify(h, req("ua", 0), netip.MustParseAddr("2001:db8:1:2:ffff::9"))
	if x != y || x == z || x == w || v6a != v6b || v6a == x || h.Get("Set-Cookie") != "" {
		t.Errorf("devices %s %s %s %s %s %s, cookie %q", x, y, z, w, v6a, v6b, h.Get("Set-Cookie"))
	}
}

// FuzzDeviceCookie: a cookie value is a device only if the gateway signed
// it; any other value (the attacker's) is no device.
func FuzzDeviceCookie(f *testing.F) {
	d, _ := newDevices(DeviceConf{Cookie: defaultDeviceCookie})
	f.Add(d.cookieValue([]byte("0123456789abcdef")))
	f.Add(strings.Repeat("A", 43))
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", defaultDeviceCookie+"="+v)
		id, ok := d.cookieID(r)
		if ok && d.cookieValue(id) != v {
			t.Fatalf("accepted %q, which is not the gateway's value for its id", v)
		}
	})
}

func TestDeviceConfValidate(t *testing.T) {
	for _, c := range []struct {
		cookie string
		ok     bool
	}{{"", true}, {"off", true}, {"dev_id-2", true}, {"a b", false}, {"a;b", false}, {strings.Repeat("x", 65), false}} {
		d := DeviceConf{Cookie: c.cookie}
		if err := d.validate(); (err == nil) != c.ok {
			t.Errorf("cookie %q: %v, want ok %v", c.cookie, err, c.ok)
		}
	}
	d := DeviceConf{}
	d.validate()
	if d.Cookie != defaultDeviceCookie {
		t.Errorf("default cookie %q", d.Cookie)
	}
}

// BenchmarkDeviceIdentify is what the device fingerprint adds to a request:
//
//	go test -run '^$' -bench DeviceIdentify -cpu 1 ./internal/gateway/
func BenchmarkDeviceIdentify(b *testing.B) {
	d, _ := newDevices(DeviceConf{Cookie: defaultDeviceCookie})
	ip := netip.MustParseAddr("198.51.100.7")
	b.Run("cookie", func(b *testing.B) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36")
		r.AddCookie(&http.Cookie{Name: defaultDeviceCookie, Value: d.cookieValue([]byte("0123456789abcdef"))})
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			d.identify(h, r, ip)
		}
	})
	b.Run("new-device", func(b *testing.B) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("User-Agent", "curl/8.5.0")
		b.ReportAllocs()
		for b.Loop() {
			d.identify(http.Header{}, r, ip)
		}
	})
}
