package control_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

func ExampleNew() {
	dir, _ := os.MkdirTemp("", "rampart")
	defer os.RemoveAll(dir)
	s, err := sqlite.Open(context.Background(), sqlite.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	c, err := ca.Generate(spiffeid.RequireTrustDomainFromString("example.org"), ca.Config{})
	if err != nil {
		log.Fatal(err)
	}
	admin, hash := control.NewAdminToken() // show admin to the operator once; keep hash
	h, err := control.New(control.Config{Store: s, CA: c, AdminTokenHash: hash})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h) // 'rampart server' serves it over TLS
	defer srv.Close()

	req, _ := http.NewRequest("POST", srv.URL+"/v1/decisions",
		strings.NewReader(`{"scope":"ip","value":"203.0.113.7","action":"block","ttl":"1h"}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 201 Created
}
