package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/web"
)

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "data directory to create (required)")
	td := fs.String("trust-domain", "rampart.local", "SPIFFE trust domain of the services")
	caCert := fs.String("ca-cert", "", "import this CA certificate (PEM) instead of generating a root; needs -ca-key")
	caKey := fs.String("ca-key", "", "the imported CA's private key (PEM)")
	kekFile := fs.String("ca-kek-file", "", "key-encryption key that seals the CA key: read from FILE, or created there (0600) if it does not exist; "+
		"keep it outside the data directory (default: env RAMPART_CA_KEK, or a new one printed once)")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{"init: -data DIR is required"}
	}
	var opts control.InitOptions
	if (*caCert == "") != (*caKey == "") {
		return usageError{"init: -ca-cert and -ca-key go together"}
	}
	if *caCert != "" {
		var err error
		if opts.CACertPEM, err = os.ReadFile(*caCert); err != nil {
			return fmt.Errorf("init: -ca-cert: %w", err)
		}
		if opts.CAKeyPEM, err = os.ReadFile(*caKey); err != nil {
			return fmt.Errorf("init: -ca-key: %w", err)
		}
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	kek, kekSource, newKEKFile, err := initKEK(abs, *kekFile)
	if err != nil {
		return err
	}
	opts.CAKEK = kek
	token, err := control.InitWith(ctx, abs, *td, opts)
	if err != nil {
		if newKEKFile != "" {
			os.Remove(newKEKFile) // made for this init, which left nothing else
		}
		return errors.New(strings.TrimPrefix(err.Error(), "control: "))
	}
	fmt.Fprintf(stdout, `Initialized %s for trust domain %s.

Admin token (shown only this once; keep it in a secret store):
  %s
`, abs, *td, token)
	serve := "rampart server -data " + abs
	switch kekSource {
	case "file":
		fmt.Fprintf(stdout, "\nThe CA key is sealed under the key-encryption key in %s: keep that file away from the data directory and its backups.\n", *kekFile)
		serve += " -ca-kek-file " + *kekFile
	case "env":
		fmt.Fprint(stdout, "\nThe CA key is sealed under the key-encryption key in RAMPART_CA_KEK: give the server the same.\n")
	default:
		fmt.Fprintf(stdout, `
CA key-encryption key (shown only this once; the CA key is sealed under it: keep it in a
secret store, away from the data directory and its backups; give it to the server as
RAMPART_CA_KEK or in a file with -ca-kek-file):
  %s
`, ca.EncodeKEK(kek))
	}
	fmt.Fprintf(stdout, `
To use it:
  %s &
  export RAMPART_ADDR=127.0.0.1:8443 RAMPART_CA=%s RAMPART_TOKEN=%s
`, serve, filepath.Join(abs, control.CADir, ca.CertFile), token)
	return nil
}

// initKEK returns the key-encryption key of a new data directory dir, and
// where it comes from: the file at path (made if it does not exist, which
// newFile then names), RAMPART_CA_KEK, or a new one to print.
func initKEK(dir, path string) (kek []byte, source, newFile string, err error) {
	if path != "" {
		if err := outsideDataDir(dir, path); err != nil {
			return nil, "", "", err
		}
		kek, err := ca.ReadKEKFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			kek = ca.NewKEK()
			if err := ca.WriteKEKFile(path, kek); err != nil {
				return nil, "", "", fmt.Errorf("init: -ca-kek-file: %w", err)
			}
			return kek, "file", path, nil
		}
		if err != nil {
			return nil, "", "", fmt.Errorf("init: -ca-kek-file: %w", err)
		}
		return kek, "file", "", nil
	}
	if env := os.Getenv("RAMPART_CA_KEK"); env != "" {
		kek, err := ca.ParseKEK(env)
		if err != nil {
			return nil, "", "", fmt.Errorf("init: RAMPART_CA_KEK: %v", strings.TrimPrefix(err.Error(), "ca: "))
		}
		return kek, "env", "", nil
	}
	return ca.NewKEK(), "new", "", nil
}

// serverKEK returns the key-encryption key of the CA key given to the
// server: the file at path, else RAMPART_CA_KEK, else none.
func serverKEK(dir, path string) ([]byte, error) {
	if path != "" {
		if err := outsideDataDir(dir, path); err != nil {
			return nil, err
		}
		kek, err := ca.ReadKEKFile(path)
		if err != nil {
			return nil, fmt.Errorf("server: -ca-kek-file: %v", strings.TrimPrefix(err.Error(), "ca: "))
		}
		return kek, nil
	}
	if env := os.Getenv("RAMPART_CA_KEK"); env != "" {
		kek, err := ca.ParseKEK(env)
		if err != nil {
			return nil, fmt.Errorf("server: RAMPART_CA_KEK: %v", strings.TrimPrefix(err.Error(), "ca: "))
		}
		return kek, nil
	}
	return nil, nil
}

