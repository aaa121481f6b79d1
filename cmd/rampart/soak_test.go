package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/store/sqlite"
)

// The proof of issue 13's "at-least-once, stored once": senders ship events
// through the SDK's ControlSink (the gateway's shipper too) to a real
// 'rampart server' process, which is killed with SIGKILL while they do
// (and, over PostgreSQL, the database is restarted); afterwards the store
// holds every event exactly once, in each sender's order.
//
// By default a short form runs (5 senders, 20,000 events, 1 kill, and 1
// restart of PostgreSQL); -rampart.soak runs the full size (50 senders,
// 1,000,000 events, 3 kills, 1 restart of PostgreSQL) and logs the figures.
// PostgreSQL is a private cluster the test makes (initdb, pg_ctl) and
// restarts, never the machine's shared server: without the PostgreSQL
// programs the test is skipped, except in CI (CI=true), where it fails.
var soak = flag.Bool("rampart.soak", false, "run the event delivery proof at full size: 50 senders, 1,000,000 events, 3 SIGKILLs of the control plane, 1 restart of PostgreSQL")

type soakPlan struct {
	senders, events, kills int
	downtime               time.Duration // between a kill and the restart
}

func plan() soakPlan {
	if *soak {
		return soakPlan{senders: 50, events: 1_000_000, kills: 3, downtime: 3 * time.Second}
	}
	return soakPlan{senders: 5, events: 20_000, kills: 1, downtime: time.Second}
}

func TestEventsSurviveKilledControlPlaneStoredOnceOnSQLite(t *testing.T) {
	runSoak(t, plan(), nil)
}

func TestEventsSurviveKilledControlPlaneAndRestartedPostgreSQLStoredOnce(t *testing.T) {
	pg := startPrivatePostgres(t)
	runSoak(t, plan(), pg)
}

// buildRampart builds the rampart command into a temporary directory.
func buildRampart(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no go command to build rampart with: %v", err)
		}
		t.Skipf("no go command to build rampart with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "rampart")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serverProcess is 'rampart server' run as a process of its own, so that
// it can be killed with SIGKILL and started again on the same address.
type serverProcess struct {
	bin  string
	args []string
	log  *os.File
	cmd  *exec.Cmd
	done chan struct{}
}

var servingRE = regexp.MustCompile(`serving on https://(127\.0\.0\.1:\d+)`)

func (s *serverProcess) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stderr = s.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan struct{})
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			fmt.Fprintln(s.log, sc.Text())
			if !once && servingRE.MatchString(sc.Text()) {
				once = true
				close(serving)
			}
		}
		cmd.Wait()
	}()
	select {
	case <-serving:
	case <-s.done:
		t.Fatalf("rampart server exited as it started; its log:\n%s", s.logTail())
	case <-time.After(60 * time.Second):
		t.Fatalf("rampart server not serving after 60 s; its log:\n%s", s.logTail())
	}
}

// kill sends SIGKILL and waits for the process to end.
func (s *serverProcess) kill() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		<-s.done
		s.cmd = nil
	}
}

