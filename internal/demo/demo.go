// Package demo runs Rampart's one-command demo: the whole product in one
// process, on loopback — a control plane, the edge gateway, and the sample
// shop service behind the SDK as a member of the zero-trust mesh — and an
// attacker's story told against it, each step with its curl line, its
// answer and the event as the control plane stored it.
package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/examples/shop"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/detect"
	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/web"
	"github.com/rampartsec/rampart/ssrfguard"
)

// Config configures the demo.
type Config struct {
	// Addr is the gateway's listen address; "" means 127.0.0.1:8080, or a
	// free port if that is taken.
	Addr string
	// ControlAddr is the control plane's API address; "" means a free
	// port on 127.0.0.1.
	ControlAddr string
	// DataDir is the control plane's data directory. "" means a temporary
	// one, deleted at the end; a new or empty directory is initialized and
	// kept; an initialized one needs its AdminToken.
	DataDir    string
	AdminToken string
	// Mode is the SDK's: "" means block. In monitor mode the WAF only
	// detects too, so that every attack really lands.
	Mode rampart.Mode
	// Database is the shop's SQLite path; "" means in memory.
	Database string
	// Once returns after the story instead of serving until ctx is done.
	Once   bool
	Out    io.Writer    // where the demo prints; nil means io.Discard
	Logger *slog.Logger // the components' own log; nil discards it
	// Ready, when not nil, receives the gateway's URL once the story is
	// told.
	Ready chan<- string
	// DashboardReady, when not nil, receives the dashboard's URL and a
	// fresh one-time sign-in link once the story is told.
	DashboardReady chan<- Dashboard
}

// Dashboard is where the demo's dashboard is, and a one-time link that
// signs its first visitor in as the admin (web.SignInLinkTTL).
type Dashboard struct {
	URL        string
	SignInLink string
}

// The attacker of the story, and what it sends.
const (
	// AttackerIP is where the attacker's requests come from: the demo's
	// curl lines say so with X-Forwarded-For, which the gateway believes
	// from 127.0.0.1, playing the load balancer in front of it.
	AttackerIP = "203.0.113.7"
	// AttackerUser is the partner account whose API key the attacker
	// uses.
	AttackerUser = "mallory"
	// AttackerAPIKey is that key, sent in X-API-Key.
	AttackerAPIKey = "rk_demo_mallory_5f1c0e"

	// InjectionQuery is the search term of the classic SQL injection: a
	// UNION that would read every customer's API key through the
	// concatenating search handler. The Core Rule Set blocks it.
	InjectionQuery = "' UNION SELECT id, email || ' ' || api_key, 0 FROM users -- "

	// BlindInjectionQuery is the search term of the injection that gets
	// past the edge: a boolean-blind one, which lists the Moka pot if some
	// customer's API key starts with "sk_live_a" and nothing otherwise, so
	// that the keys can be read one character at a time. Of the CRS rules
	// at paranoia level 1, only 942100 (libinjection) matches it, and the
	// gateway turns that rule off on /products.
	BlindInjectionQuery = "pot%' AND EXISTS(SELECT 1 FROM users WHERE api_key LIKE 'sk_live_a%') AND name LIKE '"

	// FalsePositiveQuery is the ordinary search that rule 942100 would
	// block: the reason for its exclusion on /products.
	FalsePositiveQuery = "Travel case (black)"

	// InternalHost is the host name of the internal billing service, which
	// the shop's network resolves to 127.0.0.1: the SSRF's target.
	InternalHost = "billing.internal"

	// ExcludedRule is the CRS rule the gateway turns off on /products.
	ExcludedRule = 942100
)

// TrustDomain is the trust domain of a data directory the demo makes.
const TrustDomain = "rampart.local"

// demoPolicy is the service authorization policy: the gateway alone may
// call the shop, and its login is a sensitive route, which an address
// under a block-sensitive decision (credential stuffing) may not call.
const demoPolicy = `services:
  shop:
    allow:
      - callers: [gateway]
    sensitive:
      - methods: [POST]
        paths: [/login]
`

