package gateway_test

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/gateway"
)

// minimal is the smallest configuration ParseConfig accepts.
const minimal = `listen: {http: 127.0.0.1:8080}
control_plane: {url: "https://cp.internal:8443"}
routes:
  - upstream: http://10.0.0.5:9001
`

func TestParseConfigDefaults(t *testing.T) {
	c, err := gateway.ParseConfig([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Limits
	for name, got := range map[string][2]any{
		"limits.max_header_bytes":    {l.MaxHeaderBytes, gateway.DefaultMaxHeaderBytes},
		"limits.max_body_bytes":      {l.MaxBodyBytes, int64(gateway.DefaultMaxBodyBytes)},
		"limits.read_header_timeout": {time.Duration(l.ReadHeaderTimeout), gateway.DefaultReadHeaderTimeout},
		"limits.read_timeout":        {time.Duration(l.ReadTimeout), gateway.DefaultReadTimeout},
		"limits.write_timeout":       {time.Duration(l.WriteTimeout), gateway.DefaultWriteTimeout},
		"limits.idle_timeout":        {time.Duration(l.IdleTimeout), gateway.DefaultIdleTimeout},
		"limits.upstream_timeout":    {time.Duration(l.UpstreamTimeout), gateway.DefaultUpstreamTimeout},
		"decision_rate_limit":        {c.RateLimitRate, gateway.DefaultDecisionRate},
		"waf.mode":                   {c.WAF.Mode, "blocking"},
		"trusted_proxy_header":       {c.TrustedProxyHeader, "X-Forwarded-For"},
		"control_plane.service":      {c.ControlPlane.Service, "gateway"},
		"routes[0].name":             {c.Routes[0].Name, "route-0"},
		"routes[0].path_prefix":      {c.Routes[0].PathPrefix, "/"},
		"routes[0].host":             {c.Routes[0].Host, ""},
		"actor_token.lifetime":       {time.Duration(c.ActorToken.Lifetime), time.Duration(0)},
	} {
		if got[0] != got[1] {
			t.Errorf("%s: %v, want %v", name, got[0], got[1])
		}
	}
	if c.Routes[0].InspectBody != nil || c.Routes[0].RateLimit != nil || len(c.TrustedProxies) != 0 {
		t.Errorf("route defaults: %+v", c.Routes[0])
	}

	c, err = gateway.ParseConfig([]byte(minimal + `    host: Shop.Example.COM.
    rate_limit: {rate: 2.5, burst: 5}
limits: {read_header_timeout: 1m30s, max_body_bytes: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Routes[0]; r.Host != "shop.example.com" || r.RateLimit.Per != "ip" || r.RateLimit.Rate != 2.5 {
		t.Errorf("route: host %q, rate limit %+v", r.Host, r.RateLimit)
	}
	if c.Limits.ReadHeaderTimeout != gateway.Duration(90*time.Second) || c.Limits.MaxBodyBytes != 1 ||
		c.Limits.ReadTimeout != gateway.Duration(gateway.DefaultReadTimeout) {
		t.Errorf("limits %+v", c.Limits)
	}
	// Document markers around the one document are fine.
	for _, doc := range []string{"---\n" + minimal, minimal + "...\n", minimal + "---\n", minimal + "---\n# nothing\n---\n"} {
		if _, err := gateway.ParseConfig([]byte(doc)); err != nil {
			t.Errorf("%q: %v", doc, err)
		}
	}
}

func TestParseConfigErrorsNameTheField(t *testing.T) {
	// Each case replaces or adds to minimal; the error must start with the
	// field's path ("~" marks errors about no field, which must say it).
	route := func(extra string) string { return minimal + extra }
	top := func(extra string) string { return minimal + extra + "\n" }
	for _, c := range []struct {
		name, yaml, field string
	}{
		{"empty", "", "empty"},
		{"only a comment", "# nothing\n", "empty"},
		{"not a mapping", "- a\n- b\n", "~cannot unmarshal"},
		{"two documents", minimal + "---\nwaf: {mode: off}\n", "more than one YAML document"},
		{"too large", minimal + "#" + strings.Repeat("x", 1<<20), "~at most"},
		{"no listener", strings.Replace(minimal, "listen: {http: 127.0.0.1:8080}", "listen: {admin: 127.0.0.1:9090}", 1), "listen"},
		{"listen.http without port", strings.Replace(minimal, "127.0.0.1:8080", "localhost", 1), "listen.http"},
		{"listen.admin not host:port", strings.Replace(minimal, "{http: 127.0.0.1:8080}", "{http: 127.0.0.1:8080, admin: nowhere}", 1), "listen.admin"},
		{"a key twice", top("listen: {http: 127.0.0.1:8081}"), "listen"},
		{"the same address twice", strings.Replace(minimal, "{http: 127.0.0.1:8080}", "{http: 127.0.0.1:8080, admin: 127.0.0.1:8080}", 1), "listen.admin"},
		{"https without certificate", strings.Replace(minimal, "{http: 127.0.0.1:8080}", "{https: 127.0.0.1:8443}", 1), "listen.tls_cert"},
		{"no control plane", strings.Replace(minimal, `control_plane: {url: "https://cp.internal:8443"}`, "", 1), "control_plane.url"},
		{"control plane over http", strings.Replace(minimal, "https://cp", "http://cp", 1), "control_plane.url"},
		{"control plane without host", strings.Replace(minimal, "https://cp.internal:8443", "https://", 1), "control_plane.url"},
		{"bad service name", strings.Replace(minimal, `8443"}`, `8443", service: "Gate Way"}`, 1), "control_plane.service"},
		{"trusting everyone", top("trusted_proxies: [0.0.0.0/0]"), "trusted_proxies"},
		{"a trusted proxy that is not an address", top("trusted_proxies: [proxy.internal]"), "trusted_proxies"},
		{"a trusted proxy header that is not a forwarding header", top("trusted_proxy_header: X-Forwarded-Host"), "trusted_proxy_header"},
		{"negative max_header_bytes", top("limits: {max_header_bytes: -1}"), "limits.max_header_bytes"},
		{"huge max_header_bytes", top("limits: {max_header_bytes: 9223372036854775807}"), "limits.max_header_bytes"},
		{"negative max_body_bytes", top("limits: {max_body_bytes: -1}"), "limits.max_body_bytes"},
		{"max_body_bytes not a number", top("limits: {max_body_bytes: 10MB}"), "limits.max_body_bytes"},
		{"duration without unit", top("limits: {read_timeout: 5}"), "limits.read_timeout"},
		{"negative duration", top("limits:\n  idle_timeout: 1s\n  upstream_timeout: -1s"), "limits.upstream_timeout"},
		{"duration as a list", top("limits: {write_timeout: [1s]}"), "limits.write_timeout"},
		{"duration in a route's sibling", top("actor_token: {lifetime: soon}"), "actor_token.lifetime"},
		{"actor token lifetime too short", top("actor_token: {lifetime: 1s}"), "actor_token.lifetime"},
		{"actor token lifetime too long", top("actor_token: {lifetime: 2h}"), "actor_token.lifetime"},
		{"a spool too small", top("events: {spool_max_bytes: 1000}"), "events.spool_max_bytes"},
		{"a spool age that is no duration", top("events: {spool_max_age: a week}"), "events.spool_max_age"},
		{"a spool setting misspelt", top("events: {spool_directory: /tmp/x}"), "events.spool_directory"},
		{"waf mode", top("waf: {mode: on}"), "waf.mode"},
		{"waf mode as boolean off", top("waf: {mode: false}"), "waf.mode"},
		{"paranoia level", top("waf: {paranoia_level: 5}"), "waf.paranoia_level"},
		{"negative threshold", top("waf: {inbound_threshold: -5}"), "waf.inbound_threshold"},
		{"body limit over the WAF's", top("waf: {body_limit: 1073741824}"), "waf.body_limit"},
		{"negative decision rate", top("decision_rate_limit: -1"), "decision_rate_limit"},
		{"decision rate beyond any limiter", top("decision_rate_limit: 100000000000"), "decision_rate_limit"},
		{"no routes", strings.Replace(minimal, "routes:\n  - upstream: http://10.0.0.5:9001\n", "", 1), "routes"},
		{"routes empty", strings.Replace(minimal, "routes:\n  - upstream: http://10.0.0.5:9001\n", "routes: []\n", 1), "routes"},
		{"path prefix without slash", route("    path_prefix: api\n"), "routes[0].path_prefix"},
		{"host with a slash", route("    host: shop.example.com/x\n"), "routes[0].host"},
		{"host with a port", route("    host: shop.example.com:8443\n"), "routes[0].host"},
		{"IPv6 host with a port", route("    host: \"[::1]:8443\"\n"), "routes[0].host"},
		{"two routes for one host and prefix", route("  - upstream: http://10.0.0.6:9001\n"), "routes[1]"},
		{"the same host in other case", route("    host: a.example\n  - upstream: http://10.0.0.6:9001\n    host: A.example.\n"), "routes[1]"},
		{"no upstream", strings.Replace(minimal, "upstream: http://10.0.0.5:9001", "name: x", 1), "routes[0].upstream"},
		{"upstream not http", strings.Replace(minimal, "http://10.0.0.5:9001", "ftp://10.0.0.5", 1), "routes[0].upstream"},
		{"upstream without host", strings.Replace(minimal, "http://10.0.0.5:9001", "http://:9001", 1), "routes[0].upstream"},
		{"upstream with port 0", strings.Replace(minimal, "http://10.0.0.5:9001", "http://10.0.0.5:0", 1), "routes[0].upstream"},
		{"upstream with port too large", strings.Replace(minimal, "http://10.0.0.5:9001", "http://10.0.0.5:65536", 1), "routes[0].upstream"},
		{"upstream with credentials", strings.Replace(minimal, "http://10.0.0.5:9001", "http://user:pw@10.0.0.5", 1), "routes[0].upstream"},
		{"upstream relative", strings.Replace(minimal, "http://10.0.0.5:9001", "/api", 1), "routes[0].upstream"},
		{"service over http", route("    service: shop\n"), "routes[0].upstream"},
		{"bad service", strings.Replace(minimal, "http://", "https://", 1) + "    service: ../shop\n", "routes[0].service"},
		{"auth mode", route("    auth: maybe\n"), "routes[0].auth"},
		{"auth required without issuers", route("    auth: required\n"), "routes[0].auth"},
		{"rate zero", route("    rate_limit: {rate: 0, burst: 1}\n"), "routes[0].rate_limit"},
		{"rate NaN", route("    rate_limit: {rate: .nan, burst: 1}\n"), "routes[0].rate_limit"},
		{"rate infinite", route("    rate_limit: {rate: .inf, burst: 1}\n"), "routes[0].rate_limit"},
		{"rate beyond the limiter", route("    rate_limit: {rate: 1e12, burst: 1}\n"), "routes[0].rate_limit"},
		{"burst zero", route("    rate_limit: {rate: 1, burst: 0}\n"), "routes[0].rate_limit"},
		{"rate limit per", route("    rate_limit: {rate: 1, burst: 1, per: session}\n"), "routes[0].rate_limit.per"},
		{"exclusion outside the route", route("    path_prefix: /api/\n    waf_exclusions: [{path_prefix: /admin, rule_ids: [942100]}]\n"), "routes[0].waf_exclusions[0].path_prefix"},
		{"exclusion beside the route, not under it", route("    path_prefix: /api\n    waf_exclusions: [{path_prefix: /apiv2, rule_ids: [942100]}]\n"), "routes[0].waf_exclusions[0].path_prefix"},
		{"exclusion without rules", route("    waf_exclusions: [{path_prefix: /api}]\n"), "routes[0].waf_exclusions[0].rule_ids"},
		{"exclusion of rule 0", route("    waf_exclusions: [{path_prefix: /api, rule_ids: [942100, 0]}]\n"), "routes[0].waf_exclusions[0].rule_ids[1]"},
		{"inspect_body not a boolean", route("    inspect_body: sometimes\n"), "routes[0].inspect_body"},
		{"partial inspection of no body", route("    inspect_body: false\n    partial_body_inspection: true\n"), "routes[0].partial_body_inspection"},
		{"routes not a list", strings.Replace(minimal, "routes:\n  - upstream: http://10.0.0.5:9001\n", "routes: http://10.0.0.5\n", 1), "routes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := gateway.ParseConfig([]byte(c.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.yaml)
			}
			if named, ok := strings.CutPrefix(c.field, "~"); ok {
				if !strings.Contains(err.Error(), named) {
					t.Errorf("error %q does not say %s", err, named)
				}
			} else if !strings.HasPrefix(err.Error(), "gateway config: "+c.field) {
				t.Errorf("error %q does not name %s", err, c.field)
			}
		})
	}
}

func TestParseConfigRefusesUnknownFields(t *testing.T) {
	// A typo must not turn a protection off in silence.
	for _, c := range []struct{ yaml, field string }{
		{minimal + "wafs: {mode: off}\n", "wafs"},
		{minimal + "limits: {max_body: 1024}\n", "limits.max_body"},
		{minimal + "    upsteam: http://10.0.0.6\n", "routes[0].upsteam"},
		{minimal + "    rate_limit: {rate: 1, burst: 1, pre: user}\n", "routes[0].rate_limit.pre"},
		{minimal + "    waf_exclusions: [{path: /api, rule_ids: [1]}]\n", "routes[0].waf_exclusions[0].path"},
		{minimal + "auth: {api_keys: [{name: a, sha: x}]}\n", "auth.api_keys[0].sha"},
		{minimal + "auth: {issuer: https://id.example.com}\n", "auth.issuer"},
	} {
		_, err := gateway.ParseConfig([]byte(c.yaml))
		if err == nil {
			t.Errorf("accepted %s:\n%s", c.field, c.yaml)
			continue
		}
		if !strings.HasPrefix(err.Error(), "gateway config: "+c.field+": ") || !strings.Contains(err.Error(), "not found") {
			t.Errorf("error %q does not name %s", err, c.field)
		}
	}
}

func ExampleParseConfig() {
	cfg, err := gateway.ParseConfig([]byte(`
listen: {http: 127.0.0.1:8080, admin: 127.0.0.1:9090}
control_plane: {url: "https://cp.internal:8443", bundle: /etc/rampart/bundle.pem}
trusted_proxies: [10.0.0.0/8]
routes:
  - name: shop
    upstream: https://10.0.0.5:9001
    service: shop
  - name: static
    path_prefix: /static/
    upstream: http://10.0.0.6:8000
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(cfg.Routes), "routes; WAF", cfg.WAF.Mode, "; body limit", cfg.Limits.MaxBodyBytes)
	_, err = gateway.ParseConfig([]byte(`
listen: {http: 127.0.0.1:8080}
control_plane: {url: "https://cp.internal:8443"}
limits: {read_timeout: 30}
routes: [{upstream: "http://10.0.0.5:9001"}]
`))
	fmt.Println(err)
	// Output:
	// 2 routes; WAF blocking ; body limit 10485760
	// gateway config: limits.read_timeout: line 4: "30" is not a duration such as 5s or 1m
}

// FuzzParseConfig checks that ParseConfig never panics and that what it
// accepts is what the gateway needs: at least one route, each to an
// http(s) upstream with a host and a valid port, and limits in force.
// Seeds are in testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := gateway.ParseConfig(data)
		if err != nil {
			if c != nil {
				t.Fatal("a config with an error")
			}
			if !strings.HasPrefix(err.Error(), "gateway config: ") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if len(c.Routes) == 0 {
			t.Fatal("accepted without routes")
		}
		if c.Listen.HTTP == "" && c.Listen.HTTPS == "" {
			t.Fatal("accepted without a listener")
		}
		if u, err := url.Parse(c.ControlPlane.URL); err != nil || u.Scheme != "https" || u.Host == "" {
			t.Fatalf("control plane %q", c.ControlPlane.URL)
		}
		seen := map[string]bool{}
		for i, r := range c.Routes {
			u, err := url.Parse(r.Upstream)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
				t.Fatalf("routes[%d].upstream %q accepted", i, r.Upstream)
			}
			if p := u.Port(); p != "" {
				if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
					t.Fatalf("routes[%d].upstream %q: port", i, r.Upstream)
				}
			}
			if r.Service != "" && u.Scheme != "https" {
				t.Fatalf("routes[%d]: service %q over %s", i, r.Service, u.Scheme)
			}
			if !strings.HasPrefix(r.PathPrefix, "/") || r.Name == "" {
				t.Fatalf("routes[%d]: path_prefix %q, name %q", i, r.PathPrefix, r.Name)
			}
			if key := r.Host + " " + r.PathPrefix; seen[key] {
				t.Fatalf("routes[%d]: %q twice", i, key)
			} else {
				seen[key] = true
			}
			if rl := r.RateLimit; rl != nil && (!(rl.Rate > 0) || rl.Burst <= 0 || (rl.Per != "ip" && rl.Per != "user")) {
				t.Fatalf("routes[%d].rate_limit %+v", i, rl)
			}
		}
		l := c.Limits
		if l.MaxHeaderBytes <= 0 || l.MaxBodyBytes <= 0 || l.ReadHeaderTimeout <= 0 || l.ReadTimeout <= 0 ||
			l.WriteTimeout <= 0 || l.IdleTimeout <= 0 || l.UpstreamTimeout <= 0 {
			t.Fatalf("limits %+v", l)
		}
		switch c.WAF.Mode {
		case "blocking", "detection", "off":
		default:
			t.Fatalf("waf.mode %q", c.WAF.Mode)
		}
		if c.RateLimitRate <= 0 {
			t.Fatalf("decision_rate_limit %d", c.RateLimitRate)
		}
	})
}
