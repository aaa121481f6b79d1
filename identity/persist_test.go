package identity_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/controltest"
)

// joinDir joins cp as service with its state in dir, logging to log.
func joinDir(t *testing.T, cp *controltest.ControlPlane, service, token, dir string, log *bytes.Buffer, now func() time.Time) (*identity.CASource, error) {
	t.Helper()
	src, err := identity.Join(t.Context(), identity.JoinConfig{
		ControlPlane: cp.URL, ControlPlaneBundle: cp.BundlePEM, Service: service, Token: token, Dir: dir,
		RetryInterval: 100 * time.Millisecond, Now: now,
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err == nil {
		t.Cleanup(func() { src.Close() })
	}
	return src, err
}

func usesLeft(t *testing.T, cp *controltest.ControlPlane, service string) int {
	t.Helper()
	list := tokens(t, cp, service)
	n := 0
	for _, tok := range list.Tokens {
		n += tok.UsesLeft
	}
	return n
}

func serial(t *testing.T, src *identity.CASource) string {
	t.Helper()
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	return svid.Certificates[0].SerialNumber.String()
}

func TestUnusableSavedFilesAreAnErrorAndSpendNoToken(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	var log bytes.Buffer
	good := filepath.Join(t.TempDir(), "shop")
	src, err := joinDir(t, cp, "shop", cp.JoinToken(t, "shop"), good, &log, nil)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	svidPEM, _ := os.ReadFile(filepath.Join(good, identity.SVIDFile))
	bundlePEM, _ := os.ReadFile(filepath.Join(good, identity.BundleFile))
	web := filepath.Join(t.TempDir(), "web")
	if src, err := joinDir(t, cp, "web", cp.JoinToken(t, "web"), web, &log, nil); err != nil {
		t.Fatal(err)
	} else {
		src.Close()
	}
	webPEM, _ := os.ReadFile(filepath.Join(web, identity.SVIDFile))
	keyEnd := bytes.Index(svidPEM, []byte("-----END PRIVATE KEY-----\n")) + len("-----END PRIVATE KEY-----\n")
	webKeyEnd := bytes.Index(webPEM, []byte("-----END PRIVATE KEY-----\n")) + len("-----END PRIVATE KEY-----\n")

	for _, tc := range []struct {
		name       string
		svid       []byte
		bundle     []byte // nil: none
		svidMode   os.FileMode
		file, want string
	}{
		{"garbage in the SVID file", []byte("not PEM at all"), bundlePEM, 0o600, identity.SVIDFile, "not PEM"},
		{"a truncated SVID file", svidPEM[:len(svidPEM)-40], bundlePEM, 0o600, identity.SVIDFile, "unusable"},
		{"a certificate without its key", svidPEM[keyEnd:], bundlePEM, 0o600, identity.SVIDFile, "no private key"},
		{"a key beside another key's certificate", append(append([]byte{}, webPEM[:webKeyEnd]...), svidPEM[keyEnd:]...), bundlePEM, 0o600, identity.SVIDFile, "unusable"},
		{"the SVID of another service", webPEM, bundlePEM, 0o600, identity.SVIDFile, "spiffe://example.org/svc/web, not of service shop"},
		{"no bundle beside the SVID", svidPEM, nil, 0o600, identity.BundleFile, "missing"},
		{"a bundle that is not PEM", svidPEM, []byte("garbage"), 0o600, identity.BundleFile, "unusable"},
		{"an SVID file other users can read", svidPEM, bundlePEM, 0o644, identity.SVIDFile, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "shop")
			os.Mkdir(dir, 0o700)
			if err := os.WriteFile(filepath.Join(dir, identity.SVIDFile), tc.svid, tc.svidMode); err != nil {
				t.Fatal(err)
			}
			if tc.bundle != nil {
				if err := os.WriteFile(filepath.Join(dir, identity.BundleFile), tc.bundle, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			token := cp.JoinToken(t, "shop")
			before := usesLeft(t, cp, "shop")
			var log bytes.Buffer
			_, err := joinDir(t, cp, "shop", token, dir, &log, nil)
			if err == nil {
				t.Fatal("Join succeeded over unusable files")
			}
			if msg := err.Error(); !strings.Contains(msg, filepath.Join(dir, tc.file)) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and saying %q", msg, filepath.Join(dir, tc.file), tc.want)
			}
			if after := usesLeft(t, cp, "shop"); after != before {
				t.Errorf("the token was spent (%d uses left, %d before): Join rejoined over unusable files", after, before)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, identity.SVIDFile)); !bytes.Equal(got, tc.svid) {
				t.Error("the unusable SVID file was replaced")
			}
			wantNoKeyMaterial(t, err.Error()+log.String(), good)
		})
	}
}

