package identity_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/controltest"
)

// serve runs an HTTPS server with src's identity that answers with the
// caller's SPIFFE ID.
func serve(t *testing.T, src identity.Source) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: identity.ServerTLSConfig(src),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			io.WriteString(w, id.String())
		}),
		ErrorLog: nil,
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func call(src identity.Source, url string, server spiffeid.ID) (string, error) {
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: identity.ClientTLSConfig(src, server)}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestJoinedServicesTalkOverMutualTLS(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	orders := cp.Join(t, "orders")
	web := cp.Join(t, "web")
	svid, _ := orders.GetX509SVID()
	if svid.ID.String() != "spiffe://example.org/svc/orders" {
		t.Fatalf("SVID for %s", svid.ID)
	}
	url := serve(t, orders)
	ordersID, _ := identity.ServiceID(cp.TrustDomain, "orders")
	got, err := call(web, url, ordersID)
	if err != nil || got != "spiffe://example.org/svc/web" {
		t.Fatalf("web → orders: %q, %v", got, err)
	}
	// The caller states whom it expects: another identity is refused.
	paymentsID, _ := identity.ServiceID(cp.TrustDomain, "payments")
	if _, err := call(web, url, paymentsID); err == nil {
		t.Fatal("web reached orders while expecting payments")
	}
}

func TestRefusedJoinsSayWhy(t *testing.T) {
	cp := controltest.Start(t, controltest.Config{})
	try := func(service, token string) error {
		_, err := identity.Join(t.Context(), identity.JoinConfig{
			ControlPlane: cp.URL, ControlPlaneBundle: cp.BundlePEM, Service: service, Token: token,
		})
		return err
	}
	used := cp.JoinToken(t, "orders")
	if err := try("orders", used); err != nil {
		t.Fatal(err)
	}
	if err := try("orders", used); !errors.Is(err, identity.ErrTokenUsed) {
		t.Errorf("reused token: %v", err)
	}
	if err := try("web", cp.JoinToken(t, "orders")); !errors.Is(err, identity.ErrWrongService) {
		t.Errorf("token of another service: %v", err)
	}
	forged := strings.Repeat("A", len(used))
	if err := try("orders", forged); err == nil {
		t.Error("forged token accepted")
	}
	// The control plane's certificate must chain to the given bundle.
	other := controltest.Start(t, controltest.Config{TrustDomain: "other.org"})
	_, err := identity.Join(t.Context(), identity.JoinConfig{
		ControlPlane: cp.URL, ControlPlaneBundle: other.BundlePEM, Service: "orders", Token: cp.JoinToken(t, "orders"),
	})
	var unknownAuthority x509UnknownAuthority
	if err == nil || !errors.As(err, &unknownAuthority) {
		t.Errorf("control plane with a certificate from another CA: %v", err)
	}
}

type x509UnknownAuthority = *tls.CertificateVerificationError

func TestRenewsAtHalfLifeAndSurvivesTheControlPlaneGoingDown(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for SVID rotations")
	}
	// 20 s SVIDs renew at 10 s: a renewal has 10 s to complete before the
	// SVID it replaces expires. Under -race with GOMAXPROCS=1 beside busy
	// loops, 2 s (4 s SVIDs) and then 5 s (10 s SVIDs) were not enough: a
	// call failed on an SVID that expired while its renewal was under way.
	cp := controltest.Start(t, controltest.Config{SVIDTTL: 20 * time.Second})
	orders := cp.Join(t, "orders")
	web := cp.Join(t, "web")
	url := serve(t, orders)
	ordersID, _ := identity.ServiceID(cp.TrustDomain, "orders")
	first, _ := orders.GetX509SVID()

	// Across two renewals the services keep talking on renewed SVIDs
	// (about 20 s; a busy machine that delays renewals gets two minutes).
	deadline := time.Now().Add(2 * time.Minute)
	for orders.Renewals() < 2 || web.Renewals() < 2 {
		if got, err := call(web, url, ordersID); err != nil || got != "spiffe://example.org/svc/web" {
			t.Fatalf("call during rotation: %q, %v", got, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d and %d renewals in two minutes of 20 s SVIDs", orders.Renewals(), web.Renewals())
		}
		time.Sleep(250 * time.Millisecond)
	}
	now, _ := orders.GetX509SVID()
	if now.Certificates[0].SerialNumber.Cmp(first.Certificates[0].SerialNumber) == 0 {
		t.Fatalf("%d renewals, and the SVID is the first", orders.Renewals())
	}
	if now.PrivateKey == first.PrivateKey {
		t.Fatal("renewal kept the old key")
	}

	// The control plane goes down: the current SVIDs keep working until
	// they expire, then the handshake fails.
	cp.Stop()
	// The SVIDs' expiry, read again before it is relied on: a renewal
	// answered just before the stop may be put in place after this read
	// on a busy machine (the call after the expiry once succeeded so).
	expiryNow := func() time.Time {
		o, _ := orders.GetX509SVID()
		w, _ := web.GetX509SVID()
		a, b := o.Certificates[0].NotAfter, w.Certificates[0].NotAfter
		if b.Before(a) {
			a = b
		}
		return a
	}
	expiry := expiryNow()
	// A call that failed and returned before the expiry made its handshake
	// before it, with valid SVIDs: a failure. One that returned after it,
	// on a busy machine, may have made its handshake after it.
	for time.Until(expiry) > 300*time.Millisecond {
		if _, err := call(web, url, ordersID); err != nil {
			if left := time.Until(expiry); left > 0 {
				t.Fatalf("call with the control plane down, %v before expiry: %v", left, err)
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for ; time.Until(expiry) > -100*time.Millisecond; expiry = expiryNow() {
		time.Sleep(time.Until(expiry) + 100*time.Millisecond)
	}
	if _, err := call(web, url, ordersID); err == nil {
		t.Fatal("call succeeded with expired SVIDs")
	}
	// It comes back: renewal resumes (the SVIDs expired, so renewal with
	// them is refused; that is the control plane's rule, and the log says
	// so). A fresh join restores the service.
	cp.Restart(t)
	fresh := cp.Join(t, "web")
	if got, err := call(fresh, serve(t, cp.Join(t, "orders")), ordersID); err != nil || got != "spiffe://example.org/svc/web" {
		t.Fatalf("after restart: %q, %v", got, err)
	}
}

func TestRenewalIsRefusedAfterRevocation(t *testing.T) {
	// 4 s SVIDs: the first renewal (at 2 s) comes after the revocation
	// even on a busy machine, so none may succeed.
	cp := controltest.Start(t, controltest.Config{SVIDTTL: 4 * time.Second})
	orders := cp.Join(t, "orders")
	cp.MustDo(t, http.MethodPost, "/v1/services/orders/revoke", nil, http.StatusOK, nil)
	before := orders.Renewals()
	first, _ := orders.GetX509SVID()
	time.Sleep(time.Until(first.Certificates[0].NotAfter) + 500*time.Millisecond)
	if orders.Renewals() != before {
		t.Fatalf("a revoked service renewed its SVID (%d → %d)", before, orders.Renewals())
	}
	svid, _ := orders.GetX509SVID()
	if time.Now().Before(svid.Certificates[0].NotAfter) {
		t.Fatal("the SVID outlived its lifetime")
	}
}
