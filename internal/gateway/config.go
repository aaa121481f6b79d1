package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/gateway/authn"
	"github.com/rampartsec/rampart/internal/gateway/clientip"
	"github.com/rampartsec/rampart/internal/gateway/ratelimit"
	"github.com/rampartsec/rampart/internal/gateway/waf"
)

// Config is the gateway's configuration, read from gateway.yaml:
//
//	listen:
//	  http: 127.0.0.1:8080          # at least one of http and https
//	  https: 127.0.0.1:8443
//	  tls_cert: /etc/rampart/edge.crt # the public certificate of the https listener
//	  tls_key: /etc/rampart/edge.key
//	  admin: 127.0.0.1:9090          # /healthz and /readyz
//	control_plane:
//	  url: https://cp.internal:8443
//	  bundle: /etc/rampart/bundle.pem # verifies the control plane and the upstreams
//	  service: gateway                # the gateway's service name (its SVID)
//	  join_token_file: /run/secrets/rampart-join-token
//	  identity_dir: /var/lib/rampart-gateway/identity # the SVID and key saved: restarts renew with them, no new token
//	trusted_proxies: [10.0.0.0/8]     # whose forwarding header to believe
//	trusted_proxy_header: X-Forwarded-For # the one they write: X-Forwarded-For (default), Forwarded or X-Real-IP
//	limits: {max_header_bytes: 32768, max_body_bytes: 10485760, read_header_timeout: 5s,
//	         read_timeout: 60s, write_timeout: 60s, idle_timeout: 120s, upstream_timeout: 30s}
//	waf: {mode: blocking, paranoia_level: 1, inbound_threshold: 5, body_limit: 131072}
//	auth:
//	  issuers: [{issuer: https://id.example.com, audience: shop}]
//	  api_keys: [{name: partner, sha256: <hex>}]
//	  session_cookie: sid                # hashed into the actor's session
//	routes:
//	  - name: shop
//	    host: shop.example.com           # optional; any host if omitted
//	    path_prefix: /                   # on segment boundaries (/a: /a, /a/...; /a/: below it); the longest wins
//	    upstream: https://10.0.0.5:9001
//	    service: shop                    # the upstream's SPIFFE ID is spiffe://<td>/svc/shop (mTLS)
//	    auth: optional                   # required | optional | off; optional when auth is configured, else off
//	    inspect_body: true               # the WAF reads the body (costs time per field)
//	    partial_body_inspection: false   # true: a body over waf.body_limit passes with its head inspected, else 413
//	    waf_exclusions: [{path_prefix: /api/search, rule_ids: [942100]}]
//	    rate_limit: {rate: 20, burst: 40, per: ip}   # requests per second per actor
//	    forward_credentials: false       # pass the user's Authorization / session cookie upstream
type Config struct {
	Listen         Listen       `yaml:"listen"`
	ControlPlane   ControlPlane `yaml:"control_plane"`
	TrustedProxies []string     `yaml:"trusted_proxies"`
	// TrustedProxyHeader is the one header the trusted proxies write the
	// client's address in; no other forwarding header is read (package
	// clientip says how it is read).
	TrustedProxyHeader string         `yaml:"trusted_proxy_header"`
	Limits             Limits         `yaml:"limits"`
	WAF                WAFConfig      `yaml:"waf"`
	Auth               AuthConfig     `yaml:"auth"`
	Routes             []Route        `yaml:"routes"`
	RateLimitRate      int            `yaml:"decision_rate_limit"` // requests per minute for a rate-limit decision without its own
	ActorToken         ActorTokenConf `yaml:"actor_token"`
}

