package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// JoinConfig configures Join.
type JoinConfig struct {
	// ControlPlane is the control plane's base URL, "https://host:port".
	ControlPlane string
	// ControlPlaneBundle is the PEM certificate that verifies the control
	// plane's TLS certificate: the CA certificate ca/ca.crt of the control
	// plane's data directory (the file RAMPART_CA names for the CLI).
	ControlPlaneBundle []byte
	// Service is the service's name; its SPIFFE ID will be
	// spiffe://<trust domain>/svc/<Service>.
	Service string
	// Token is a join token an admin created for Service ('rampart token
	// create SERVICE'; with -uses N, N replicas join with it). With Dir it
	// is needed only when Dir holds no SVID that is still valid: a
	// restarted service renews with the SVID it persisted.
	Token string
	// Dir, if set, is a directory of this process's own where the SVID and
	// its private key persist (SVIDFile, BundleFile; created 0700, files
	// 0600, each replaced atomically), so that a restarted service comes
	// back without an administrator: while the persisted SVID is valid,
	// Join renews with it over mutual TLS instead of using Token. Renewals
	// are saved there too. Give each process its own Dir: replicas of a
	// service share a token, not a directory. Empty means the SVID lives
	// in memory only, and every start needs a fresh token.
	Dir string
	// Logger receives renewal failures and expiry warnings (an expired
	// SVID is an error: peers then refuse the service). Nil means
	// slog.Default(), so that the application's handler applies.
	Logger *slog.Logger
	// RetryInterval is the pause after a failed renewal; 0 means 5 s,
	// doubled up to a minute while failures last.
	RetryInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// CASource is a Source whose SVIDs come from Rampart's control plane.
type CASource struct {
	cfg    JoinConfig
	td     spiffeid.TrustDomain
	roots  *x509.CertPool // verify the control plane's TLS certificate
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.RWMutex
	svid   *x509svid.SVID
	got    time.Time // when svid arrived: its NotBefore is backdated for clock skew
	bundle *x509bundle.Bundle
	renews int
}

// Errors of Join, from the control plane's answer.
var (
	ErrTokenUnknown = errors.New("identity: join token unknown (mistyped or forged)")
	ErrTokenUsed    = errors.New("identity: join token used up")
	ErrTokenExpired = errors.New("identity: join token expired")
	ErrTokenRevoked = errors.New("identity: join token revoked by an admin")
	ErrWrongService = errors.New("identity: join token is for another service")
	ErrRevoked      = errors.New("identity: service revoked by an admin")
	// ErrNeedToken is wrapped by Join's error when the service has no
	// valid SVID to renew with (none persisted in JoinConfig.Dir, or it
	// expired) and no usable join token: an admin must create one. The
	// error, one line, says which command does.
	ErrNeedToken = errors.New("identity: a new join token is needed")
)

// errSVIDRefused is the control plane refusing to renew an SVID it did not
// issue, or that expired by its clock.
var errSVIDRefused = errors.New("identity: the control plane refused the SVID")

// refused reports whether err is the control plane's final answer, rather
// than a failure to reach it or one it may get over (5xx, 429).
func refused(err error) bool {
	var re *refusal
	return errors.As(err, &re)
}

// refusal is a 4xx answer of the control plane other than 408 and 429.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// Join obtains the service's SVID and keeps it renewed at half-life until
// Close.
//
// Without JoinConfig.Dir it joins with the join token. With it, a start
// first reads the SVID persisted there: while that SVID is valid Join
// renews with it over mutual TLS and uses no token; if the control plane
// cannot be reached, the service starts on the persisted SVID and keeps
// trying. Only when there is no valid SVID does it join with the token,
// and if it has none that works it fails with ErrNeedToken, in one line
// that names the command creating one. A revoked service is refused
// (ErrRevoked) either way, and a Dir whose files are unusable is an error
// that never leads to a join with something else.
func Join(ctx context.Context, cfg JoinConfig) (*CASource, error) {
	switch {
	case !strings.HasPrefix(cfg.ControlPlane, "https://"):
		return nil, fmt.Errorf("identity: JoinConfig.ControlPlane %q must be an https:// URL", cfg.ControlPlane)
	case cfg.Service == "":
		return nil, errors.New("identity: JoinConfig.Service is required")
	case cfg.Token == "" && cfg.Dir == "":
		return nil, errors.New("identity: JoinConfig.Token is required without JoinConfig.Dir (create one with 'rampart token create')")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cfg.ControlPlaneBundle) {
		return nil, errors.New("identity: JoinConfig.ControlPlaneBundle holds no PEM certificate")
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &CASource{cfg: cfg, roots: roots, log: cfg.Logger, done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	why := "it keeps no SVID (JoinConfig.Dir is not set)"
	if cfg.Dir != "" {
		if err := prepareDir(cfg.Dir); err != nil {
			return nil, err
		}
		p, err := load(cfg.Dir, cfg.Service)
		if err != nil {
			return nil, err
		}
		switch {
		case p == nil:
			why = "no SVID is saved in " + cfg.Dir
		case !cfg.Now().Before(p.svid.Certificates[0].NotAfter):
			why = fmt.Sprintf("the SVID saved in %s expired at %s", cfg.Dir, p.svid.Certificates[0].NotAfter.UTC().Format(time.RFC3339))
		default:
			started, err := s.resume(ctx, p)
			if err != nil {
				return nil, err
			}
			if started {
				return s, nil
			}
			why = fmt.Sprintf("the control plane refused the SVID saved in %s", cfg.Dir)
		}
	}
	if cfg.Token == "" {
		return nil, s.needToken(why, nil)
	}
	req := struct {
		Token   string `json:"token"`
		Service string `json:"service"`
		CSR     string `json:"csr"`
	}{Token: cfg.Token, Service: cfg.Service}
	key, csr, err := newCSR()
	if err != nil {
		return nil, err
	}
	req.CSR = base64.StdEncoding.EncodeToString(csr)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}}
	defer client.CloseIdleConnections()
	if err := s.exchange(ctx, client, "/v1/svid", req, key); err != nil {
		if errors.Is(err, ErrRevoked) {
			return nil, s.revoked(err)
		}
		if errors.Is(err, ErrTokenUsed) || errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrTokenRevoked) || errors.Is(err, ErrTokenUnknown) {
			return nil, s.needToken(why, err)
		}
		return nil, err
	}
	if err := s.save(); err != nil {
		return nil, err
	}
	s.start(false)
	return s, nil
}