// Run serves the demo until ctx is done, or tells its story and returns if
// cfg.Once.
func Run(ctx context.Context, cfg Config) error {
	d := &demo{cfg: cfg, out: cfg.Out, log: cfg.Logger}
	if d.out == nil {
		d.out = io.Discard
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	defer d.close()
	if err := d.start(ctx); err != nil {
		return err
	}
	if err := d.tell(ctx); err != nil {
		return err
	}
	if cfg.Ready != nil {
		cfg.Ready <- d.gatewayURL
	}
	if cfg.DashboardReady != nil {
		cfg.DashboardReady <- Dashboard{URL: d.dashboardURL(), SignInLink: d.control.URL() + d.ui.SignInLink()}
	}
	if cfg.Once {
		return nil
	}
	return d.follow(ctx)
}

// demo is the running product and what the story needs of it.
type demo struct {
	cfg Config
	out io.Writer
	log *slog.Logger

	cleanups []func() // run in reverse by close

	dataDir, caFile, adminToken string
	control                     *control.Server
	ui                          *web.Handler // the dashboard, served by the control plane
	admin                       *http.Client // trusts the control plane's CA
	policyVersion               int64

	internalAddr string
	internalHits *atomic.Int64
	agent        *rampart.Agent
	shopURL      string

	gatewayURL string
	client     *http.Client // the attacker's and the users' curl

	began      time.Time // when the demo started
	injectedAt time.Time // when step 2's blind injection was answered
}

// dashboardURL is the dashboard's address.
func (d *demo) dashboardURL() string { return d.control.URL() + web.Prefix }

func (d *demo) onClose(f func()) { d.cleanups = append(d.cleanups, f) }

func (d *demo) close() {
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		d.cleanups[i]()
	}
}

// start runs the control plane, the internal billing service, the shop and
// the gateway.
func (d *demo) start(ctx context.Context) error {
	d.began = time.Now()
	if err := d.startControlPlane(ctx); err != nil {
		return err
	}
	if err := d.startInternal(); err != nil {
		return err
	}
	if err := d.startShop(ctx); err != nil {
		return err
	}
	return d.startGateway(ctx)
}