// Listen says where the gateway listens.
type Listen struct {
	HTTP    string `yaml:"http"`
	HTTPS   string `yaml:"https"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	Admin   string `yaml:"admin"`
}

// ControlPlane says how to reach the control plane and join it.
type ControlPlane struct {
	URL           string `yaml:"url"`
	Bundle        string `yaml:"bundle"`
	Service       string `yaml:"service"`
	JoinTokenFile string `yaml:"join_token_file"`
	// IdentityDir, if set, keeps the gateway's SVID and key
	// (identity.JoinConfig.Dir): a restarted gateway renews with them and
	// needs a join token only if they are gone or expired.
	IdentityDir string `yaml:"identity_dir"`
}

// Limits bound what clients may send and how long they may take.
type Limits struct {
	MaxHeaderBytes    int      `yaml:"max_header_bytes"`    // at most 1 MiB; net/http allows 4 KB over it
	MaxBodyBytes      int64    `yaml:"max_body_bytes"`      // larger bodies get 413
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"` // from the connection (or the previous request) to the end of the headers
	ReadTimeout       Duration `yaml:"read_timeout"`        // the whole request, body included
	// WriteTimeout bounds a response of known length from the end of the
	// request headers. A stream (no Content-Length, or flushed: Server-Sent
	// Events, long polls) instead gets WriteTimeout for each write, so that
	// it may last while the client reads it. Upgraded connections
	// (WebSocket) have no timeout.
	WriteTimeout    Duration `yaml:"write_timeout"`
	IdleTimeout     Duration `yaml:"idle_timeout"`     // between requests on a connection
	UpstreamTimeout Duration `yaml:"upstream_timeout"` // from the request sent upstream to its response headers: 504
}

// WAFConfig configures Coraza with the Core Rule Set.
type WAFConfig struct {
	Mode             string `yaml:"mode"` // blocking (default), detection, off
	ParanoiaLevel    int    `yaml:"paranoia_level"`
	InboundThreshold int    `yaml:"inbound_threshold"`
	BodyLimit        int64  `yaml:"body_limit"`
}

// AuthConfig configures end-user authentication.
type AuthConfig struct {
	Issuers       []IssuerConfig `yaml:"issuers"`
	APIKeys       []APIKeyConfig `yaml:"api_keys"`
	APIKeyHeader  string         `yaml:"api_key_header"`
	SessionCookie string         `yaml:"session_cookie"`
	// AllowInsecureHTTP lets issuers be reached over http://: tests only.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
}

// IssuerConfig is one OIDC issuer.
type IssuerConfig struct {
	Issuer     string   `yaml:"issuer"`
	Audience   string   `yaml:"audience"`
	JWKSURL    string   `yaml:"jwks_url"`
	Algorithms []string `yaml:"algorithms"`
}

// APIKeyConfig is one API key, by the SHA-256 of its value.
type APIKeyConfig struct {
	Name   string `yaml:"name"`
	SHA256 string `yaml:"sha256"`
}

// ActorTokenConf configures the tokens the gateway mints.
type ActorTokenConf struct {
	Lifetime Duration `yaml:"lifetime"`
}

// Route sends the requests of a host and path prefix to an upstream.
type Route struct {
	Name        string `yaml:"name"`
	Host        string `yaml:"host"`
	PathPrefix  string `yaml:"path_prefix"`
	Upstream    string `yaml:"upstream"`
	Service     string `yaml:"service"`
	Auth        string `yaml:"auth"`
	InspectBody *bool  `yaml:"inspect_body"`
	// PartialBodyInspection lets a body longer than waf.body_limit through
	// with only its first body_limit bytes inspected (an event says so);
	// by default such a body is refused with 413.
	PartialBodyInspection bool           `yaml:"partial_body_inspection"`
	WAFExclusions         []WAFExclusion `yaml:"waf_exclusions"`
	RateLimit             *RateLimitConf `yaml:"rate_limit"`
	ForwardCredentials    bool           `yaml:"forward_credentials"`
	upstream              *url.URL       // parsed Upstream
	authMode              authn.Mode     // parsed Auth
}

// WAFExclusion turns rules off under a path prefix of a route.
type WAFExclusion struct {
	PathPrefix string `yaml:"path_prefix"`
	RuleIDs    []int  `yaml:"rule_ids"`
}