// resume starts s on a persisted SVID that is still valid: renewed with it
// now if the control plane answers, kept as it is (and renewed later) if
// it cannot be reached. It returns false, nil if the control plane
// refused the SVID, for Join to fall back to the token.
func (s *CASource) resume(ctx context.Context, p *persisted) (started bool, err error) {
	s.mu.Lock()
	s.svid, s.bundle, s.td = p.svid, p.bundle, p.svid.ID.TrustDomain()
	s.got = p.svid.Certificates[0].NotBefore
	s.mu.Unlock()
	err = s.renew(ctx)
	switch {
	case err == nil:
		s.log.Info("rampart: SVID renewed with the one saved before the restart", "service", s.cfg.Service, "dir", s.cfg.Dir)
		s.start(false)
		return true, nil
	case errors.Is(err, ErrRevoked):
		return false, s.revoked(err)
	case refused(err):
		s.log.Warn("rampart: the control plane refused the saved SVID", "service", s.cfg.Service, "dir", s.cfg.Dir, "err", err)
		s.mu.Lock()
		s.svid, s.bundle = nil, nil
		s.mu.Unlock()
		return false, nil
	case ctx.Err() != nil:
		return false, err
	}
	s.log.Warn("rampart: control plane unreachable; serving with the SVID saved before the restart until it can be renewed",
		"service", s.cfg.Service, "dir", s.cfg.Dir, "expires", p.svid.Certificates[0].NotAfter, "err", err)
	s.start(true)
	return true, nil
}

