// Package workload gives a service its SPIFFE identity from a SPIFFE
// Workload API, such as the one a SPIRE agent serves on a Unix socket. Its
// [Source] is an [identity.Source]: the TLS configurations of package
// identity and Config.Identity of package rampart take it as they take
// identity.Join's.
//
// It is a package of its own because the Workload API is spoken over gRPC:
// a service that joins Rampart's control plane with identity.Join, or uses
// only the guards, does not link gRPC and protocol buffers.
//
// # Logging
//
// The Workload API client logs the failures of its watch (the agent
// unreachable, an answer it cannot parse) through Config.Logger; nil
// means [slog.Default], as everywhere in Rampart, so the application's
// own choice of handler applies. Rampart never configures global logging.
package workload

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/rampartsec/rampart/identity"
)

// Config configures NewSource. The zero Config reads the Workload API's
// address from the SPIFFE_ENDPOINT_SOCKET environment variable, as every
// SPIFFE workload does, and logs through slog.Default.
type Config struct {
	// Addr is the Workload API's address, such as
	// "unix:///run/spire/agent.sock". "" means the SPIFFE_ENDPOINT_SOCKET
	// environment variable.
	Addr string
	// Logger receives the Workload API client's messages (a failed watch
	// is an error: the SVID is then no longer renewed). Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Source is a service's identity fed by the Workload API: the agent pushes
// each new SVID and trust bundle, and the Source holds the latest until
// Close. It is safe for concurrent use.
type Source struct {
	x509 *workloadapi.X509Source
	td   spiffeid.TrustDomain
}

var _ identity.Source = (*Source)(nil)

// NewSource connects to the Workload API and waits for the first SVID
// until ctx ends, so that a Source it returns always has one. Call Close
// when the service stops.
func NewSource(ctx context.Context, cfg Config) (*Source, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	clientOpts := []workloadapi.ClientOption{workloadapi.WithLogger(slogLogger{log})}
	if cfg.Addr != "" {
		clientOpts = append(clientOpts, workloadapi.WithAddr(cfg.Addr))
	}
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(clientOpts...))
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	svid, err := src.GetX509SVID()
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("workload: %w", err)
	}
	return &Source{x509: src, td: svid.ID.TrustDomain()}, nil
}

// GetX509SVID returns the current SVID, the latest the Workload API sent.
func (s *Source) GetX509SVID() (*x509svid.SVID, error) {
	return s.x509.GetX509SVID()
}

// GetX509BundleForTrustDomain returns the current trust bundle of td, for
// verifying peers of that trust domain.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.x509.GetX509BundleForTrustDomain(td)
}

// TrustDomain returns the trust domain of the service's SVID, the one
// whose members it admits.
func (s *Source) TrustDomain() spiffeid.TrustDomain {
	return s.td
}

// Close closes the connection to the Workload API. The SVID in hand is no
// longer renewed, and GetX509SVID returns an error from then on.
func (s *Source) Close() error {
	return s.x509.Close()
}

// slogLogger hands the Workload API client's messages to a *slog.Logger.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Debugf(format string, args ...any) {
	s.l.Debug("rampart: workload API: " + fmt.Sprintf(format, args...))
}

func (s slogLogger) Infof(format string, args ...any) {
	s.l.Info("rampart: workload API: " + fmt.Sprintf(format, args...))
}

func (s slogLogger) Warnf(format string, args ...any) {
	s.l.Warn("rampart: workload API: " + fmt.Sprintf(format, args...))
}

func (s slogLogger) Errorf(format string, args ...any) {
	s.l.Error("rampart: workload API: " + fmt.Sprintf(format, args...))
}