// RateLimitConf is a token bucket per actor.
type RateLimitConf struct {
	Rate  float64 `yaml:"rate"`  // requests per second
	Burst int     `yaml:"burst"` // bucket size
	Per   string  `yaml:"per"`   // ip (default) or user
}

// Duration is a time.Duration written as "5s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses "5s", "1m30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 || n.Kind != yaml.ScalarNode {
		return &durationError{line: n.Line, column: n.Column, value: n.Value}
	}
	*d = Duration(v)
	return nil
}

// durationError is a Duration that does not parse; ParseConfig names its
// field from its place in the document.
type durationError struct {
	line, column int
	value        string
}

func (e *durationError) Error() string {
	return fmt.Sprintf("line %d: %q is not a duration such as 5s or 1m", e.line, truncate(e.value, 64))
}

// Defaults of Limits.
const (
	DefaultMaxHeaderBytes    = 32 << 10
	DefaultMaxBodyBytes      = 10 << 20
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultUpstreamTimeout   = 30 * time.Second
	DefaultDecisionRate      = 60 // requests per minute
	maxConfigSize            = 1 << 20
	maxRoutes                = 10000
	maxHeaderBytes           = 1 << 20   // net/http's default, and what the services behind accept
	maxDecisionRate          = 1_000_000 // requests per minute
	maxExclusions            = 1000      // as package waf allows
)

// ParseConfig parses and validates a gateway.yaml. Unknown fields are
// errors, so that a typo does not silently turn a protection off.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("gateway config: %d bytes, at most %d", len(data), maxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("gateway config: empty")
		}
		return nil, fmt.Errorf("gateway config: %w", nameField(data, err))
	}
	// A second document would be ignored, and the settings in it with it;
	// empty ones ("---" at the end) are harmless.
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || len(doc.Content) > 0 && doc.Content[0].Tag != "!!null" {
			return nil, errors.New("gateway config: more than one YAML document (a line \"---\"?): put everything in one")
		}
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	return &c, nil
}

// nameField prefixes a decoding error with the path of the field it is
// about ("limits.read_timeout: line 7: ..."), which the YAML decoder tells
// only by line and, for an unknown field or a value of the wrong type, by
// the key or the value.
func nameField(data []byte, err error) error {
	var match func(n *yaml.Node, isKey bool) bool
	var de *durationError
	var te *yaml.TypeError
	switch {
	case errors.As(err, &de):
		match = func(n *yaml.Node, isKey bool) bool { return !isKey && n.Line == de.line && n.Column == de.column }
	case errors.As(err, &te) && len(te.Errors) > 0:
		// "line 5: field upsteam not found in type gateway.Route",
		// "line 5: mapping key "listen" already defined at line 1",
		// "line 5: cannot unmarshal !!str `10MB` into int64" (values over
		// ten bytes are cut to seven and "...").
		msg := te.Errors[0]
		var line int
		if _, err := fmt.Sscanf(msg, "line %d:", &line); err != nil {
			return err
		}
		key, value := "", ""
		if _, rest, ok := strings.Cut(msg, ": field "); ok {
			key, _, _ = strings.Cut(rest, " ")
		} else if _, rest, ok := strings.Cut(msg, `: mapping key "`); ok {
			key, _, _ = strings.Cut(rest, `"`)
		} else if _, rest, ok := strings.Cut(msg, " `"); ok {
			value, _, _ = strings.Cut(rest, "` into")
		}
		match = func(n *yaml.Node, isKey bool) bool {
			if n.Line != line || n.Kind != yaml.ScalarNode {
				return false
			}
			switch {
			case key != "":
				return isKey && n.Value == key
			case strings.HasSuffix(value, "..."):
				return !isKey && strings.HasPrefix(n.Value, strings.TrimSuffix(value, "..."))
			default:
				return !isKey && n.Value == value
			}
		}
	default:
		return err
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return err
	}
	if path := pathAt(&doc, match, ""); path != "" {
		return fmt.Errorf("%s: %w", path, err)
	}
	return err
}