// needToken is Join's error when it has no SVID to renew with and no token
// that works, in one line for the operator.
func (s *CASource) needToken(why string, tokenErr error) error {
	token := "no join token was given (JoinConfig.Token)"
	switch {
	case errors.Is(tokenErr, ErrTokenUsed):
		token = "the join token is used up"
	case errors.Is(tokenErr, ErrTokenExpired):
		token = "the join token has expired"
	case errors.Is(tokenErr, ErrTokenRevoked):
		token = "the join token was revoked"
	case errors.Is(tokenErr, ErrTokenUnknown):
		token = "the join token is unknown to the control plane"
	}
	return &lineError{
		msg: fmt.Sprintf("identity: service %s needs a new join token: %s, and %s; create one with 'rampart token create %s' (with -uses N for N replicas) and start the service with it",
			s.cfg.Service, why, token, s.cfg.Service),
		errs: []error{ErrNeedToken, tokenErr},
	}
}

// revoked is Join's error for a revoked service, in one line.
func (s *CASource) revoked(err error) error {
	return &lineError{
		msg: fmt.Sprintf("identity: service %s was revoked by an admin: the control plane refuses its SVIDs and join tokens until an admin runs 'rampart services reinstate %s'",
			s.cfg.Service, s.cfg.Service),
		errs: []error{err},
	}
}

// lineError is an error for the operator, in one line, that still wraps
// its causes for errors.Is.
type lineError struct {
	msg  string
	errs []error
}

func (e *lineError) Error() string   { return e.msg }
func (e *lineError) Unwrap() []error { return e.errs }

// start runs the renewal loop; failing says the last renewal failed.
func (s *CASource) start(failing bool) {
	rctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.renewLoop(rctx, failing)
}

// save persists the current SVID in JoinConfig.Dir, if set.
func (s *CASource) save() error {
	if s.cfg.Dir == "" {
		return nil
	}
	s.mu.RLock()
	svid, bundle := s.svid, s.bundle
	s.mu.RUnlock()
	return save(s.cfg.Dir, svid, bundle)
}

func newCSR() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: CSR: %w", err)
	}
	return key, csr, nil
}

// exchange posts body to path and installs the SVID of the answer with key.
func (s *CASource) exchange(ctx context.Context, client *http.Client, path string, body any, key *ecdsa.PrivateKey) error {
	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(s.cfg.ControlPlane, "/")+path, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("identity: %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("identity: %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return apiError(path, resp.StatusCode, raw)
	}
	var got struct {
		SPIFFEID  string `json:"spiffe_id"`
		SVIDPEM   string `json:"svid_pem"`
		BundlePEM string `json:"bundle_pem"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("identity: %s: answer: %w", path, err)
	}
	id, err := spiffeid.FromString(got.SPIFFEID)
	if err != nil {
		return fmt.Errorf("identity: %s: answer: %w", path, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	svid, err := x509svid.Parse([]byte(got.SVIDPEM), keyPEM)
	if err != nil {
		return fmt.Errorf("identity: %s: SVID: %w", path, err)
	}
	if svid.ID != id {
		return fmt.Errorf("identity: %s: SVID names %s, the answer %s", path, svid.ID, id)
	}
	if want, _ := ServiceID(id.TrustDomain(), s.cfg.Service); id != want {
		return fmt.Errorf("identity: %s: got an SVID for %s, want %s", path, id, want)
	}
	bundle, err := x509bundle.Parse(id.TrustDomain(), []byte(got.BundlePEM))
	if err != nil {
		return fmt.Errorf("identity: %s: bundle: %w", path, err)
	}
	// The SVID must verify against the bundle it came with: otherwise
	// peers would refuse it and we would find out only at the first call.
	if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
		return fmt.Errorf("identity: %s: the SVID does not verify against the bundle: %w", path, err)
	}
	s.mu.Lock()
	s.svid, s.bundle, s.td, s.got = svid, bundle, id.TrustDomain(), s.cfg.Now()
	s.mu.Unlock()
	return nil
}

func apiError(path string, status int, body []byte) error {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"error"`
	}
	json.Unmarshal(body, &e)
	msg := e.Message
	if msg == "" {
		msg = strings.TrimSpace(string(body))
	}
	var kind error
	switch e.Code { // the control plane's stable error codes
	case "token_unknown":
		kind = ErrTokenUnknown
	case "token_used":
		kind = ErrTokenUsed
	case "token_expired":
		kind = ErrTokenExpired
	case "token_revoked":
		kind = ErrTokenRevoked
	case "token_wrong_service":
		kind = ErrWrongService
	case "service_revoked":
		kind = ErrRevoked
	case "svid_expired", "svid_untrusted":
		kind = errSVIDRefused
	}
	var err error
	if kind != nil {
		err = fmt.Errorf("%w (%s: %d %s)", kind, path, status, msg)
	} else {
		err = fmt.Errorf("identity: %s: %d %s", path, status, msg)
	}
	if status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests {
		return &refusal{err}
	}
	return err
}

