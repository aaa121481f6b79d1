package loadtest

import (
	"bufio"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/control"
)

var partitionF = flag.Duration("rampart.partition", 0, "how long the partitioned service is cut off (default 2m with -rampart.scale, else 40s)")

// partitionLength is how long the link stays down: longer, even in the
// short form, than the windows of the SDK that matter here: the control
// plane's long poll (25 s) and the watch loop's longest pause after a
// failure (10 s), so that the service has given up on its connection and
// retried, several times, while cut off.
func partitionLength() time.Duration {
	switch {
	case *partitionF > 0:
		return *partitionF
	case *scale:
		return 2 * time.Minute
	}
	return 40 * time.Second
}

// netns is a network namespace joined to the host by a veth pair on a
// private /30.
type netns struct {
	name           string
	hostIf, nsIf   string
	hostIP, nsIP   string
	linkDownAtExit bool
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newNetns creates the namespace and the link; both are removed when the
// test ends. It needs root and the ip command: without them the test is
// skipped, except in CI.
func newNetns(t *testing.T) *netns {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the partition test needs root and the ip command (ip netns) in CI")
		}
		t.Skip("the partition test needs root and the ip command (ip netns)")
	}
	// Names and a /30 of 10.213.0.0/16 from the pid, so that two test
	// processes do not collide.
	n := os.Getpid() % 16384
	ns := &netns{
		name: fmt.Sprintf("rampart-pt-%d", os.Getpid()), hostIf: fmt.Sprintf("rpth%d", os.Getpid()), nsIf: fmt.Sprintf("rptn%d", os.Getpid()),
		hostIP: fmt.Sprintf("10.213.%d.%d", n/64, (n%64)*4+1), nsIP: fmt.Sprintf("10.213.%d.%d", n/64, (n%64)*4+2),
	}
	ipCmd(t, "netns", "add", ns.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns.name).Run() })
	ipCmd(t, "link", "add", ns.hostIf, "type", "veth", "peer", "name", ns.nsIf)
	t.Cleanup(func() { exec.Command("ip", "link", "del", ns.hostIf).Run() })
	ipCmd(t, "link", "set", ns.nsIf, "netns", ns.name)
	ipCmd(t, "addr", "add", ns.hostIP+"/30", "dev", ns.hostIf)
	ipCmd(t, "link", "set", ns.hostIf, "up")
	ipCmd(t, "netns", "exec", ns.name, "ip", "link", "set", "lo", "up")
	ipCmd(t, "netns", "exec", ns.name, "ip", "addr", "add", ns.nsIP+"/30", "dev", ns.nsIf)
	ipCmd(t, "netns", "exec", ns.name, "ip", "link", "set", ns.nsIf, "up")
	return ns
}

// child is the partitioned service: this test binary, re-executed inside
// the namespace, running TestPartitionedServiceChild.
type child struct {
	cmd   *exec.Cmd
	in    io.Writer
	lines chan string
}

// probe asks the child to send a request for the actor ip through its own
// mTLS listener, as the gateway would, and returns the status, the refusal
// kind and the serial of the SVID the service served with.
func (c *child) probe(t *testing.T, ip string) (status int, refusal, serial string) {
	t.Helper()
	fmt.Fprintf(c.in, "probe %s\n", ip)
	select {
	case line, ok := <-c.lines:
		if !ok {
			t.Fatal("the partitioned service exited")
		}
		var got string
		if _, err := fmt.Sscanf(line, "probe %s %d %s %s", &got, &status, &refusal, &serial); err != nil || got != ip {
			t.Fatalf("probe answer %q: %v", line, err)
		}
		return status, refusal, serial
	case <-time.After(2 * time.Minute):
		t.Fatal("the partitioned service did not answer a probe in 2 minutes")
	}
	return 0, "", ""
}

