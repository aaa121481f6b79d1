// Package contribtest holds what the tests of the contrib modules share: a
// users table in each real database a guard protects, and a lookup that
// builds its SQL by concatenation, as the vulnerable code the adapters'
// tests attack does. Only tests import it.
//
// The databases:
//   - SQLite through modernc.org/sqlite, in a temporary file;
//   - PostgreSQL at 127.0.0.1:5432, trust auth, user postgres, db test
//     (RAMPART_TEST_POSTGRES_DSN overrides).
//
// A server that cannot be reached skips its tests, except when CI=true,
// where it fails them: CI must never pass by testing nothing.
package contribtest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/actor"
	"github.com/rampartsec/rampart/identity"
	"github.com/rampartsec/rampart/internal/controltest"
	"github.com/rampartsec/rampart/ramparttest"
	"github.com/rampartsec/rampart/sqlguard"
	"modernc.org/sqlite"
)

// Users are the rows of every users table.
var Users = []string{"alice", "bob", "carol"}

// DB is a guarded database holding a users table.
type DB struct {
	Name  string // "sqlite" or "postgres"
	DB    *sql.DB
	Guard *sqlguard.Guard
	Table string // the table's name, unique to the test
}

// PostgresDSN returns the DSN of the test PostgreSQL server.
func PostgresDSN() string {
	if d := os.Getenv("RAMPART_TEST_POSTGRES_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=5"
}

// Unavailable skips the test when a server is missing, or fails it in CI.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required when CI=true: %v", what, err)
	}
	t.Skipf("%s unavailable, skipping: %v", what, err)
}

// RequirePostgres connects to the test server once, to skip (or fail in CI)
// before a test builds anything.
func RequirePostgres(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, PostgresDSN())
	if err != nil {
		Unavailable(t, "PostgreSQL at 127.0.0.1:5432", err)
		return
	}
	c.Close(ctx)
}

// Databases opens SQLite and PostgreSQL through sqlguard for agent, each
// with a users table of Users, dropped when the test ends.
func Databases(t testing.TB, agent *rampart.Agent) []DB {
	t.Helper()
	return []DB{SQLite(t, agent), Postgres(t, agent)}
}