func (s *serverProcess) logTail() string {
	b, _ := os.ReadFile(s.log.Name())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// soakSender is one service shipping its events through a ControlSink
// with a spool directory of its own.
type soakSender struct {
	name     string
	sink     *rampart.ControlSink
	written  atomic.Int64
	maxSpool atomic.Int64 // the largest spool seen, in bytes
}

func soakEvents(name string, from, n int, t0 time.Time) []rampart.Event {
	evs := make([]rampart.Event, n)
	for i := range evs {
		seq := from + i
		evs[i] = rampart.Event{ID: fmt.Sprintf("%s-%07d", name, seq), Time: t0.Add(time.Duration(seq) * time.Microsecond),
			Kind: "soak", Action: rampart.ActionObserved, Service: name, Sink: "soak", Detail: "event " + strconv.Itoa(seq) + " of " + name}
	}
	return evs
}

func adminClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func runSoak(t *testing.T, p soakPlan, pg *privatePostgres) {
	bin := buildRampart(t)
	cp := initControlPlane(t)
	addr := freeAddr(t)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	srv := &serverProcess{bin: bin, log: logFile,
		args: []string{"server", "-data", cp.dir, "-addr", addr, "-ca-kek-file", cp.kekFile}}
	if pg != nil {
		srv.args = append(srv.args, "-postgres", pg.dsn)
	}
	srv.start(t)
	defer srv.kill()

	per := p.events / p.senders
	total := per * p.senders
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	senders := make([]*soakSender, p.senders)
	spools := t.TempDir()
	for i := range senders {
		s := &soakSender{name: fmt.Sprintf("soak-%02d", i)}
		s.sink, err = rampart.NewControlSink(rampart.ControlPlaneConfig{URL: "https://" + addr, Client: adminClient(t, cp.caFile), Token: cp.token,
			SpoolDir: filepath.Join(spools, s.name), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.sink.Close(ctx)
		}()
		senders[i] = s
	}
	delivered := func() (n uint64, spooled int) {
		for _, s := range senders {
			st := s.sink.Stats()
			n += st.Delivered
			spooled += st.Spooled
			s.maxSpool.Store(max(s.maxSpool.Load(), st.SpoolBytes))
		}
		return n, spooled
	}

	start := time.Now()
	var writers sync.WaitGroup
	writeErr := make(chan error, p.senders)
	for _, s := range senders {
		writers.Go(func() {
			const batch = 64
			for i := 0; i < per; i += batch {
				n := min(batch, per-i)
				if err := s.sink.WriteEvents(context.Background(), soakEvents(s.name, i, n, t0)); err != nil {
					writeErr <- fmt.Errorf("%s: %w", s.name, err)
					return
				}
				s.written.Add(int64(n))
			}
		})
	}

	// The chaos, at points of progress rather than of time: kills of the
	// control plane, and one restart of PostgreSQL between them.
	ops := make([]string, 0, p.kills+1)
	for i := range p.kills {
		ops = append(ops, "kill")
		if i == 0 && pg != nil {
			ops = append(ops, "restart-postgres")
		}
	}
	deadline := time.Now().Add(30 * time.Minute)
	var lastOp time.Time
	var totalSpool int64
	for i, op := range ops {
		threshold := uint64(total) * uint64(i+1) / uint64(len(ops)+1)
		for {
			n, _ := delivered()
			if n >= threshold {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d events delivered after 30 minutes, waiting for %d before %s; server log:\n%s", n, total, threshold, op, srv.logTail())
			}
			time.Sleep(20 * time.Millisecond)
		}
		switch op {
		case "kill":
			srv.kill()
			t.Logf("control plane killed (SIGKILL) after %d events delivered", threshold)
			time.Sleep(p.downtime) // the senders keep writing into their spools
			_, spooled := delivered()
			var bytes int64
			for _, s := range senders {
				bytes += s.sink.Stats().SpoolBytes
			}
			totalSpool = max(totalSpool, bytes)
			t.Logf("restarting the control plane: %d events spooled (%d bytes)", spooled, bytes)
			srv.start(t)
		case "restart-postgres":
			pg.restart(t, p.downtime)
			t.Logf("PostgreSQL stopped (immediate) and started again after %d events delivered", threshold)
		}
		lastOp = time.Now()
	}
	writers.Wait()
	close(writeErr)
	for err := range writeErr {
		t.Fatal(err)
	}
	for {
		n, spooled := delivered()
		if n >= uint64(total) && spooled == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered, %d spooled, after 30 minutes; server log:\n%s", n, total, spooled, srv.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed, drain := time.Since(start), time.Since(lastOp)
	var failures uint64
	var maxSpool int64
	for _, s := range senders {
		st := s.sink.Stats()
		failures += st.Failures
		maxSpool = max(maxSpool, s.maxSpool.Load())
		if st.Delivered != uint64(per) || st.Undelivered() != 0 || st.Spooled != 0 || st.CorruptBytes != 0 {
			t.Errorf("%s: stats %+v, want %d delivered and nothing lost", s.name, st, per)
		}
	}
	store := "SQLite"
	if pg != nil {
		store = "PostgreSQL"
	}
	t.Logf("%s: %d senders, %d events, %d kills%s: %v, %.0f events/s; drained %v after the last fault; largest spool %d KiB (one sender), %d KiB (all, at a restart); %d failed attempts retried",
		store, p.senders, total, p.kills, map[bool]string{true: " and 1 PostgreSQL restart", false: ""}[pg != nil],
		elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), drain.Round(time.Millisecond), maxSpool>>10, totalSpool>>10, failures)

	// Stop the server gracefully, and read the store itself.
	srv.cmd.Process.Signal(os.Interrupt)
	<-srv.done
	srv.cmd = nil
	var ids map[string][]string
	if pg != nil {
		ids = postgresSoakIDs(t, pg.dsn)
	} else {
		ids = sqliteSoakIDs(t, cp.dir)
	}
	for _, s := range senders {
		got := ids[s.name]
		if len(got) != per {
			t.Errorf("%s: the store holds %d events, want %d, each once", s.name, len(got), per)
			continue
		}
		for i, id := range got {
			if want := fmt.Sprintf("%s-%07d", s.name, i); id != want {
				t.Errorf("%s: event %d in the store's order is %s, want %s", s.name, i, id, want)
				break
			}
		}
	}
	if len(ids) != p.senders {
		t.Errorf("the store holds events of %d senders, want %d", len(ids), p.senders)
	}
}

// sqliteSoakIDs reads the soak events' ids from the data directory's
// SQLite database, by sender, in the store's order (seq).
func sqliteSoakIDs(t *testing.T, dir string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName)+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT service, id FROM events WHERE kind = 'soak' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	return collectIDs(t, func() (bool, string, string, error) {
		if !rows.Next() {
			return false, "", "", rows.Err()
		}
		var svc, id string
		return true, svc, id, rows.Scan(&svc, &id)
	}, rows.Close)
}

func postgresSoakIDs(t *testing.T, dsn string) map[string][]string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT service, id FROM events WHERE kind = 'soak' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	return collectIDs(t, func() (bool, string, string, error) {
		if !rows.Next() {
			return false, "", "", rows.Err()
		}
		var svc, id string
		return true, svc, id, rows.Scan(&svc, &id)
	}, func() error { rows.Close(); return nil })
}