// GetX509SVID returns the current SVID.
func (s *CASource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the trust bundle of td, which must be
// the service's own trust domain.
func (s *CASource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if td != s.td {
		return nil, fmt.Errorf("identity: no bundle for trust domain %q", td)
	}
	return s.bundle, nil
}

// TrustDomain returns the trust domain of the service.
func (s *CASource) TrustDomain() spiffeid.TrustDomain {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.td
}

// Renewals returns how many times the SVID was renewed; a start that
// renewed with the SVID saved in JoinConfig.Dir counts one.
func (s *CASource) Renewals() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.renews
}

// ControlPlaneClient returns an HTTP client for the control plane's API
// that authenticates with the current SVID (renewals included).
func (s *CASource) ControlPlaneClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{
			RootCAs:              s.roots,
			MinVersion:           tls.VersionTLS12,
			GetClientCertificate: tlsconfig.GetClientCertificate(s), // the current SVID, renewals included
		},
		ForceAttemptHTTP2:   true,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
}

// Close stops renewal. The current SVID stays usable until it expires.
func (s *CASource) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// renewLoop renews at half-life; on failure it retries with backoff and
// keeps the current SVID, warning as expiry nears.
func (s *CASource) renewLoop(ctx context.Context, failing bool) {
	defer close(s.done)
	retry := s.cfg.RetryInterval
	for {
		s.mu.RLock()
		leaf, got := s.svid.Certificates[0], s.got
		s.mu.RUnlock()
		wait := got.Add(leaf.NotAfter.Sub(got) / 2).Sub(s.cfg.Now())
		if failing {
			wait = retry
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err := s.renew(ctx)
		if err == nil {
			if failing {
				s.log.Info("rampart: SVID renewed after failures", "service", s.cfg.Service)
			}
			failing, retry = false, s.cfg.RetryInterval
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failing = true
		now := s.cfg.Now()
		left := remaining(got, leaf.NotAfter, now)
		switch {
		case !now.Before(leaf.NotAfter):
			s.log.Error("rampart: SVID expired and could not be renewed: peers now refuse this service",
				"service", s.cfg.Service, "expired", leaf.NotAfter, "err", err)
		case left < 0.25:
			s.log.Warn("rampart: SVID expires soon and could not be renewed",
				"service", s.cfg.Service, "expires", leaf.NotAfter, "in", leaf.NotAfter.Sub(now).Round(time.Second), "err", err)
		default:
			s.log.Info("rampart: SVID renewal failed; the current one stays in use",
				"service", s.cfg.Service, "expires", leaf.NotAfter, "err", err)
		}
		if errors.Is(err, ErrRevoked) {
			retry = time.Minute
		} else {
			retry = min(retry*2, time.Minute)
		}
	}
}

func (s *CASource) renew(ctx context.Context) error {
	key, csr, err := newCSR()
	if err != nil {
		return err
	}
	client := s.ControlPlaneClient()
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = s.exchange(ctx, client, "/v1/svid/renew", struct {
		CSR string `json:"csr"`
	}{base64.StdEncoding.EncodeToString(csr)}, key)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.renews++
	s.mu.Unlock()
	if err := s.save(); err != nil {
		// The new SVID serves; only a restart after the saved one
		// expires will need a token.
		s.log.Error("rampart: SVID renewed but not saved; a restart after the saved one expires will need a new join token",
			"service", s.cfg.Service, "dir", s.cfg.Dir, "err", err)
	}
	return nil
}
