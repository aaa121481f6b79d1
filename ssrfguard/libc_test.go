//go:build cgo && !netgo

package ssrfguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/corpus"
)

// TestSpelledHostsReachTheCanaryThroughTheCResolver shows that the spelled
// exploits of testdata/exploits.txt are real: an unguarded Go client whose
// net package resolves with the C library (GODEBUG=netdns=cgo, or the cgo
// resolver that Go picks on many systems) connects to 127.0.0.1 for
// http://0x7f.1/, http://2130706433/ and the rest. It runs in a child
// process, because the resolver is chosen once per process.
//
// Only spellings that are inet_aton addresses of loopback or 0.0.0.0 are
// tried (no trailing dot, no name): getaddrinfo reads them without any DNS
// query. The child's resolver also has a Dial that refuses, so that if the
// cgo resolver were not used, Go's resolver could not send a query either.
func TestSpelledHostsReachTheCanaryThroughTheCResolver(t *testing.T) {
	if os.Getenv("SSRFGUARD_LIBC_CHILD") == "" {
		if testing.Short() {
			t.Skip("starts a child process")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpelledHostsReachTheCanaryThroughTheCResolver$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "SSRFGUARD_LIBC_CHILD=1", "GODEBUG="+strings.TrimPrefix(os.Getenv("GODEBUG")+",netdns=cgo", ","))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		for line := range strings.Lines(string(out)) {
			if strings.Contains(line, "reached") {
				t.Log(strings.TrimSpace(line))
			}
		}
		return
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	var hits atomic.Int64
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("canary")) }),
		ConnState: func(_ net.Conn, s http.ConnState) { hits.Add(map[bool]int64{true: 1}[s == http.StateNew]) },
	}
	go srv.Serve(ln)
	defer srv.Close()

	refuse := &net.Resolver{Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS in this test")
	}}
	client := &http.Client{
		Transport: &http.Transport{DialContext: (&net.Dialer{Resolver: refuse, Timeout: 2 * time.Second}).DialContext},
		Timeout:   time.Minute,
	}
	tried := 0
	for _, l := range corpus.Lines(t, "testdata/exploits.txt") {
		fields := l.Fields(t, ' ', 3)
		if fields[0] != "spelled" {
			continue
		}
		in := strings.ReplaceAll(fields[2], "{port}", fmt.Sprint(port))
		target := in
		switch fields[1] {
		case "host":
			target = fmt.Sprintf("http://%s:%d/canary", in, port)
		case "url":
		default:
			continue
		}
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		host := u.Hostname()
		ip, ok := parseIPv4(host)
		if !ok || !(ip.IsLoopback() || ip.IsUnspecified()) || u.Port() != fmt.Sprint(port) {
			continue // not provably local without DNS
		}
		before := hits.Load()
		resp, err := client.Get(target)
		if err == nil {
			resp.Body.Close()
		}
		if hits.Load() == before {
			t.Errorf("%s: the canary saw no connection (%v)", target, err)
		} else {
			t.Logf("reached: %s", target)
		}
		tried++
	}
	if tried < 10 {
		t.Errorf("tried %d spelled hosts, want at least 10", tried)
	}
}

// TestGuardReadsSpellingsWhereTheCResolverDoes runs, in a child process whose
// net package resolves with the C library (GODEBUG=netdns=cgo), a guard on
// the default resolver: it finds that the resolver reads 127.1 as an
// address, and refuses every spelling of a loopback address from input
// before dialing, while a bare number that the C library reads as an address
// of 0.0.0.0/8 other than 0.0.0.0 ("40184", 0.0.156.248) is no event: the
// kernel connects nowhere with it. The parent, with Go's resolver, finds
// that its resolver does not read spellings.
func TestGuardReadsSpellingsWhereTheCResolverDoes(t *testing.T) {
	if os.Getenv("SSRFGUARD_LIBC_CHILD") == "" {
		if testing.Short() {
			t.Skip("starts a child process")
		}
		if resolverReadsSpellings(&net.Resolver{PreferGo: true}) {
			t.Error("Go's resolver reads 127.1 as an address")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestGuardReadsSpellingsWhereTheCResolverDoes$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "SSRFGUARD_LIBC_CHILD=1", "GODEBUG="+strings.TrimPrefix(os.Getenv("GODEBUG")+",netdns=cgo", ","))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		for line := range strings.Lines(string(out)) {
			if strings.Contains(line, "libc_test.go") {
				t.Log(strings.TrimSpace(line))
			}
		}
		return
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	var hits atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("canary"))
	})}
	go srv.Serve(ln)
	defer srv.Close()

	g := newTestGuard(t, rampart.ModeBlock, Config{})
	if !g.readsSpellings() {
		t.Fatal("with GODEBUG=netdns=cgo the default resolver does not read 127.1 as an address")
	}
	unguarded := &http.Client{Timeout: time.Minute}
	guarded := g.Client(&http.Client{Timeout: time.Minute})
	get := func(c *http.Client, host string) error {
		target := fmt.Sprintf("http://%s:%d/canary", host, port)
		ctx := rampart.WithUntrusted(context.Background(), "query", host)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, host := range []string{"127.1", "127.0.1", "2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "017700000001", "0"} {
		before := hits.Load()
		if err := get(unguarded, host); err != nil || hits.Load() == before {
			t.Errorf("%s: unguarded, the canary was not reached (%v)", host, err)
		}
		before = hits.Load()
		err := get(guarded, host)
		var be *rampart.BlockedError
		if !errors.As(err, &be) {
			t.Errorf("%s: guarded: err = %v, want blocked", host, err)
			continue
		}
		if !strings.Contains(be.Event.Reason, `is "`+host+`", `) {
			t.Errorf("%s: reason %q, want the spelling named", host, be.Event.Reason)
		}
		if hits.Load() != before {
			t.Errorf("%s: guarded, the canary was reached", host)
		}
		t.Logf("blocked %s: %s", host, be.Event.Reason)
	}
	// 40184 is 0.0.156.248 to the C library: not this host, not an event.
	before := hits.Load()
	err = get(guarded, "40184")
	if errors.Is(err, rampart.ErrBlocked) {
		t.Errorf("40184: %v, want no event", err)
	}
	if err == nil || hits.Load() != before {
		t.Errorf("40184: err = %v, canary hits %d: want a connection that goes nowhere", err, hits.Load()-before)
	}
	t.Logf("40184 not an event: %v", err)
}