func TestAnExpiredSavedSVIDTakesTheTokenOrSaysOneIsNeeded(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	var log bytes.Buffer
	dir := filepath.Join(t.TempDir(), "shop")
	src, err := joinDir(t, cp, "shop", cp.JoinToken(t, "shop"), dir, &log, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := serial(t, src)
	src.Close()
	later := func() time.Time { return time.Now().Add(2 * time.Hour) } // the 1 h SVID has expired by then

	_, err = joinDir(t, cp, "shop", "", dir, &log, later)
	if !errors.Is(err, identity.ErrNeedToken) || !strings.Contains(err.Error(), "expired at") || !strings.Contains(err.Error(), "no join token was given") {
		t.Fatalf("expired SVID, no token: %v; want ErrNeedToken saying the SVID expired", err)
	}
	_, err = joinDir(t, cp, "shop", "rjt_0123456789abcdef."+strings.Repeat("A", 43), dir, &log, later)
	if !errors.Is(err, identity.ErrNeedToken) || !strings.Contains(err.Error(), "the join token is unknown") {
		t.Fatalf("expired SVID, forged token: %v; want ErrNeedToken", err)
	}

	src, err = joinDir(t, cp, "shop", cp.JoinToken(t, "shop"), dir, &log, later)
	if err != nil {
		t.Fatalf("expired SVID, fresh token: %v", err)
	}
	if serial(t, src) == first {
		t.Fatal("joined with the token but serves the expired SVID")
	}
	src.Close()
}

func TestARestartWhileTheControlPlaneIsDownServesTheSavedSVID(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	var log bytes.Buffer
	dir := filepath.Join(t.TempDir(), "shop")
	src, err := joinDir(t, cp, "shop", cp.JoinToken(t, "shop"), dir, &log, nil)
	if err != nil {
		t.Fatal(err)
	}
	saved := serial(t, src)
	src.Close()

	cp.Stop()
	src, err = joinDir(t, cp, "shop", "", dir, &log, nil)
	if err != nil {
		t.Fatalf("restart with the control plane down: %v", err)
	}
	if serial(t, src) != saved {
		t.Fatal("it does not serve the saved SVID")
	}
	if !strings.Contains(log.String(), "control plane unreachable") {
		t.Errorf("the log does not say the control plane is unreachable:\n%s", log.String())
	}
	cp.Restart(t)
	deadline := time.Now().Add(time.Minute)
	for src.Renewals() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no renewal within a minute of the control plane's return; log:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	renewed := serial(t, src)
	if renewed == saved {
		t.Fatal("renewal kept the saved SVID")
	}
	src.Close()
	// The renewal was saved: the next start serves on from it.
	src, err = joinDir(t, cp, "shop", "", dir, &log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := serial(t, src); s == renewed || s == saved {
		t.Fatal("a restart after the renewal did not renew again")
	}
	wantNoKeyMaterial(t, log.String(), dir)
}

func TestASavedSVIDTheControlPlaneRefusesFallsBackToTheToken(t *testing.T) {
	// Two control planes of one trust domain with different CAs: the SVID
	// of one is refused by the other at renewal.
	old := controltest.Start(t, controltest.Config{})
	cp := controltest.Start(t, controltest.Config{})
	var log bytes.Buffer
	dir := filepath.Join(t.TempDir(), "shop")
	src, err := joinDir(t, old, "shop", old.JoinToken(t, "shop"), dir, &log, nil)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	_, err = joinDir(t, cp, "shop", "", dir, &log, nil)
	if !errors.Is(err, identity.ErrNeedToken) || !strings.Contains(err.Error(), "refused the SVID saved in "+dir) {
		t.Fatalf("a refused SVID, no token: %v", err)
	}
	src, err = joinDir(t, cp, "shop", cp.JoinToken(t, "shop"), dir, &log, nil)
	if err != nil {
		t.Fatalf("a refused SVID, a token: %v", err)
	}
	src.Close()
	if _, err := joinDir(t, cp, "shop", "", dir, &log, nil); err != nil {
		t.Fatalf("after joining the new control plane, a restart: %v", err)
	}
}

func TestJoinNarrowsAnOpenDirectory(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // whatever the umask
	var log bytes.Buffer
	if _, err := joinDir(t, cp, "shop", cp.JoinToken(t, "shop"), dir, &log, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v, %v; want 0700", dir, fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%s holds %d entries, want the SVID and the bundle only (no temporary file left)", dir, len(entries))
	}
}

func TestJoinWithoutTokenOrDirSaysWhatIsMissing(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	_, err := identity.Join(t.Context(), identity.JoinConfig{ControlPlane: cp.URL, ControlPlaneBundle: cp.BundlePEM, Service: "shop"})
	if err == nil || !strings.Contains(err.Error(), "JoinConfig.Token") {
		t.Fatalf("Join with neither token nor dir: %v", err)
	}
}