func (d *demo) startControlPlane(ctx context.Context) error {
	dir := d.cfg.DataDir
	// A temporary data directory keeps its CA key sealed under a
	// key-encryption key that lives only in this process's memory; a data
	// directory given to keep keeps it in the clear, so that a later demo
	// or server can open it (the server warns, and seals it once given a
	// key-encryption key).
	var kek []byte
	if dir == "" {
		tmp, err := os.MkdirTemp("", "rampart-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		d.onClose(func() { os.RemoveAll(tmp) })
		dir = tmp
		kek = ca.NewKEK()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.dataDir = dir
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		if d.cfg.AdminToken == "" {
			return fmt.Errorf("demo: %s is not empty: give the admin token of its control plane (RAMPART_TOKEN), or choose a new directory", dir)
		}
		d.adminToken = d.cfg.AdminToken
	} else if d.adminToken, err = control.InitWith(ctx, dir, TrustDomain, control.InitOptions{CAKEK: kek}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	addr := d.cfg.ControlAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	// Detection runs over the stored events with the built-in scenarios,
	// as 'rampart server -detect' does: the story's automatic responses.
	// In monitor mode they simulate, so that every attack really lands.
	detectCfg := &control.DetectConfig{Logger: d.log}
	if d.cfg.Mode == rampart.ModeMonitor {
		if detectCfg.ScenarioDir, err = simulatedScenarios(); err != nil {
			return err
		}
		d.onClose(func() { os.RemoveAll(detectCfg.ScenarioDir) })
	}
	dashboard := func(c control.DashboardConfig) (http.Handler, error) {
		ui, err := web.New(web.FromControl(c))
		d.ui = ui
		return ui, err
	}
	srv, err := control.StartServer(ctx, control.ServerConfig{Dir: dir, Addr: addr, CAKEK: kek, Logger: d.log,
		Detect: detectCfg, Dashboard: dashboard})
	if err != nil {
		return fmt.Errorf("demo: control plane: %w", err)
	}
	d.control = srv
	d.onClose(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	d.caFile = filepath.Join(dir, control.CADir, ca.CertFile)
	bundle, err := os.ReadFile(d.caFile)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	d.admin = &http.Client{Transport: tr, Timeout: detectionWait}
	d.onClose(tr.CloseIdleConnections)
	var p store.Policy
	if err := d.call(ctx, http.MethodPut, "/v1/policy", demoPolicy, &p); err != nil {
		return err
	}
	d.policyVersion = p.Version
	return nil
}

// simulatedScenarios writes the built-in scenarios, each in simulate
// mode, to a new temporary directory, whose files replace the built-ins
// of the same names: their alerts and decisions are recorded, never
// enforced.
func simulatedScenarios() (string, error) {
	dir, err := os.MkdirTemp("", "rampart-demo-scenarios-")
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	for _, s := range detect.Builtin() {
		src, ok := detect.BuiltinSource(s.Name)
		if !ok || s.Response == nil {
			continue
		}
		out := string(src)
		if !s.Response.Simulate { // some built-ins simulate already
			i := strings.Index(out, "\nresponse:\n")
			if i < 0 {
				os.RemoveAll(dir)
				return "", fmt.Errorf("demo: the built-in scenario %s has no response block to simulate", s.Name)
			}
			i += len("\nresponse:\n")
			out = out[:i] + "  simulate: true\n" + out[i:]
		}
		if err := os.WriteFile(filepath.Join(dir, s.Name+".yaml"), []byte(out), 0o600); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("demo: %w", err)
		}
	}
	return dir, nil
}

// call calls the control plane's API as the admin, as the CLI does. A
// string body is sent as YAML, anything else as JSON.
func (d *demo) call(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		r, contentType = strings.NewReader(b), "application/yaml"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.control.URL()+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.adminToken)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := d.admin.Do(req)
	if err != nil {
		return fmt.Errorf("demo: control plane: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("demo: control plane: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("demo: control plane: %s %s: the admin token is not this control plane's", method, path)
		}
		return fmt.Errorf("demo: control plane: %s %s: %s %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("demo: control plane: %s %s: %w", method, path, err)
		}
	}
	return nil
}

// join creates a join token for service and joins the control plane with
// it, as a service's deployment does.
func (d *demo) join(ctx context.Context, service string) (*identity.CASource, error) {
	var tok control.TokenResponse
	if err := d.call(ctx, http.MethodPost, "/v1/tokens", control.TokenRequest{Service: service}, &tok); err != nil {
		return nil, err
	}
	bundle, err := os.ReadFile(d.caFile)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	src, err := identity.Join(ctx, identity.JoinConfig{
		ControlPlane: d.control.URL(), ControlPlaneBundle: bundle, Service: service, Token: tok.Token, Logger: d.log,
	})
	if err != nil {
		return nil, fmt.Errorf("demo: %s: join the control plane: %w", service, err)
	}
	d.onClose(func() { src.Close() })
	return src, nil
}

// startInternal serves a stand-in for the internal billing service: its
// answer is what an SSRF would steal.
func (d *demo) startInternal() error {
	hits := new(atomic.Int64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"keys":["sk_live_internal_admin_key"]}`)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: internal service: %w", err)
	}
	srv.Listener = ln
	srv.Start()
	d.onClose(srv.Close)
	d.internalAddr, d.internalHits = ln.Addr().String(), hits
	return nil
}

// startShop runs examples/shop as a member of the mesh: its SVID from a
// join token, mTLS on its listener, its events to the control plane.
func (d *demo) startShop(ctx context.Context) error {
	src, err := d.join(ctx, "shop")
	if err != nil {
		return err
	}
	sink, err := rampart.NewControlSink(rampart.ControlPlaneConfig{URL: d.control.URL(), Client: src.ControlPlaneClient()})
	if err != nil {
		return err
	}
	agent, err := rampart.New(rampart.Config{
		Service: "shop", Mode: d.cfg.Mode, Sinks: []rampart.Sink{sink}, Logger: d.log,
		Identity: src, ControlPlane: d.control.URL(),
	})
	if err != nil {
		return err
	}
	d.agent = agent
	d.onClose(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		agent.Close(cctx) // delivers the last events
	})
	rctx, cancel := context.WithTimeout(ctx, detectionWait)
	defer cancel()
	if err := agent.Ready(rctx); err != nil {
		return err
	}
	dbPath := d.cfg.Database
	if dbPath == "" {
		dbPath = ":memory:"
	}
	s, err := shop.Open(ctx, agent, dbPath, d.log)
	if err != nil {
		return err
	}
	d.onClose(func() { s.Close() })
	guard, err := ssrfguard.New(agent, ssrfguard.Config{
		Resolver: internalDNS(map[string]netip.Addr{InternalHost: netip.MustParseAddr("127.0.0.1")}),
	})
	if err != nil {
		return err
	}
	s.StartWorker(context.Background(), guard.Client(nil)) // stopped by s.Close
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: shop: %w", err)
	}
	srv := &http.Server{
		Handler:           agent.Handler(s.Handler()),
		TLSConfig:         agent.ServerTLSConfig(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug), // refused handshakes are events
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.ServeTLS(ln, "", "")
	}()
	d.onClose(func() {
		srv.Close()
		<-served
	})
	d.shopURL = "https://" + ln.Addr().String()
	return nil
}

// gatewayYAML is the gateway's configuration: a route to the shop over
// mTLS, the WAF at paranoia level 1 with the exclusion that the shop's
// catalogue needs, and the partner API keys.
const gatewayYAML = `listen:
  http: %s
control_plane:
  url: %s
  service: gateway
trusted_proxies: [127.0.0.1, "::1"]   # the demo's load balancer: loopback
waf:
  mode: %s
  paranoia_level: 1
auth:
  api_keys: [{name: %s, sha256: %x}]
routes:
  - name: shop
    path_prefix: /
    upstream: %s
    service: shop
    waf_exclusions:
      # Product names such as "Travel case (black)" trip libinjection.
      - {path_prefix: /products, rule_ids: [%d]}
`

func (d *demo) startGateway(ctx context.Context) error {
	ln, err := listen(d.cfg.Addr)
	if err != nil {
		return err
	}
	d.onClose(func() { ln.Close() }) // if Serve never runs
	src, err := d.join(ctx, "gateway")
	if err != nil {
		return err
	}
	mode := "blocking"
	if d.cfg.Mode == rampart.ModeMonitor {
		mode = "detection"
	}
	yaml := fmt.Sprintf(gatewayYAML, ln.Addr(), d.control.URL(), mode, AttackerUser, sha256.Sum256([]byte(AttackerAPIKey)), d.shopURL, ExcludedRule)
	cfg, err := gateway.ParseConfig([]byte(yaml))
	if err != nil {
		return err
	}
	g, err := gateway.New(ctx, gateway.Options{Config: cfg, Identity: src, Logger: d.log})
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.Serve(sctx, &gateway.Listeners{HTTP: ln}, 2*time.Second) }()
	d.onClose(func() {
		stop()
		<-served
		g.Close()
	})
	select {
	case <-g.Ready():
	case err := <-served:
		served <- err
		return fmt.Errorf("demo: gateway: %w", err)
	case <-time.After(detectionWait):
		return fmt.Errorf("demo: gateway: not ready after %v: it could not reach the control plane", detectionWait)
	case <-ctx.Done():
		return ctx.Err()
	}
	d.gatewayURL = "http://" + ln.Addr().String()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}
	d.client = &http.Client{Transport: tr, Timeout: detectionWait}
	d.onClose(tr.CloseIdleConnections)
	return nil
}

// listen binds addr, or 127.0.0.1:8080 and then any free loopback port when
// none is given.
func listen(addr string) (net.Listener, error) {
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("demo: listen on %s: %w (choose another with -addr)", addr, err)
		}
		return ln, nil
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:8080"); err == nil {
		return ln, nil
	}
	return net.Listen("tcp", "127.0.0.1:0")
}
