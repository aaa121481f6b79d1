package loadtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // reads the SQLite store's events after the run

	"github.com/rampartsec/rampart/internal/store/sqlite"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// The full-size runs are behind -rampart.scale; without it CI runs a short
// form of each test (50 instances, 2 gateways, a short load).
var (
	scale      = flag.Bool("rampart.scale", false, "run the load tests at full size (1,000 instances, 10 gateways, 2 minutes of load)")
	instancesF = flag.Int("rampart.instances", 0, "service instances of the fleet (default 1000 with -rampart.scale, else 50)")
	gatewaysF  = flag.Int("rampart.gateways", 0, "gateways of the fleet (default 10 with -rampart.scale, else 2)")
	loadF      = flag.Duration("rampart.load", 0, "how long the steady load runs before the figures are read (default 2m with -rampart.scale, else 5s)")
	reportF    = flag.String("rampart.report", "", "append the figures, as Markdown, to this file")
	pgPoolF    = flag.Int("rampart.pgpool", 0, "pool_max_conns of each replica's PostgreSQL pool (default: pgx's, max(4, CPUs))")
)

type size struct {
	instances, gateways int
	load                time.Duration
	decisions           int // decisions made during the load, one at a time
}

func testSize() size {
	s := size{instances: 50, gateways: 2, load: 5 * time.Second, decisions: 5}
	if *scale {
		s = size{instances: 1000, gateways: 10, load: 2 * time.Minute, decisions: 20}
	}
	if *instancesF > 0 {
		s.instances = *instancesF
	}
	if *gatewaysF > 0 {
		s.gateways = *gatewaysF
	}
	if *loadF > 0 {
		s.load = *loadF
	}
	return s
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// rampartBin builds ./cmd/rampart once per test binary.
func rampartBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rampart-loadtest-")
		if err != nil {
			buildErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		binPath, buildErr = Build(ctx, filepath.Join("..", ".."), dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// postgresDatabase creates a database of its own on the test server and
// returns its DSN; the database is dropped when the test ends. Without a
// server the test is skipped, except in CI.
func postgresDatabase(t *testing.T) string {
	t.Helper()
	dsn := storetest.PostgresDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL unreachable in CI: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set RAMPART_TEST_POSTGRES): %v", err)
	}
	defer admin.Close(context.Background())
	var b [4]byte
	rand.Read(b[:])
	name := fmt.Sprintf("rampart_scale_%d_%s", os.Getpid(), hex.EncodeToString(b[:]))
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	if *pgPoolF > 0 {
		q := u.Query()
		q.Set("pool_max_conns", fmt.Sprint(*pgPoolF))
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// controlPlane inits a data directory for the test.
func controlPlane(t *testing.T) *ControlPlane {
	t.Helper()
	cp, err := Init(t.Context(), rampartBin(t), filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "ca.kek"))
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// startServer starts a server and stops it at the end of the test (if it
// still runs), failing the test if it does not stop cleanly.
func startServer(t *testing.T, cp *ControlPlane, addr string, extra ...string) *Server {
	t.Helper()
	s, err := cp.Start(context.Background(), addr, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !s.Exited() {
			if err := s.Stop(); err != nil {
				t.Error(err)
			}
		}
	})
	return s
}

// startFleet starts the fleet, waits until every member has synced, and
// closes it at the end of the test.
func startFleet(t *testing.T, cfg Config) *Fleet {
	t.Helper()
	joinStart := time.Now()
	f, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	if err := f.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d members joined and synced in %v", cfg.Instances+cfg.Gateways, time.Since(joinStart).Round(time.Second))
	return f
}

// decide makes a decision and waits until every member holds it (a minute
// at most, as a poll), failing the test for each member that does not.
func decide(t *testing.T, f *Fleet, n int) (id string, p Propagation) {
	t.Helper()
	id, asked, _, err := f.Decide(t.Context(), fmt.Sprintf("203.0.113.%d", n%250+1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	p = f.WaitSeen(ctx, id, asked)
	if p.Missing > 0 {
		t.Errorf("decision %s reached %d members, not %d: %+v", id, len(p.Latencies), len(p.Latencies)+p.Missing, f.Stats())
	}
	return id, p
}

// load runs the fleet's steady load for d, making one decision every
// d/decisions meanwhile, and returns every member's propagation latency of
// every decision and the decisions' ids.
func load(t *testing.T, f *Fleet, d time.Duration, decisions int, first int) (lat []time.Duration, ids []string) {
	t.Helper()
	end := time.Now().Add(d)
	for i := range decisions {
		id, p := decide(t, f, first+i)
		ids = append(ids, id)
		lat = append(lat, p.Latencies...)
		if wait := time.Until(end) / time.Duration(decisions-i); wait > 0 {
			select {
			case <-t.Context().Done():
				return lat, ids
			case <-time.After(wait):
			}
		}
	}
	return lat, ids
}

// checkRevisions polls until every member has been told the current
// revision, and checks that none was ever told one older than before.
func checkRevisions(t *testing.T, f *Fleet) {
	t.Helper()
	least, err := f.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute) // the watch times out after 25 s at the most
	for {
		behind, backwards := f.Revisions(least)
		if backwards > 0 {
			t.Errorf("%d members were told a revision older than one before", backwards)
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d members were never told revision %d", behind, least)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// usage is the servers' usage between two readings.
type usage struct {
	name       string
	cpu        time.Duration
	over       time.Duration
	before     Usage
	after      Usage
	unreadable error
}

// connDSN is dsn without the pool's parameter, which one connection does
// not take.
func connDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Del("pool_max_conns")
	u.RawQuery = q.Encode()
	return u.String()
}

// postgresBackends returns the process ids of the PostgreSQL backends
// connected to the database of dsn.
func postgresBackends(t *testing.T, dsn string) []int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), connDSN(dsn))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var pids []int
	rows, err := conn.Query(t.Context(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// backendUsage sums the usage of the backends (CPU, RSS) as one process.
func backendUsage(pids []int) (Usage, bool) {
	var sum Usage
	n := 0
	for _, pid := range pids {
		u, err := ProcessUsage(pid)
		if err != nil {
			continue
		}
		n++
		sum.CPU += u.CPU
		sum.RSS += u.RSS
		sum.PeakRSS += u.PeakRSS
		sum.FDs += u.FDs
		sum.Threads += u.Threads
	}
	return sum, n > 0
}

func readUsage(servers map[string]*Server) map[string]Usage {
	out := map[string]Usage{}
	for name, s := range servers {
		if u, err := s.Usage(); err == nil {
			out[name] = u
		}
	}
	if u, err := ProcessUsage(os.Getpid()); err == nil {
		out["load generator"] = u
	}
	return out
}

// report logs the figures and appends them to -rampart.report.
func report(t *testing.T, title string, sz size, before, after map[string]Usage, over time.Duration, prop []time.Duration, st Stats, extra ...string) {
	t.Helper()
	var b strings.Builder
	load1, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "\n### %s: %d instances, %d gateways\n\n", title, sz.instances, sz.gateways)
	fmt.Fprintf(&b, "Command: `go test ./internal/loadtest -run '%s' -rampart.scale -rampart.instances %d -rampart.gateways %d -rampart.load %v -timeout 60m`  \n",
		t.Name(), sz.instances, sz.gateways, sz.load)
	fmt.Fprintf(&b, "Machine: %d CPUs, load average at the end %s, %s\n\n", runtime.NumCPU(), strings.TrimSpace(string(load1)), time.Now().UTC().Format(time.DateTime+" UTC"))
	fmt.Fprintf(&b, "| process | CPU over %v of load | CPU share | RSS at end | peak RSS | open fds | threads |\n|---|---|---|---|---|---|---|\n", over.Round(time.Second))
	for name, a := range after {
		bu := before[name]
		cpu := a.CPU - bu.CPU
		fmt.Fprintf(&b, "| %s | %v | %.0f%% of a core | %d MiB | %d MiB | %d | %d |\n", name, cpu, 100*cpu.Seconds()/over.Seconds(), a.RSS>>20, a.PeakRSS>>20, a.FDs, a.Threads)
	}
	ps := Summarize(prop)
	fmt.Fprintf(&b, "\n| measure | figure |\n|---|---|\n")
	fmt.Fprintf(&b, "| decision propagation to every member (from the POST) | %v |\n", ps)
	fmt.Fprintf(&b, "| heartbeat latency | %v; errors %d |\n", st.HeartbeatLatency, st.HeartbeatErrors)
	fmt.Fprintf(&b, "| ingest latency (POST /v1/events, 1-3 events; gateways 20) | %v; errors %d; events acknowledged %d |\n", st.IngestLatency, st.EventErrors, st.EventsAcked)
	fmt.Fprintf(&b, "| heartbeats and batches not sent (the member's previous one still in flight) | %d |\n", st.Skipped)
	fmt.Fprintf(&b, "| watch loops restarted (sync failures) | %d; by cause: %v |\n", st.SyncFailures, st.SyncCauses)
	if st.SyncError != "" {
		fmt.Fprintf(&b, "| last sync failure | %s |\n", oneLine(st.SyncError))
	}
	if st.LastError != nil {
		fmt.Fprintf(&b, "| last heartbeat or ingest error | %s |\n", oneLine(st.LastError.Error()))
	}
	for _, e := range extra {
		fmt.Fprintf(&b, "| %s |\n", e)
	}
	t.Log(b.String())
	if *reportF != "" {
		fh, err := os.OpenFile(*reportF, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		defer fh.Close()
		fh.WriteString(b.String())
	}
}

// logTail logs the last lines of a server's log and how many lines it
// holds per message (of its last 64 KiB).
func logTail(t *testing.T, name string, s *Server) {
	lines := strings.Split(strings.TrimSpace(s.Log()), "\n")
	count := map[string]int{}
	for _, l := range lines {
		if _, msg, ok := strings.Cut(l, "msg="); ok {
			// The message alone: the quoted text, up to " from " (the
			// server's TLS errors name the client).
			if rest, ok := strings.CutPrefix(msg, `"`); ok {
				msg, _, _ = strings.Cut(rest, `"`)
			}
			msg, _, _ = strings.Cut(msg, " from ")
			count[oneLine(msg)]++
		}
	}
	t.Logf("%s log: %d lines by message: %v; last: %s", name, len(lines), count, lines[len(lines)-1])
}

// oneLine shortens s to a table cell.
func oneLine(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", "/")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// storedPostgres returns how many of ids the events table holds.
func storedPostgres(t *testing.T, dsn string, ids []string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), connDSN(dsn))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE id = ANY($1)`, ids).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// storedSQLite returns how many of ids the data directory's database holds
// (read once its server has stopped).
func storedSQLite(t *testing.T, dir string, ids []string) int {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	rows, err := db.QueryContext(t.Context(), `SELECT id FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if want[id] {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFleetOnTwoPostgreSQLReplicasSurvivesAKill runs the fleet against two
// server processes over one PostgreSQL database, measures them under the
// steady load, then SIGKILLs one: every member must move to the other and
// hold every decision made before and after (their watches told the
// current revision, never an older one than before), and every event a
// server acknowledged must be in the database.
func TestFleetOnTwoPostgreSQLReplicasSurvivesAKill(t *testing.T) {
	sz := testSize()
	dsn := postgresDatabase(t)
	cp := controlPlane(t)
	a := startServer(t, cp, "127.0.0.1:0", "-postgres", dsn)
	b := startServer(t, cp, "127.0.0.1:0", "-postgres", dsn)
	f := startFleet(t, Config{Servers: []string{a.Addr, b.Addr}, CAPEM: cp.CAPEM, AdminToken: cp.AdminToken,
		Instances: sz.instances, Gateways: sz.gateways, Prefix: "pg"})
	if c := f.Connected(); c[a.Addr] == 0 || c[b.Addr] == 0 {
		t.Fatalf("members are not spread over both replicas: %v", c)
	}

	servers := map[string]*Server{"replica A": a, "replica B": b}
	backends := postgresBackends(t, dsn) // the replicas' pools and listeners, open by now
	pgName := fmt.Sprintf("PostgreSQL (%d backends of this database, summed)", len(backends))
	before, start := readUsage(servers), time.Now()
	if u, ok := backendUsage(backends); ok {
		before[pgName] = u
	}
	prop, ids := load(t, f, sz.load, sz.decisions, 0)
	after, over := readUsage(servers), time.Since(start)
	if u, ok := backendUsage(backends); ok {
		after[pgName] = u
	}
	checkRevisions(t, f)
	report(t, "Two replicas over one PostgreSQL", sz, before, after, over, prop, f.Stats())
	logTail(t, "replica A", a)
	logTail(t, "replica B", b)

	// Failover: kill A under the load; its members move to B.
	survivor := map[string]*Server{"replica B (alone)": b}
	before = readUsage(survivor)
	a.Kill()
	killed := time.Now()
	failProp, failIDs := load(t, f, sz.load/4, max(2, sz.decisions/4), 1000)
	after, failOver := readUsage(survivor), time.Since(killed)
	ids = append(ids, failIDs...)
	for id, n := range f.Missing(ids) {
		t.Errorf("decision %s: %d members never held it", id, n)
	}
	checkRevisions(t, f)
	// Every member held the decisions made since the kill, which only B
	// could give: every watch moved there. (Which server a member dialed
	// last is logged, not checked: a member may have held a connection to
	// each, and use the one to B without dialing again.)
	t.Logf("after the kill (%v ago): members per replica %v; propagation %v", time.Since(killed).Round(time.Second), f.Connected(), Summarize(failProp))

	st := f.Stats()
	f.Close()
	acked := f.Acked()
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged")
	}
	if n := storedPostgres(t, dsn, acked); n != len(acked) {
		t.Errorf("%d of the %d acknowledged events are stored", n, len(acked))
	}
	report(t, "After SIGKILL of replica A", sz, before, after, failOver, failProp, st,
		fmt.Sprintf("events acknowledged and stored | %d of %d", len(acked), len(acked)))
}

// TestFleetOnSQLite runs the fleet against one server over its SQLite
// store: every member holds every decision, and every acknowledged event is
// in the database.
func TestFleetOnSQLite(t *testing.T) {
	sz := testSize()
	cp := controlPlane(t)
	s := startServer(t, cp, "127.0.0.1:0")
	f := startFleet(t, Config{Servers: []string{s.Addr}, CAPEM: cp.CAPEM, AdminToken: cp.AdminToken,
		Instances: sz.instances, Gateways: sz.gateways, Prefix: "lite"})
	servers := map[string]*Server{"server (SQLite)": s}
	before, start := readUsage(servers), time.Now()
	prop, ids := load(t, f, sz.load, sz.decisions, 0)
	after, over := readUsage(servers), time.Since(start)
	for id, n := range f.Missing(ids) {
		t.Errorf("decision %s: %d members never held it", id, n)
	}
	checkRevisions(t, f)
	st := f.Stats()
	f.Close()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	acked := f.Acked()
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged")
	}
	if n := storedSQLite(t, cp.Dir, acked); n != len(acked) {
		t.Errorf("%d of the %d acknowledged events are stored", n, len(acked))
	}
	report(t, "One server on SQLite", sz, before, after, over, prop, st)
}