// TestPartitionedServiceKeepsEnforcing cuts a service, in its own network
// namespace, off the control plane: while the link is down it keeps
// enforcing the decisions and the policy it had, and keeps serving with its
// SVID; when the link returns it learns the decision made meanwhile.
func TestPartitionedServiceKeepsEnforcing(t *testing.T) {
	ns := newNetns(t)
	cp := controlPlane(t)
	srv := startServer(t, cp, ns.hostIP+":0")
	admin := newAdmin(t, cp, srv.Addr)
	admin.do(t, http.MethodPut, "/v1/policy", "services:\n  shop:\n    allow:\n      - callers: [gateway]\n", nil)
	admin.decide(t, "203.0.113.1")

	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, cp.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	var shopToken, gwToken control.TokenResponse
	admin.do(t, http.MethodPost, "/v1/tokens", control.TokenRequest{Service: "shop"}, &shopToken)
	admin.do(t, http.MethodPost, "/v1/tokens", control.TokenRequest{Service: control.DefaultGatewayService}, &gwToken)
	cmd := exec.Command("ip", "netns", "exec", ns.name, os.Args[0], "-test.run", "^TestPartitionedServiceChild$")
	cmd.Env = append(os.Environ(), "RAMPART_PT_CHILD=1", "RAMPART_PT_URL=https://"+srv.Addr, "RAMPART_PT_CA="+caFile,
		"RAMPART_PT_SHOP_TOKEN="+shopToken.Token, "RAMPART_PT_GATEWAY_TOKEN="+gwToken.Token)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr tailBuffer
	stderr.max = 64 << 10
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, in: stdin, lines: make(chan string)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "PT "); ok {
				c.lines <- line
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close() // the child ends at the end of its input
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && !t.Failed() {
				t.Errorf("partitioned service: %v\n%s", err, stderr.String())
			}
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Errorf("partitioned service did not exit:\n%s", stderr.String())
		}
		if t.Failed() {
			t.Logf("partitioned service's log:\n%s", stderr.String())
		}
	})
	select {
	case line := <-c.lines:
		if line != "ready" {
			t.Fatalf("partitioned service: %q\n%s", line, stderr.String())
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("partitioned service not ready:\n%s", stderr.String())
	}

	// Connected: the decision on .1 is enforced, .2 is served.
	if status, refusal, _ := c.probe(t, "203.0.113.1"); status != http.StatusForbidden || refusal != "decision_enforced" {
		t.Fatalf("before the partition, a blocked actor got %d %s", status, refusal)
	}
	status, _, serial := c.probe(t, "203.0.113.2")
	if status != http.StatusOK {
		t.Fatalf("before the partition, an actor got %d", status)
	}

	// Cut the link, and decide against .2 meanwhile.
	ipCmd(t, "link", "set", ns.hostIf, "down")
	cut := time.Now()
	t.Cleanup(func() { exec.Command("ip", "link", "set", ns.hostIf, "up").Run() })
	admin.decide(t, "203.0.113.2")
	// A probe pair every 2 s for the partition's length: counted, so that a
	// slow probe lengthens the partition instead of skipping probes.
	probes := 0
	for range int(partitionLength() / (2 * time.Second)) {
		if status, refusal, _ := c.probe(t, "203.0.113.1"); status != http.StatusForbidden || refusal != "decision_enforced" {
			t.Errorf("cut off for %v, a blocked actor got %d %s", time.Since(cut).Round(time.Second), status, refusal)
		}
		// Served with the SVID it had, and not yet told of the decision
		// on .2: it really is cut off.
		if status, _, s := c.probe(t, "203.0.113.2"); status != http.StatusOK || s != serial {
			t.Errorf("cut off for %v, an actor got %d from a service with SVID %s (was %s)", time.Since(cut).Round(time.Second), status, s, serial)
		}
		probes++
		time.Sleep(2 * time.Second)
	}
	ipCmd(t, "link", "set", ns.hostIf, "up")
	back := time.Now()
	t.Logf("link down for %v, %d pairs of probes meanwhile", back.Sub(cut).Round(time.Second), probes)

	// Back: the decision made meanwhile arrives. The deadline is for a
	// busy machine; the time it took is reported, not asserted.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		status, refusal, _ := c.probe(t, "203.0.113.2")
		if status == http.StatusForbidden && refusal == "decision_enforced" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 minutes after the link returned, the decision made during the partition is not enforced (%d %s)", status, refusal)
		}
		time.Sleep(100 * time.Millisecond)
	}
	caughtUp := time.Since(back)
	if status, refusal, _ := c.probe(t, "203.0.113.1"); status != http.StatusForbidden || refusal != "decision_enforced" {
		t.Errorf("after the partition, a blocked actor got %d %s", status, refusal)
	}
	msg := fmt.Sprintf("partition of %v: the decision made meanwhile was enforced %v after the link returned", back.Sub(cut).Round(time.Second), caughtUp.Round(10*time.Millisecond))
	t.Log(msg)
	if *reportF != "" {
		if fh, err := os.OpenFile(*reportF, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(fh, "\n### Partition\n\n%s (`go test ./internal/loadtest -run TestPartitionedServiceKeepsEnforcing -rampart.partition %v`)\n", msg, partitionLength())
			fh.Close()
		}
	}
}

