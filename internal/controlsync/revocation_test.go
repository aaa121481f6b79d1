package controlsync_test

import (
	"net"
	"testing"

	"github.com/rampartsec/rampart/internal/controlsync"
)

// pipe returns a connected pair of loopback TCP connections.
func pipe(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func TestRevokingAServiceClosesItsConnectionsOnly(t *testing.T) {
	r := controlsync.NewRevocations()
	gamma, gammaPeer := pipe(t)
	beta, _ := pipe(t)
	r.Track("gamma", gamma)
	r.Track("beta", beta)
	if r.Tracked("gamma") != 1 || r.Tracked("beta") != 1 {
		t.Fatalf("tracked gamma %d, beta %d, want 1 each", r.Tracked("gamma"), r.Tracked("beta"))
	}
	r.Set([]string{"gamma"})
	if !r.Revoked("gamma") || r.Revoked("beta") {
		t.Fatal("Revoked disagrees with Set")
	}
	// The peer of the closed connection reads EOF.
	if _, err := gammaPeer.Read(make([]byte, 1)); err == nil {
		t.Error("gamma's connection is still open")
	}
	if _, err := beta.Write([]byte("x")); err != nil {
		t.Errorf("beta's connection was closed: %v", err)
	}
	// A connection of a revoked service is closed as it is tracked.
	late, latePeer := pipe(t)
	r.Track("gamma", late)
	if _, err := latePeer.Read(make([]byte, 1)); err == nil {
		t.Error("a connection tracked after the revocation stayed open")
	}
	// Closed connections are forgotten.
	beta.Close()
	if n := r.Tracked("beta"); n != 0 {
		t.Errorf("a closed connection is still tracked (%d)", n)
	}
	r.Set(nil)
	if r.Revoked("gamma") {
		t.Error("gamma still revoked after it was reinstated")
	}
}
