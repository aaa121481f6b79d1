package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/gateway"
)

// runGateway serves the edge gateway described by a gateway.yaml.
func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "gateway.yaml", "gateway configuration file")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	cfg, err := gateway.ParseConfig(data)
	if err != nil {
		return err
	}
	if cfg.ControlPlane.Bundle == "" {
		return errors.New("gateway config: control_plane.bundle: required (the trust bundle, ca/ca.crt of the control plane's data directory)")
	}
	bundle, err := os.ReadFile(cfg.ControlPlane.Bundle)
	if err != nil {
		return fmt.Errorf("gateway config: control_plane.bundle: %w", err)
	}
	token := os.Getenv("RAMPART_JOIN_TOKEN")
	if cfg.ControlPlane.JoinTokenFile != "" {
		raw, err := os.ReadFile(cfg.ControlPlane.JoinTokenFile)
		if err != nil {
			return fmt.Errorf("gateway config: control_plane.join_token_file: %w", err)
		}
		token = strings.TrimSpace(string(raw))
	}
	if token == "" && cfg.ControlPlane.IdentityDir == "" {
		return fmt.Errorf("gateway: no join token: set control_plane.join_token_file or RAMPART_JOIN_TOKEN (create one with 'rampart token create %s'), and control_plane.identity_dir to need it only once", cfg.ControlPlane.Service)
	}
	logger := slog.New(slog.NewJSONHandler(stdout, nil))
	src, err := identity.Join(ctx, identity.JoinConfig{
		ControlPlane: cfg.ControlPlane.URL, ControlPlaneBundle: bundle, Service: cfg.ControlPlane.Service, Token: token, Logger: logger,
		Dir: cfg.ControlPlane.IdentityDir,
	})
	if err != nil {
		return fmt.Errorf("gateway: join the control plane: %w", err)
	}
	defer src.Close()
	ls, err := gateway.Bind(cfg)
	if err != nil {
		return err
	}
	g, err := gateway.New(ctx, gateway.Options{Config: cfg, Identity: src, Logger: logger})
	if err != nil {
		ls.Close()
		return err
	}
	defer g.Close()
	for name, l := range map[string]net.Listener{"http": ls.HTTP, "https": ls.HTTPS, "admin": ls.Admin} {
		if l != nil {
			logger.Info("rampart gateway: listening", "listener", name, "addr", l.Addr().String())
		}
	}
	return g.Serve(ctx, ls, 10*time.Second)
}