// pathAt returns the path ("routes[1].upstream") of the first key or value
// under n that match accepts, or "".
func pathAt(n *yaml.Node, match func(n *yaml.Node, isKey bool) bool, path string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, m := range n.Content {
			if p := pathAt(m, match, path); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if match(k, true) || match(v, false) {
				return p
			}
			if p := pathAt(v, match, p); p != "" {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if match(v, false) {
				return p
			}
			if p := pathAt(v, match, p); p != "" {
				return p
			}
		}
	}
	return ""
}

// validate fills in the defaults, then checks the configuration section by
// section, in the order of the document, and parses what the gateway uses
// parsed (route upstreams and auth modes). The first error names its field.
func (c *Config) validate() error {
	c.setDefaults()
	for _, check := range []func() error{
		c.Listen.validate,
		c.ControlPlane.validate,
		c.validateClientAddress,
		c.Limits.validate,
		c.WAF.validate,
		c.validateDecisionRate,
		c.ActorToken.validate,
		c.validateRoutes,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// setDefaults fills in what the configuration leaves out. A field that
// needs parsing to be filled in (trusted_proxy_header, a route's auth) is
// filled in by its check instead.
func (c *Config) setDefaults() {
	setDefault(&c.ControlPlane.Service, "gateway")
	l := &c.Limits
	setDefault(&l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&l.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&l.ReadHeaderTimeout, Duration(DefaultReadHeaderTimeout))
	setDefault(&l.ReadTimeout, Duration(DefaultReadTimeout))
	setDefault(&l.WriteTimeout, Duration(DefaultWriteTimeout))
	setDefault(&l.IdleTimeout, Duration(DefaultIdleTimeout))
	setDefault(&l.UpstreamTimeout, Duration(DefaultUpstreamTimeout))
	setDefault(&c.WAF.Mode, "blocking")
	setDefault(&c.RateLimitRate, DefaultDecisionRate)
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Name == "" {
			r.Name = fmt.Sprintf("route-%d", i)
		}
		setDefault(&r.PathPrefix, "/")
		if r.RateLimit != nil {
			setDefault(&r.RateLimit.Per, "ip")
		}
	}
}

func (l *Listen) validate() error {
	if l.HTTP == "" && l.HTTPS == "" {
		return errors.New("listen: set http, https or both")
	}
	seenAddr := map[string]string{}
	for _, a := range []struct{ field, addr string }{
		{"listen.http", l.HTTP}, {"listen.https", l.HTTPS}, {"listen.admin", l.Admin},
	} {
		if a.addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(a.addr)
		if err != nil {
			return fmt.Errorf("%s: %q is not host:port", a.field, a.addr)
		}
		if other := seenAddr[a.addr]; other != "" && port != "0" {
			return fmt.Errorf("%s: %q is %s already", a.field, a.addr, other)
		}
		seenAddr[a.addr] = a.field
	}
	if l.HTTPS != "" && (l.TLSCert == "" || l.TLSKey == "") {
		return errors.New("listen.tls_cert, listen.tls_key: required with listen.https")
	}
	return nil
}

func (cp *ControlPlane) validate() error {
	if cp.URL == "" {
		return errors.New("control_plane.url: required")
	}
	if u, err := url.Parse(cp.URL); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("control_plane.url: %q is not an https:// URL", cp.URL)
	}
	if err := ca.ValidateServiceName(cp.Service); err != nil {
		return fmt.Errorf("control_plane.service: %w", err)
	}
	return nil
}

// validateClientAddress checks trusted_proxies and trusted_proxy_header,
// and writes the header as package clientip names it (X-Forwarded-For if
// none is set).
func (c *Config) validateClientAddress() error {
	if _, err := clientip.New(clientip.Config{TrustedProxies: c.TrustedProxies}); err != nil {
		return fmt.Errorf("trusted_proxies: %w", err)
	}
	ips, err := clientip.New(clientip.Config{Header: c.TrustedProxyHeader})
	if err != nil {
		return fmt.Errorf("trusted_proxy_header: %w", err)
	}
	c.TrustedProxyHeader = ips.Header()
	return nil
}