func collectIDs(t *testing.T, next func() (bool, string, string, error), closeRows func() error) map[string][]string {
	t.Helper()
	defer closeRows()
	ids := map[string][]string{}
	for {
		ok, svc, id, err := next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return ids
		}
		ids[svc] = append(ids[svc], id)
	}
}

// privatePostgres is a PostgreSQL cluster of the test's own, which it may
// restart without disturbing anyone else's.
type privatePostgres struct {
	bin, root, data string
	port            int
	dsn             string
	asPostgres      bool // run the programs as the user postgres (the test runs as root)
}

func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("a private PostgreSQL cluster is required in CI: "+format, args...)
		}
		t.Skipf("no private PostgreSQL cluster (set RAMPART_TEST_PG_BIN to PostgreSQL's bin directory): "+format, args...)
	}
	bin := os.Getenv("RAMPART_TEST_PG_BIN")
	if bin == "" {
		found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if len(found) == 0 {
			unavailable("no initdb under /usr/lib/postgresql")
		}
		slices.SortFunc(found, func(a, b string) int { return versionOf(a) - versionOf(b) })
		bin = filepath.Dir(found[len(found)-1])
	}
	root, err := os.MkdirTemp("", "rampart-soak-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg := &privatePostgres{bin: bin, root: root, data: filepath.Join(root, "data")}
	t.Cleanup(func() {
		pg.run("pg_ctl", "-D", pg.data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(root)
	})
	if os.Geteuid() == 0 {
		// initdb refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable("running as root and no user postgres: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(root, uid, gid); err != nil {
			t.Fatal(err)
		}
		pg.asPostgres = true
	}
	if out, err := pg.run("initdb", "-D", pg.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		unavailable("initdb: %v\n%s", err, out)
	}
	_, portStr, _ := net.SplitHostPort(freeAddr(t))
	pg.port, _ = strconv.Atoi(portStr)
	pg.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	if out, err := pg.start(); err != nil {
		unavailable("pg_ctl start: %v\n%s", err, out)
	}
	return pg
}