// TestPartitionedServiceChild is the partitioned service, run by
// TestPartitionedServiceKeepsEnforcing inside its namespace; alone it does
// nothing. It joins as the service "shop" (the SDK's Agent, whose Handler
// enforces the policy and the decisions) and as a gateway (to sign actor
// tokens and call the shop through its mTLS listener on the namespace's
// loopback), then answers probes read from its standard input.
func TestPartitionedServiceChild(t *testing.T) {
	if os.Getenv("RAMPART_PT_CHILD") != "1" {
		t.Skip("run by TestPartitionedServiceKeepsEnforcing")
	}
	ctx := context.Background()
	url := os.Getenv("RAMPART_PT_URL")
	caPEM, err := os.ReadFile(os.Getenv("RAMPART_PT_CA"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	join := func(service, token string) *identity.CASource {
		src, err := identity.Join(ctx, identity.JoinConfig{ControlPlane: url, ControlPlaneBundle: caPEM, Service: service, Token: token, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}
	shop := join("shop", os.Getenv("RAMPART_PT_SHOP_TOKEN"))
	gw := join(control.DefaultGatewayService, os.Getenv("RAMPART_PT_GATEWAY_TOKEN"))

	agent, err := rampart.New(rampart.Config{Service: "shop", Identity: shop, ControlPlane: url, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close(context.Background()) })
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := agent.Ready(rctx); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", agent.ServerTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: agent.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "order 1\n")
	}))}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	// The gateway's part: its signing key, fetched while connected.
	signer := gatewaySigner(t, url, gw, shop)
	shopSVID, _ := shop.GetX509SVID()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: identity.ClientTLSConfig(gw, shopSVID.ID)}}
	fmt.Println("PT ready")

	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var ip string
		if _, err := fmt.Sscanf(sc.Text(), "probe %s", &ip); err != nil {
			t.Fatalf("command %q", sc.Text())
		}
		token, err := signer.Token(actor.Actor{IP: parseAddr(t, ip)})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, "https://"+ln.Addr().String()+"/orders/1", nil)
		req.Header.Set(actor.Header, token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		refusal := resp.Header.Get(rampart.RefusalHeader)
		if refusal == "" {
			refusal = "-"
		}
		fmt.Printf("PT probe %s %d %s %s\n", ip, resp.StatusCode, refusal, resp.TLS.PeerCertificates[0].SerialNumber.Text(16))
	}
}

// gatewaySigner fetches the actor-token signing key with the gateway's SVID
// and returns a Signer of tokens for the shop.
func gatewaySigner(t *testing.T, url string, gw, shop *identity.CASource) *actor.Signer {
	t.Helper()
	resp, err := gw.ControlPlaneClient().Get(url + "/v1/actor-key")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		JWK json.RawMessage `json:"jwk"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/actor-key: %d %v", resp.StatusCode, err)
	}
	gwSVID, _ := gw.GetX509SVID()
	shopSVID, _ := shop.GetX509SVID()
	signer, err := actor.NewSigner(actor.SignerConfig{Issuer: gwSVID.ID.String(), Audience: shopSVID.ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	keyID, key := parseJWK(t, got.JWK)
	if err := signer.SetKey(keyID, key); err != nil {
		t.Fatal(err)
	}
	return signer
}

// admin calls the API with the admin token.
type admin struct {
	base, token string
	hc          *http.Client
}

func newAdmin(t *testing.T, cp *ControlPlane, addr string) *admin {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cp.CAPEM)
	a := &admin{base: "https://" + addr, token: cp.AdminToken, hc: &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}}}
	t.Cleanup(a.hc.CloseIdleConnections)
	return a
}

func (a *admin) do(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var r io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		r, contentType = strings.NewReader(b), "application/yaml"
	default:
		data, _ := json.Marshal(b)
		r = strings.NewReader(string(data))
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", contentType)
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatal(err)
		}
	}
}

func (a *admin) decide(t *testing.T, ip string) {
	t.Helper()
	a.do(t, http.MethodPost, "/v1/decisions", control.DecisionRequest{Scope: "ip", Value: ip, Action: "block", TTL: "1h", Reason: "partition test"}, nil)
}

func parseAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	ip, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return ip
}

func parseJWK(t *testing.T, data []byte) (string, crypto.Signer) {
	t.Helper()
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	key, ok := jwk.Key.(crypto.Signer)
	if !ok || jwk.KeyID == "" {
		t.Fatalf("actor key is %T, id %q", jwk.Key, jwk.KeyID)
	}
	return jwk.KeyID, key
}
