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
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/control"
)

// clientFlags are the flags every command that talks to the control plane
// takes; the environment gives their defaults. The admin token is read from
// the environment only after the flags are parsed (see client), never as a
// flag's default: -h prints defaults, and must never print a secret.
type clientFlags struct {
	addr, token, ca, output string
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	c := &clientFlags{}
	fs.StringVar(&c.addr, "addr", envOr("RAMPART_ADDR", "127.0.0.1:8443"), "control plane address, host:port or https URL (env RAMPART_ADDR)")
	fs.StringVar(&c.token, "token", "", "admin token (default: env RAMPART_TOKEN, never shown)")
	fs.StringVar(&c.ca, "ca", os.Getenv("RAMPART_CA"), "CA certificate that signed the server's, e.g. DATA/ca/ca.crt (env RAMPART_CA)")
	fs.StringVar(&c.output, "o", "table", "output format: table or json")
	return c
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// client calls the control-plane API.
type client struct {
	base  string
	token string
	http  *http.Client
	json  bool
}

func (c *clientFlags) client() (*client, error) {
	switch c.output {
	case "table", "json":
	default:
		return nil, usageError{fmt.Sprintf("-o %q: want table or json", c.output)}
	}
	if c.token == "" {
		c.token = os.Getenv("RAMPART_TOKEN")
	}
	if c.token == "" {
		return nil, usageError{"no admin token: set RAMPART_TOKEN or pass -token (printed by 'rampart init')"}
	}
	base := c.addr
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, usageError{fmt.Sprintf("-addr %q: want host:port or an https URL", c.addr)}
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.ca != "" {
		pemData, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("%s has no PEM certificate; point RAMPART_CA or -ca at DATA/ca/ca.crt", c.ca)
		}
		tlsConfig.RootCAs = pool
	}
	return &client{
		base:  strings.TrimSuffix(u.String(), "/"),
		token: c.token,
		http: &http.Client{
			Timeout:   time.Minute,
			Transport: &http.Transport{TLSClientConfig: tlsConfig, Proxy: http.ProxyFromEnvironment},
		},
		json: c.output == "json",
	}, nil
}

// do sends a request with a JSON body (if in is not nil) and decodes the
// JSON response into out (if not nil). It returns the raw response body.
func (c *client) do(ctx context.Context, method, path string, in, out any) ([]byte, error) {
	if in == nil {
		return c.doRaw(ctx, method, path, "", nil, out)
	}
	data, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return c.doRaw(ctx, method, path, "application/json", data, out)
}

// doRaw is do with a body of any content type.
func (c *client) doRaw(ctx context.Context, method, path, contentType string, in []byte, out any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, explainTransportError(c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read response from %s: %w", c.base, err)
	}
	if resp.StatusCode >= 300 {
		var eb control.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			msg := eb.Error
			if eb.Code == "unauthorized" {
				msg += "; check RAMPART_TOKEN"
			}
			return nil, fmt.Errorf("%s (HTTP %d, request %s)", msg, resp.StatusCode, eb.RequestID)
		}
		return nil, fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%s %s: unexpected response: %w", method, path, err)
		}
	}
	return data, nil
}

func explainTransportError(base string, err error) error {
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return fmt.Errorf("cannot verify the certificate of %s: set RAMPART_CA or -ca to the data directory's ca/ca.crt", base)
	}
	if he, ok := errors.AsType[x509.HostnameError](err); ok {
		return fmt.Errorf("the certificate of %s is not valid for that name (%v): restart the server with -hosts", base, he)
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" {
		return fmt.Errorf("cannot reach %s: is 'rampart server' running there? (%v)", base, oe.Err)
	}
	return fmt.Errorf("request to %s: %w", base, err)
}

// printJSON writes raw JSON indented.
func printJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}