// outsideDataDir refuses a key-encryption key file inside the data
// directory: there it would protect nothing from whoever copies the
// directory.
func outsideDataDir(dir, path string) error {
	absDir, err1 := filepath.Abs(dir)
	absPath, err2 := filepath.Abs(path)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if rel, err := filepath.Rel(absDir, absPath); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return usageError{fmt.Sprintf("-ca-kek-file %s is inside the data directory %s: keep the key-encryption key elsewhere, or it protects nothing", path, dir)}
	}
	return nil
}

func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "data directory made by 'rampart init' (required)")
	addr := fs.String("addr", "127.0.0.1:8443", "listen address")
	hosts := fs.String("hosts", "", "extra comma-separated DNS names or IPs for the server certificate")
	// The DSN may hold a password: read from the environment after
	// parsing, so that -h, which prints defaults, never shows it.
	pg := fs.String("postgres", "", "PostgreSQL DSN: store there instead of SQLite in the data directory, so that several servers share it (default: env RAMPART_POSTGRES, never shown)")
	rotation := fs.Duration("actor-key-rotation", control.DefaultActorKeyRotation, "how long an actor-token signing key signs before the next one is published; 0 never rotates (every server over one store should agree)")
	ahead := fs.Duration("actor-key-publish-ahead", control.DefaultActorKeyPublishAhead, "how long the next actor-token key is published to verifiers before it signs")
	kekFile := fs.String("ca-kek-file", "", "file holding the key-encryption key the CA key is sealed under, outside the data directory (default: env RAMPART_CA_KEK, never shown)")
	gateways := fs.String("gateways", control.DefaultGatewayService, "comma-separated names of the gateway services, whose SVIDs may read the actor-token signing key")
	retention := []struct {
		flag string
		keep *time.Duration
	}{
		{"retention-events", fs.Duration("retention-events", control.DefaultRetainEvents, "how long security events are kept; 0 keeps them forever")},
		{"retention-changes", fs.Duration("retention-changes", control.DefaultRetainChanges, "how long watch changes are kept: a service or gateway disconnected longer reloads all its state on return; 0 keeps them forever")},
		{"retention-decisions", fs.Duration("retention-decisions", control.DefaultRetainDecisions, "how long decisions are kept after they expire; 0 keeps them forever")},
		{"retention-join-tokens", fs.Duration("retention-join-tokens", control.DefaultRetainJoinTokens, "how long join tokens are kept after they are used or expire; 0 keeps them forever")},
		{"retention-instances", fs.Duration("retention-instances", control.DefaultRetainInstances, "how long an instance stays in the inventory after its last heartbeat; 0 keeps it forever")},
	}
	pruneInterval := fs.Duration("prune-interval", control.DefaultPruneInterval, "how often what is past its retention is deleted (from the start)")
	quotaInstances := fs.Int("quota-instances", control.DefaultInstancesPerService, "most instances per service: a new instance id replaces a gone one or is refused (429); -1: no limit")
	quotaWatches := fs.Int("quota-watches", control.DefaultWatchesPerService, "most open watches (long polls) per service identity; -1: no limit")
	quotaAllWatches := fs.Int("quota-watches-total", control.DefaultWatches, "most open watches of all service identities together; -1: no limit")
	quotaRate := fs.Float64("quota-rate", control.DefaultRequestsPerSecond, "requests per second per service identity (token bucket); -1: no limit")
	quotaBurst := fs.Int("quota-burst", control.DefaultBurst, "requests a service identity may make at once, over -quota-rate")
	detectF := addDetectFlags(fs)
	dashboard := fs.Bool("dashboard", true, "serve the web dashboard under /ui/ on the same listener (sign in with the admin token)")
	people := fs.String("dashboard-people", "", "file of per-person dashboard credentials, one \"name sha256-hex-of-secret\" a line: their actions are audited under their names")
	quotaInFlight := fs.Int("quota-in-flight", control.DefaultInFlightPerService, "most requests of one service identity served at once, watches apart; -1: no limit")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{"server: -data DIR is required"}
	}
	detectCfg, err := detectF.config()
	if err != nil {
		return err
	}
	if *pg == "" {
		*pg = os.Getenv("RAMPART_POSTGRES")
	}
	kek, err := serverKEK(*dir, *kekFile)
	if err != nil {
		return err
	}
	for _, r := range retention {
		switch {
		case *r.keep < 0:
			return usageError{fmt.Sprintf("server: -%s must not be negative (0 keeps forever)", r.flag)}
		case *r.keep == 0:
			*r.keep = -1 // control: a negative retention keeps forever
		}
	}
	if *pruneInterval <= 0 {
		return usageError{"server: -prune-interval must be positive"}
	}
	for name, v := range map[string]float64{"quota-instances": float64(*quotaInstances), "quota-watches": float64(*quotaWatches),
		"quota-watches-total": float64(*quotaAllWatches), "quota-rate": *quotaRate, "quota-burst": float64(*quotaBurst), "quota-in-flight": float64(*quotaInFlight)} {
		if v == 0 || v < -1 {
			return usageError{fmt.Sprintf("server: -%s must be positive, or -1 for no limit", name)}
		}
	}
	switch {
	case *rotation < 0:
		return usageError{"server: -actor-key-rotation must not be negative (0 never rotates)"}
	case *rotation == 0:
		*rotation = -1 // control: a negative Rotation never rotates
	case *ahead <= 0:
		return usageError{"server: -actor-key-publish-ahead must be positive"}
	case *ahead >= *rotation:
		return usageError{fmt.Sprintf("server: -actor-key-publish-ahead %v must be shorter than -actor-key-rotation %v", *ahead, *rotation)}
	}
	var gatewayNames []string
	for _, g := range strings.Split(*gateways, ",") {
		if g = strings.TrimSpace(g); g != "" {
			gatewayNames = append(gatewayNames, g)
		}
	}
	var hostNames []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hostNames = append(hostNames, h)
		}
	}
	var ui func(control.DashboardConfig) (http.Handler, error)
	if *dashboard {
		ui = web.Mount
	}
	if *dashboard && *people != "" {
		f, err := os.Open(*people)
		if err != nil {
			return fmt.Errorf("server: -dashboard-people: %w", err)
		}
		list, err := web.ParsePeople(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("server: -dashboard-people %s: %s", *people, strings.TrimPrefix(err.Error(), "web: "))
		}
		ui = func(c control.DashboardConfig) (http.Handler, error) {
			cfg := web.FromControl(c)
			cfg.People = list
			return web.New(cfg)
		}
	}
	srv, err := control.StartServer(ctx, control.ServerConfig{
		Dir: *dir, Addr: *addr, Hosts: hostNames, PostgresDSN: *pg, CAKEK: kek,
		ActorKeyRotation: *rotation, ActorKeyPublishAhead: *ahead, GatewayServices: gatewayNames,
		Retention: control.Retention{
			Events: *retention[0].keep, Changes: *retention[1].keep, Decisions: *retention[2].keep,
			JoinTokens: *retention[3].keep, Instances: *retention[4].keep, Interval: *pruneInterval,
		},
		Quotas: control.Quotas{
			InstancesPerService: *quotaInstances, WatchesPerService: *quotaWatches, Watches: *quotaAllWatches,
			RequestsPerSecond: *quotaRate, Burst: *quotaBurst, InFlightPerService: *quotaInFlight,
		},
		Detect:    detectCfg,
		Dashboard: ui,
		Logger:    slog.New(slog.NewTextHandler(stderr, nil)),
	})
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "control: "))
	}
	fmt.Fprintf(stdout, "rampart: control plane serving on %s (trust domain %s)\n", srv.URL(), srv.TrustDomain().Name())
	if *dashboard {
		fmt.Fprintf(stdout, "rampart: dashboard at %s%s (sign in with the admin token)\n", srv.URL(), web.Prefix)
	}
	select {
	case <-srv.Done():
		// It stopped by itself: its listener failed, or its key
		// schedule, without which it would stop rotating keys; better
		// stop, and be restarted.
		srv.Close()
		return fmt.Errorf("server: %s", strings.TrimPrefix(srv.Err().Error(), "control: "))
	case <-ctx.Done():
	}
	// Let requests in flight finish, long polls included, for a few seconds.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	return nil
}

// parseFlags parses flags that may come before, between or after the
// positional arguments, and checks that there are exactly n of those (any
// number if n < 0).
func parseFlags(fs *flag.FlagSet, args []string, n int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usageError{fs.Name() + ": " + err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case n == 0 && len(pos) > 0:
		return nil, usageError{fmt.Sprintf("%s takes no arguments, got %q", fs.Name(), pos[0])}
	case n > 0 && len(pos) != n:
		return nil, usageError{fmt.Sprintf("%s takes %d argument(s), got %d", fs.Name(), n, len(pos))}
	}
	return pos, nil
}

// errHelp is returned after -h printed a command's flags: not a failure.
var errHelp = errors.New("help requested")