func (l *Limits) validate() error {
	if l.MaxHeaderBytes < 0 || l.MaxHeaderBytes > maxHeaderBytes {
		return fmt.Errorf("limits.max_header_bytes: %d is not 1 to %d", l.MaxHeaderBytes, maxHeaderBytes)
	}
	if l.MaxBodyBytes < 0 {
		return fmt.Errorf("limits.max_body_bytes: %d is negative", l.MaxBodyBytes)
	}
	return nil
}

func (w *WAFConfig) validate() error {
	switch w.Mode {
	case "blocking", "detection", "off":
	default:
		return fmt.Errorf("waf.mode: %q is not blocking, detection or off", w.Mode)
	}
	if w.ParanoiaLevel < 0 || w.ParanoiaLevel > 4 {
		return fmt.Errorf("waf.paranoia_level: %d is not 1 to 4", w.ParanoiaLevel)
	}
	if w.InboundThreshold < 0 || w.InboundThreshold > 1_000_000 {
		return fmt.Errorf("waf.inbound_threshold: %d is not 1 to 1000000", w.InboundThreshold)
	}
	if w.BodyLimit < 0 || w.BodyLimit > waf.MaxBodyLimit {
		return fmt.Errorf("waf.body_limit: %d is not 1 to %d bytes", w.BodyLimit, waf.MaxBodyLimit)
	}
	return nil
}

func (c *Config) validateDecisionRate() error {
	if c.RateLimitRate < 0 || c.RateLimitRate > maxDecisionRate {
		return fmt.Errorf("decision_rate_limit: %d is not 1 to %d requests per minute", c.RateLimitRate, maxDecisionRate)
	}
	return nil
}

func (a *ActorTokenConf) validate() error {
	if lt := time.Duration(a.Lifetime); lt != 0 && (lt < 10*time.Second || lt > time.Hour) {
		return fmt.Errorf("actor_token.lifetime: %v is not between 10s and 1h", lt)
	}
	return nil
}

// validateRoutes checks each route, and what routes must not share: a host
// and path prefix, and the WAF's limit on exclusions.
func (c *Config) validateRoutes() error {
	if len(c.Routes) == 0 {
		return errors.New("routes: at least one route is required")
	}
	if len(c.Routes) > maxRoutes {
		return fmt.Errorf("routes: %d, at most %d", len(c.Routes), maxRoutes)
	}
	authConfigured := len(c.Auth.Issuers) > 0 || len(c.Auth.APIKeys) > 0
	seen := map[string]bool{}
	exclusions := 0
	for i := range c.Routes {
		r := &c.Routes[i]
		field := fmt.Sprintf("routes[%d]", i)
		if err := r.validateMatch(field); err != nil {
			return err
		}
		key := r.Host + " " + r.PathPrefix
		if seen[key] {
			return fmt.Errorf("%s: host %q and path_prefix %q are taken by an earlier route", field, r.Host, r.PathPrefix)
		}
		seen[key] = true
		if err := r.validateUpstream(field); err != nil {
			return err
		}
		if err := r.validateAuth(field, authConfigured); err != nil {
			return err
		}
		if err := r.validateInspection(field); err != nil {
			return err
		}
		if exclusions += len(r.WAFExclusions); exclusions > maxExclusions {
			return fmt.Errorf("%s.waf_exclusions: more than %d in all routes", field, maxExclusions)
		}
	}
	return nil
}

