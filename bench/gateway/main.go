// Command gateway runs, in one process on loopback, what the gateway
// throughput benchmarks measure, and prints where each listens:
//
//	bare               a tiny Go HTTP server answering about 100 bytes (plain HTTP)
//	reverseproxy       net/http/httputil.ReverseProxy alone in front of bare
//	gateway-off        the Rampart gateway, WAF off, routing to bare (plain HTTP)
//	gateway-crs        the Rampart gateway, CRS at paranoia level 1, routing to bare
//	gateway-mtls-off   the gateway, WAF off, routing to service "shop" over mTLS
//	gateway-mtls-crs   the gateway, CRS PL1, routing to "shop" over mTLS
//	nginx-listen       a free address for run.sh to start nginx on
//	pprof              net/http/pprof of this process
//
// then "ready", and serves until interrupted. Service "shop" is the bare
// handler behind the rampart SDK, joined to a control plane that runs here
// too (a data directory in a temporary directory, SQLite). run.sh drives wrk
// against each; see BENCHMARKS.md.
//
//	go run ./bench/gateway [-access-log FILE]
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/gateway"
)

// body is what every upstream answers: about 100 bytes of JSON.
const body = `{"id":12345,"name":"Wireless headphones","price":129.99,"currency":"EUR","in_stock":true,"sku":"A-100"}` + "\n"

func main() {
	accessLog := flag.String("access-log", "", "write the gateways' access log (JSON) to this file; none if empty")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *accessLog); err != nil {
		log.Fatal(err)
	}
}

// answer is the bare upstream's handler: it reads the body and answers.
func answer(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, body)
}

func run(ctx context.Context, accessLog string) error {
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	listen := func(name string) (net.Listener, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("%s http://%s\n", name, ln.Addr())
		return ln, nil
	}
	serve := func(srv *http.Server, ln net.Listener) {
		go srv.Serve(ln)
		closers = append(closers, func() { srv.Close() })
	}

	// (a) the bare upstream.
	ln, err := listen("bare")
	if err != nil {
		return err
	}
	bare := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	serve(&http.Server{Handler: http.HandlerFunc(answer), ReadHeaderTimeout: 5 * time.Second}, ln)

	// (b) ReverseProxy alone, with a transport that keeps as many idle
	// connections as the gateway's.
	ln, err = listen("reverseproxy")
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	rp := &httputil.ReverseProxy{Transport: tr, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(bare)
		pr.SetXForwarded()
	}}
	serve(&http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}, ln)

	// The control plane, service "shop" behind the SDK, and the gateways.
	cp, err := startControlPlane(ctx)
	if err != nil {
		return err
	}
	closers = append(closers, cp.close)
	if err := cp.api(ctx, "PUT", "/v1/policy", "services:\n  shop:\n    allow:\n      - callers: [gateway]\n", nil); err != nil {
		return err
	}
	shopSrc, err := cp.join(ctx, "shop")
	if err != nil {
		return err
	}
	closers = append(closers, func() { shopSrc.Close() })
	agent, err := rampart.New(rampart.Config{Service: "shop", Identity: shopSrc, ControlPlane: cp.url, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	closers = append(closers, func() { agent.Close(context.Background()) })
	if err := agent.Ready(ctx); err != nil {
		return err
	}
	shopLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	shop := &http.Server{Handler: agent.Handler(http.HandlerFunc(answer)), TLSConfig: agent.ServerTLSConfig(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	go shop.ServeTLS(shopLn, "", "")
	closers = append(closers, func() { shop.Close() })

	gwSrc, err := cp.join(ctx, "gateway")
	if err != nil {
		return err
	}
	closers = append(closers, func() { gwSrc.Close() })
	logger := slog.New(slog.DiscardHandler)
	if accessLog != "" {
		f, err := os.Create(accessLog)
		if err != nil {
			return err
		}
		closers = append(closers, func() { f.Close() })
		logger = slog.New(slog.NewJSONHandler(f, nil))
	}
	for _, g := range []struct{ name, waf, route string }{
		{"gateway-off", "off", "upstream: " + bare.String()},
		{"gateway-crs", "blocking", "upstream: " + bare.String()},
		{"gateway-mtls-off", "off", "upstream: https://" + shopLn.Addr().String() + "\n    service: shop"},
		{"gateway-mtls-crs", "blocking", "upstream: https://" + shopLn.Addr().String() + "\n    service: shop"},
	} {
		cfg, err := gateway.ParseConfig(fmt.Appendf(nil, "listen: {http: 127.0.0.1:0}\ncontrol_plane: {url: %q}\nwaf: {mode: %s, paranoia_level: 1}\nroutes:\n  - name: shop\n    %s\n",
			cp.url, g.waf, g.route))
		if err != nil {
			return err
		}
		ls, err := gateway.Bind(cfg)
		if err != nil {
			return err
		}
		gw, err := gateway.New(ctx, gateway.Options{Config: cfg, Identity: gwSrc, Logger: logger})
		if err != nil {
			ls.Close()
			return err
		}
		served := make(chan struct{})
		sctx, cancel := context.WithCancel(context.Background())
		go func() {
			defer close(served)
			gw.Serve(sctx, ls, 2*time.Second)
		}()
		closers = append(closers, func() {
			cancel()
			<-served
			gw.Close()
		})
		select {
		case <-gw.Ready():
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%s: not ready after 30 s", g.name)
		}
		fmt.Printf("%s http://%s\n", g.name, ls.HTTP.Addr())
	}

	// A free address for nginx, and pprof.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("nginx-listen %s\n", ln.Addr())
	ln.Close()
	ln, err = listen("pprof")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	serve(&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln)

	fmt.Println("ready")
	<-ctx.Done()
	return nil
}

// controlPlane is a control plane serving on loopback (control.StartServer)
// from a temporary data directory.
type controlPlane struct {
	url    string
	bundle []byte
	admin  string
	client *http.Client
	close  func()
}

func startControlPlane(ctx context.Context) (*controlPlane, error) {
	dir, err := os.MkdirTemp("", "rampart-bench-")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	admin, err := control.Init(ctx, data, "example.org")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	bundle, err := os.ReadFile(filepath.Join(data, control.CADir, ca.CertFile))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	srv, err := control.StartServer(ctx, control.ServerConfig{Dir: data, Addr: "127.0.0.1:0"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	return &controlPlane{url: srv.URL(), bundle: bundle, admin: admin, client: client,
		close: func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if srv.Shutdown(sctx) != nil {
				srv.Close()
			}
			os.RemoveAll(dir)
		}}, nil
}

// api calls the control plane's API as the admin; a string body is sent
// as YAML, anything else as JSON.
func (c *controlPlane) api(ctx context.Context, method, path string, in, out any) error {
	var r io.Reader
	contentType := "application/json"
	if s, ok := in.(string); ok {
		r, contentType = bytes.NewReader([]byte(s)), "application/yaml"
	} else if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.admin)
	req.Header.Set("Content-Type", contentType)
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// join makes service name a member of the mesh.
func (c *controlPlane) join(ctx context.Context, name string) (*identity.CASource, error) {
	var tok struct {
		Token string `json:"token"`
	}
	if err := c.api(ctx, "POST", "/v1/tokens", map[string]string{"service": name}, &tok); err != nil {
		return nil, err
	}
	if tok.Token == "" {
		return nil, errors.New("no join token in the answer")
	}
	return identity.Join(ctx, identity.JoinConfig{ControlPlane: c.url, ControlPlaneBundle: c.bundle, Service: name, Token: tok.Token})
}
