package rampart_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/identity"
)

// otherSource is an identity.Source of the service's own making.
type otherSource struct{}

func (*otherSource) GetX509SVID() (*x509svid.SVID, error) { return nil, errors.New("unused") }
func (*otherSource) GetX509BundleForTrustDomain(spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return nil, errors.New("unused")
}
func (*otherSource) TrustDomain() spiffeid.TrustDomain { return spiffeid.TrustDomain{} }
func (*otherSource) Close() error                      { return nil }

// Following the README with a failed identity.Join (its error dropped)
// gives New a nil *identity.CASource inside a non-nil identity.Source: New
// must say so, not panic, and name the field to look at.
func TestNewRefusesAnIdentityThatFailedToStart(t *testing.T) {
	var failedJoin *identity.CASource
	var failedOther *otherSource
	for _, c := range []struct {
		name string
		src  identity.Source
		want string
	}{
		{"a nil *identity.CASource", failedJoin, "Config.Identity is a nil *identity.CASource"},
		{"a nil pointer of another Source type", failedOther, "Config.Identity is a nil *rampart_test.otherSource"},
		{"a CASource that never joined", &identity.CASource{}, "Config.Identity (*identity.CASource) has no SVID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			agent, err := rampart.New(rampart.Config{
				Service: "orders", Identity: c.src, ControlPlane: "https://127.0.0.1:1",
				Sinks: []rampart.Sink{rampart.NewSlogSink(slog.New(slog.DiscardHandler))},
			})
			if err == nil {
				agent.Close(context.Background())
				t.Fatal("New accepted an identity that failed to start")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// The same for a sink whose constructor failed: the delivery goroutine
// would panic on it later, far from the mistake.
func TestNewRefusesASinkThatFailedToStart(t *testing.T) {
	sink, err := rampart.NewControlSink(rampart.ControlPlaneConfig{URL: "ftp://not-http"})
	if err == nil || sink != nil {
		t.Fatalf("NewControlSink with an ftp URL: %v, %v", sink, err)
	}
	_, err = rampart.New(rampart.Config{Service: "orders", Sinks: []rampart.Sink{sink}})
	if err == nil || !strings.Contains(err.Error(), "Config.Sinks[0] is a nil *rampart.ControlSink") {
		t.Fatalf("New with a nil *ControlSink: %v", err)
	}
	// The deprecated constructor still returns a nil interface on error.
	if s, err := rampart.ControlPlaneSink(rampart.ControlPlaneConfig{URL: "ftp://not-http"}); err == nil || s != nil {
		t.Fatalf("ControlPlaneSink with an ftp URL: %#v, %v", s, err)
	}
}