// validateMatch checks what selects the route's requests, path_prefix and
// host, and writes the host as requests are matched against it.
func (r *Route) validateMatch(field string) error {
	if !strings.HasPrefix(r.PathPrefix, "/") {
		return fmt.Errorf("%s.path_prefix: %q does not start with /", field, r.PathPrefix)
	}
	if strings.ContainsAny(r.Host, "/ \t") {
		return fmt.Errorf("%s.host: %q is not a host name", field, r.Host)
	}
	// Requests are matched by their host without port, lower case,
	// without a final dot: a route with a port would match nothing.
	host := hostOnly(r.Host)
	if host != strings.ToLower(strings.TrimSuffix(r.Host, ".")) {
		return fmt.Errorf("%s.host: %q has a port; routes match the host name only", field, r.Host)
	}
	r.Host = host
	return nil
}

// validateUpstream checks and parses upstream, and the service it must be
// reached as over mTLS.
func (r *Route) validateUpstream(field string) error {
	u, err := url.Parse(r.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil || !validPort(u.Port()) {
		return fmt.Errorf("%s.upstream: %q is not an http(s)://host:port URL", field, r.Upstream)
	}
	r.upstream = u
	if r.Service == "" {
		return nil
	}
	if err := ca.ValidateServiceName(r.Service); err != nil {
		return fmt.Errorf("%s.service: %w", field, err)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%s.upstream: a route to service %q is reached over mTLS: use https://", field, r.Service)
	}
	return nil
}

// validateAuth parses the route's auth mode. Left out, it is optional
// when the gateway has credentials to check (those presented are checked
// and name the actor; anonymous requests pass), else off.
func (r *Route) validateAuth(field string, authConfigured bool) error {
	switch r.Auth {
	case "":
		r.authMode = authn.Off
		if authConfigured {
			r.authMode = authn.Optional
		}
	case "off":
		r.authMode = authn.Off
	case "optional":
		r.authMode = authn.Optional
	case "required":
		r.authMode = authn.Required
	default:
		return fmt.Errorf("%s.auth: %q is not required, optional or off", field, r.Auth)
	}
	if r.authMode != authn.Off && !authConfigured {
		return fmt.Errorf("%s.auth: %s, but auth has no issuers and no api_keys", field, r.Auth)
	}
	return nil
}

// validateInspection checks what the route asks of the WAF and the rate
// limiter.
func (r *Route) validateInspection(field string) error {
	if r.PartialBodyInspection && r.InspectBody != nil && !*r.InspectBody {
		return fmt.Errorf("%s.partial_body_inspection: set, but inspect_body is false", field)
	}
	if rl := r.RateLimit; rl != nil {
		if err := rl.validate(field + ".rate_limit"); err != nil {
			return err
		}
	}
	for j, ex := range r.WAFExclusions {
		if err := ex.validate(fmt.Sprintf("%s.waf_exclusions[%d]", field, j), r.PathPrefix); err != nil {
			return err
		}
	}
	return nil
}

func (rl *RateLimitConf) validate(field string) error {
	if !(rl.Rate > 0) || rl.Burst <= 0 { // NaN is not > 0
		return fmt.Errorf("%s: rate and burst must be positive", field)
	}
	if _, err := ratelimit.New(ratelimit.Config{Rate: rl.Rate, Burst: rl.Burst}); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	switch rl.Per {
	case "ip", "user":
		return nil
	}
	return fmt.Errorf("%s.per: %q is not ip or user", field, rl.Per)
}

// validate checks an exclusion of a route whose prefix is routePrefix.
func (ex WAFExclusion) validate(field, routePrefix string) error {
	if !underPrefix(ex.PathPrefix, routePrefix) {
		return fmt.Errorf("%s.path_prefix: %q is outside the route's prefix %q", field, ex.PathPrefix, routePrefix)
	}
	if len(ex.RuleIDs) == 0 {
		return fmt.Errorf("%s.rule_ids: required", field)
	}
	for k, id := range ex.RuleIDs {
		if id <= 0 {
			return fmt.Errorf("%s.rule_ids[%d]: %d is not a rule id", field, k, id)
		}
	}
	return nil
}

// validPort reports whether p is empty or a port number, 1 to 65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
