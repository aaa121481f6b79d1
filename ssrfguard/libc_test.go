//go:build cgo && !netgo

package ssrfguard

import (
	"bufio"
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
		Timeout:   5 * time.Second,
	}
	f, err := os.Open("testdata/exploits.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	tried := 0
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), " ", 3)
		if len(fields) != 3 || fields[0] != "spelled" {
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
