// Package identity gives a service its SPIFFE identity — an X.509-SVID and
// the trust bundle that verifies its peers — from Rampart's control plane
// (Join), and the TLS configurations that use it. A [Source] may also come
// from a SPIFFE Workload API such as SPIRE's: package
// github.com/rampartsec/rampart/identity/workload gives one. Either way,
// everything after that (TLS configurations, authorization) is the same
// code.
//
// The Workload API source is a package of its own because it speaks gRPC:
// this package, and so the rampart SDK and its guards, link neither gRPC
// nor protocol buffers.
//
// With Join, the service generates its key, sends a CSR with a join token,
// and renews at half-life over mTLS with its current SVID. The private key
// never leaves the service: with JoinConfig.Dir it is saved, with the SVID,
// in a directory of the service's own (0700, the file 0600), so that a
// restarted service renews with them instead of needing a new token; a
// token of several uses ('rampart token create -uses 3') lets a replica
// set join with one. While the control plane is down the service keeps
// its current SVID and serves until it expires, logging as expiry nears.
//
// # Logging
//
// Renewal failures and expiry warnings go to JoinConfig.Logger; nil means
// [slog.Default], as everywhere in Rampart, so that an expired SVID is
// never silent. Rampart never configures global logging.
package identity

import (
	"crypto/tls"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Source is a service's identity: its current X.509-SVID and the trust
// bundle of its trust domain, both kept current.
type Source interface {
	x509svid.Source
	x509bundle.Source
	// TrustDomain is the trust domain of the SVID.
	TrustDomain() spiffeid.TrustDomain
	// Close stops renewal.
	Close() error
}

// ServerTLSConfig returns the TLS configuration of a service's listener:
// TLS 1.3 only, presenting the current SVID, and requiring a client
// certificate that chains to the trust bundle and names a member of the
// trust domain. Which member may call which route is the authorization
// middleware's business; the handshake only proves who is calling.
func ServerTLSConfig(src Source) *tls.Config {
	c := tlsconfig.MTLSServerConfig(src, src, tlsconfig.AuthorizeMemberOf(src.TrustDomain()))
	c.MinVersion = tls.VersionTLS13
	c.NextProtos = []string{"h2", "http/1.1"}
	return c
}

// ClientTLSConfig returns the TLS configuration of a call to the service
// whose SPIFFE ID is server: TLS 1.3, presenting the current SVID, and
// refusing a server that is not exactly server.
func ClientTLSConfig(src Source, server spiffeid.ID) *tls.Config {
	c := tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(server))
	c.MinVersion = tls.VersionTLS13
	return c
}

// ServiceID returns the SPIFFE ID of a Rampart service:
// spiffe://<trust domain>/svc/<name>.
func ServiceID(td spiffeid.TrustDomain, service string) (spiffeid.ID, error) {
	return spiffeid.FromSegments(td, "svc", service)
}

// ServiceName returns the service name of a Rampart service's SPIFFE ID,
// and false if id is not of that form.
func ServiceName(id spiffeid.ID) (string, bool) {
	path := id.Path()
	const prefix = "/svc/"
	if len(path) <= len(prefix) || path[:len(prefix)] != prefix {
		return "", false
	}
	name := path[len(prefix):]
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			return "", false
		}
	}
	return name, true
}

// remaining is the fraction of a certificate's lifetime since from left at now.
func remaining(from, notAfter, now time.Time) float64 {
	total := notAfter.Sub(from)
	if total <= 0 {
		return 0
	}
	return float64(notAfter.Sub(now)) / float64(total)
}