func versionOf(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func (pg *privatePostgres) run(program string, args ...string) ([]byte, error) {
	path := filepath.Join(pg.bin, program)
	var cmd *exec.Cmd
	if pg.asPostgres {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = pg.root
	return cmd.CombinedOutput()
}

func (pg *privatePostgres) start() ([]byte, error) {
	return pg.run("pg_ctl", "-D", pg.data, "-l", filepath.Join(pg.root, "postgres.log"), "-w", "-t", "120",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", pg.port, pg.root), "start")
}

// restart stops the cluster as a crash would (immediate: no checkpoint,
// connections cut), waits, and starts it again.
func (pg *privatePostgres) restart(t *testing.T, down time.Duration) {
	t.Helper()
	if out, err := pg.run("pg_ctl", "-D", pg.data, "-m", "immediate", "-w", "stop"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
	time.Sleep(down)
	if out, err := pg.start(); err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.root, "postgres.log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// TestSpoolSenderChild is the sender process of
// TestSpooledEventsSurviveTheSenderKilled; it does nothing on its own.
func TestSpoolSenderChild(t *testing.T) {
	mode := os.Getenv("RAMPART_SPOOL_CHILD")
	if mode == "" {
		t.Skip("the sender process of TestSpooledEventsSurviveTheSenderKilled")
	}
	sink, err := rampart.NewControlSink(rampart.ControlPlaneConfig{URL: os.Getenv("RAMPART_SPOOL_URL"),
		Client: adminClient(t, os.Getenv("RAMPART_SPOOL_CA")), Token: os.Getenv("RAMPART_SPOOL_TOKEN"),
		SpoolDir: os.Getenv("RAMPART_SPOOL_DIR"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t0, _ := time.Parse(time.RFC3339Nano, os.Getenv("RAMPART_SPOOL_T0"))
	switch mode {
	case "write": // until killed, saying what WriteEvents has taken
		for i := 0; ; i += 50 {
			if err := sink.WriteEvents(context.Background(), soakEvents("crash", i, 50, t0)); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("written %d\n", i+50)
		}
	case "drain":
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := sink.Close(ctx); err != nil {
			t.Fatal(err)
		}
		st := sink.Stats()
		fmt.Printf("delivered %d undelivered %d corrupt_bytes %d\n", st.Delivered, st.Undelivered(), st.CorruptBytes)
	}
}

// A service killed (SIGKILL) while the control plane is away loses none of
// the events its sink took: the next process on the spool delivers them.
func TestSpooledEventsSurviveTheSenderKilled(t *testing.T) {
	bin := buildRampart(t)
	cp := initControlPlane(t)
	addr := freeAddr(t) // nothing listens there yet: the control plane is away
	env := append(os.Environ(), "RAMPART_SPOOL_URL=https://"+addr, "RAMPART_SPOOL_CA="+cp.caFile, "RAMPART_SPOOL_TOKEN="+cp.token,
		"RAMPART_SPOOL_DIR="+filepath.Join(t.TempDir(), "spool"), "RAMPART_SPOOL_T0="+time.Now().Add(-time.Minute).Format(time.RFC3339Nano))
	child := func(mode string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolSenderChild$", "-test.count=1")
		cmd.Env = append(env, "RAMPART_SPOOL_CHILD="+mode)
		return cmd
	}

	writer := child("write")
	out, err := writer.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	written := 0
	sc := bufio.NewScanner(out)
	for written < 3000 && sc.Scan() {
		fmt.Sscanf(sc.Text(), "written %d", &written)
	}
	writer.Process.Kill() // in the middle of a write, likely
	go io.Copy(io.Discard, out)
	writer.Wait()
	if written < 3000 {
		t.Fatalf("the sender reported %d events written before it stopped", written)
	}

	logFile, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	srv := &serverProcess{bin: bin, log: logFile, args: []string{"server", "-data", cp.dir, "-addr", addr, "-ca-kek-file", cp.kekFile}}
	srv.start(t)
	defer srv.kill()
	drained, err := child("drain").Output()
	if err != nil {
		t.Fatalf("the second sender process: %v\n%s", err, drained)
	}
	var delivered, undelivered, corrupt int
	report := string(drained)
	if i := strings.Index(report, "delivered"); i >= 0 {
		report = report[i:]
	}
	if _, err := fmt.Sscanf(report, "delivered %d undelivered %d corrupt_bytes %d", &delivered, &undelivered, &corrupt); err != nil {
		t.Fatalf("the second sender said %q: %v", drained, err)
	}
	srv.cmd.Process.Signal(os.Interrupt)
	<-srv.done
	srv.cmd = nil
	ids := sqliteSoakIDs(t, cp.dir)["crash"]
	// Every event the killed process was told was written is there, once,
	// in order; those it wrote after its last report may be there too.
	if len(ids) < written || undelivered != 0 || delivered != len(ids) {
		t.Fatalf("the store holds %d events; the killed sender reported %d written; the next one delivered %d, %d undelivered",
			len(ids), written, delivered, undelivered)
	}
	for i, id := range ids {
		if want := fmt.Sprintf("crash-%07d", i); id != want {
			t.Fatalf("event %d in the store's order is %s, want %s", i, id, want)
		}
	}
	t.Logf("killed after %d events reported written; %d delivered by the next process (%d bytes cut from a torn write)", written, len(ids), corrupt)
}
