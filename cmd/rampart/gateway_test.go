package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A gateway with control_plane.identity_dir comes back after a restart on
// the SVID it saved: its join token was single use and is spent.
func TestAGatewayRestartsOnItsSavedIdentity(t *testing.T) {
	cp := startControlPlane(t)
	token, err := cp.cli(t, "token", "create", "gateway")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "join-token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "gateway.yaml")
	yaml := fmt.Sprintf(`listen: {http: 127.0.0.1:0, admin: 127.0.0.1:0}
control_plane:
  url: https://%s
  bundle: %s
  service: gateway
  join_token_file: %s
  identity_dir: %s
routes:
  - upstream: http://127.0.0.1:9
`, cp.addr, cp.caFile, tokenFile, filepath.Join(dir, "identity"))
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for start := range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		var out, errOut syncBuffer
		done := make(chan error, 1)
		go func() { done <- run(ctx, []string{"gateway", "-c", config}, &out, &errOut) }()
		deadline := time.After(time.Minute)
	wait:
		for !strings.Contains(out.String(), "rampart gateway: listening") {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("start %d: the gateway exited: %v\n%s%s", start, err, out.String(), errOut.String())
			case <-deadline:
				break wait
			case <-time.After(20 * time.Millisecond):
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("start %d: %v", start, err)
		}
		if !strings.Contains(out.String(), "rampart gateway: listening") {
			t.Fatalf("start %d: the gateway did not listen within a minute:\n%s%s", start, out.String(), errOut.String())
		}
		if start == 1 && !strings.Contains(out.String(), "SVID renewed with the one saved before the restart") {
			t.Errorf("the restart did not renew with the saved SVID:\n%s", out.String())
		}
	}
	out, err := cp.cli(t, "token", "list", "-all", "-service", "gateway")
	if err != nil || !strings.Contains(out, "0 of 1") {
		t.Errorf("the gateway's token after two starts: %q, %v; want it used once", out, err)
	}
}