// SQLite returns a guarded SQLite database in a temporary file.
func SQLite(t testing.TB, agent *rampart.Agent) DB {
	t.Helper()
	g, err := sqlguard.New(agent, sqlguard.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	db, err := g.Open(&sqlite.Driver{}, filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d := DB{Name: "sqlite", DB: db, Guard: g, Table: "users"}
	d.fill(t)
	return d
}

// Postgres returns the guarded test PostgreSQL database, with a users table
// of a name unique to the test.
func Postgres(t testing.TB, agent *rampart.Agent) DB {
	t.Helper()
	RequirePostgres(t)
	g, err := sqlguard.New(agent, sqlguard.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	db, err := g.Open(stdlib.GetDefaultDriver(), PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	d := DB{Name: "postgres", DB: db, Guard: g, Table: fmt.Sprintf("users_%d", rand.Uint64()>>1)}
	t.Cleanup(func() {
		db.Exec("DROP TABLE IF EXISTS " + d.Table)
		db.Close()
	})
	d.fill(t)
	return d
}

func (d DB) fill(t testing.TB) {
	t.Helper()
	if _, err := d.DB.Exec("CREATE TABLE " + d.Table + " (name TEXT PRIMARY KEY, role TEXT NOT NULL)"); err != nil {
		t.Fatalf("%s: %v", d.Name, err)
	}
	for _, u := range Users {
		if _, err := d.DB.Exec("INSERT INTO "+d.Table+" (name, role) VALUES ($1, 'user')", u); err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
	}
}

// UsersNamed is the vulnerable lookup: it builds its SQL with the name
// concatenated in, and returns the names of the rows it found.
func (d DB) UsersNamed(ctx context.Context, name string) ([]string, error) {
	rows, err := d.DB.QueryContext(ctx, "SELECT name FROM "+d.Table+" WHERE name = '"+name+"' ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// Injection is the path parameter that dumps every row of the table when
// concatenated into UsersNamed's SQL.
const Injection = "x' OR '1'='1"

// Mesh is a control plane and one service of its mesh, for the tests of
// what carries an actor (queues, gRPC): the service's agent has an
// identity, and tokens for its audience come from a gateway's signer.
type Mesh struct {
	CP      *controltest.ControlPlane
	Agent   *rampart.Agent
	Events  *ramparttest.Recorder
	Service string
	ID      string // the service's SPIFFE ID
	Source  *identity.CASource
	gateway *identity.CASource
}

// StartMesh starts a control plane with policy (YAML; "" lets the
// gateway call service) and an agent for service in its mesh, ready.
// cfg's Service, Identity, ControlPlane and Logger are filled in; the
// agent's events go to Events as well as to cfg.Sinks.
func StartMesh(t testing.TB, service, policy string, cfg rampart.Config) *Mesh {
	t.Helper()
	cp := controltest.Start(t, controltest.Config{})
	if policy == "" {
		policy = "services:\n  " + service + ":\n    allow:\n      - callers: [gateway]\n"
	}
	cp.ApplyPolicy(t, policy)
	src := cp.Join(t, service)
	cfg.Service, cfg.Identity, cfg.ControlPlane = service, src, cp.URL
	a, rec := ramparttest.NewAgent(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	return &Mesh{CP: cp, Agent: a, Events: rec, Service: service, ID: svid.ID.String(), Source: src, gateway: cp.Join(t, "gateway")}
}

// StartAgent starts the agent of another service of the mesh, ready.
func (m *Mesh) StartAgent(t testing.TB, service string, cfg rampart.Config) (*rampart.Agent, *ramparttest.Recorder) {
	t.Helper()
	cfg.Service, cfg.Identity, cfg.ControlPlane = service, m.CP.Join(t, service), m.CP.URL
	a, rec := ramparttest.NewAgent(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return a, rec
}

// Token returns an actor token for a that names the service and the
// services also (by name), minted by the gateway at now (time.Now if
// zero) with lifetime (the signer's default if zero).
func (m *Mesh) Token(t testing.TB, a actor.Actor, now time.Time, lifetime time.Duration, also ...string) string {
	t.Helper()
	svid, err := m.gateway.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	cfg := actor.SignerConfig{Issuer: svid.ID.String(), Audience: m.CP.TrustDomain.IDString(), Lifetime: lifetime}
	if !now.IsZero() {
		cfg.Now = func() time.Time { return now }
	}
	s, err := actor.NewSigner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetKey(m.CP.SigningKey(t, m.gateway)); err != nil {
		t.Fatal(err)
	}
	ids := []string{m.ID}
	for _, name := range also {
		id, err := identity.ServiceID(m.CP.TrustDomain, name)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	aud, err := actor.NewAudience(ids...)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.TokenFor(a, aud)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Block adds a block decision on the actor's IP and returns its id.
func (m *Mesh) Block(t testing.TB, ip string) string {
	t.Helper()
	return m.CP.AddDecision(t, controltest.Decision{Scope: "ip", Value: ip, Action: "block", Reason: "test"})
}

// Eventually calls cond until it reports true, for up to a minute (a
// deadline for a busy machine, not an expectation of speed).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MarkVIP is a worker's vulnerable statement: a job's name field is
// concatenated into an UPDATE. It returns the rows it changed.
func (d DB) MarkVIP(ctx context.Context, name string) (int64, error) {
	res, err := d.DB.ExecContext(ctx, "UPDATE "+d.Table+" SET role = 'vip' WHERE name = '"+name+"'")
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// InjectedJob is a job payload whose name field rewrites MarkVIP's UPDATE
// to change every row.
const InjectedJob = `{"name": "x' OR '1'='1", "plan": "gold"}`

// ServeTLS serves h with the service's mTLS configuration on 127.0.0.1
// until the test ends, and returns its https URL.
func (m *Mesh) ServeTLS(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = m.Agent.ServerTLSConfig()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// WaitRoute waits up to a minute for the service's inventory, as the
// control plane holds it, to list route.
func (m *Mesh) WaitRoute(t testing.TB, route string) {
	t.Helper()
	var routes []string
	Eventually(t, "the inventory listing "+route, func() bool {
		var got struct {
			Instances []struct {
				Routes []string `json:"routes"`
			} `json:"instances"`
		}
		m.CP.MustDo(t, http.MethodGet, "/v1/instances?service="+m.Service, nil, http.StatusOK, &got)
		routes = nil
		for _, in := range got.Instances {
			routes = append(routes, in.Routes...)
		}
		return slices.Contains(routes, route)
	})
}
