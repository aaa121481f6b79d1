package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles the rampart command of the module at root into dir and
// returns the binary's path. The servers under test are this binary, run as
// processes, so that they can be killed (SIGKILL) and measured (/proc) like
// a deployment's.
func Build(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "rampart")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/rampart")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("loadtest: go build ./cmd/rampart: %v\n%s", err, out)
	}
	return bin, nil
}

// ControlPlane is a data directory made by 'rampart init', which every
// server started from it shares (over PostgreSQL, the replicas of one
// control plane).
type ControlPlane struct {
	Bin        string // the rampart binary
	Dir        string // the data directory
	KEKFile    string // the CA key's key-encryption key, outside Dir
	AdminToken string
	CAPEM      []byte // verifies the servers' certificates and the SVIDs
}

// Init runs 'rampart init' into dir (which must not exist or be empty);
// the key-encryption key goes to kekFile.
func Init(ctx context.Context, bin, dir, kekFile string) (*ControlPlane, error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "init", "-data", dir, "-trust-domain", "scale.test", "-ca-kek-file", kekFile)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("loadtest: rampart init: %v: %s", err, errOut.String())
	}
	token := regexp.MustCompile(`rat_[A-Za-z0-9_-]+`).FindString(out.String())
	if token == "" {
		return nil, fmt.Errorf("loadtest: rampart init printed no admin token: %s", out.String())
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca", "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	return &ControlPlane{Bin: bin, Dir: dir, KEKFile: kekFile, AdminToken: token, CAPEM: caPEM}, nil
}

// Server is a 'rampart server' process.
type Server struct {
	Addr string // host:port it listens on
	Pid  int

	cmd    *exec.Cmd
	stderr *tailBuffer
	done   chan struct{}
	err    error // of Wait, once done is closed
}

// Start runs 'rampart server' over the data directory, listening on addr
// (host:0 for a free port), with extra flags (-postgres DSN, quotas), and
// returns once it serves. The process runs until Kill or Stop, or until ctx
// ends, which kills it.
func (cp *ControlPlane) Start(ctx context.Context, addr string, extra ...string) (*Server, error) {
	args := append([]string{"server", "-data", cp.Dir, "-addr", addr, "-ca-kek-file", cp.KEKFile}, extra...)
	cmd := exec.CommandContext(ctx, cp.Bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &Server{cmd: cmd, stderr: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadtest: start rampart server: %w", err)
	}
	s.Pid = cmd.Process.Pid
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`serving on https://(\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrs <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	select {
	case s.Addr = <-addrs:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("loadtest: rampart server exited: %v: %s", s.err, s.stderr.String())
	case <-time.After(2 * time.Minute):
		s.Kill()
		return nil, fmt.Errorf("loadtest: rampart server printed no address: %s", s.stderr.String())
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Stop asks the server to stop (SIGTERM) and waits for it; after a minute
// it kills it. It returns an error if the server did not exit cleanly.
func (s *Server) Stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		s.Kill()
		return errors.New("loadtest: server did not stop within a minute of SIGTERM")
	}
	if s.err != nil {
		return fmt.Errorf("loadtest: server: %v: %s", s.err, s.stderr.String())
	}
	return nil
}

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Log returns the end of the server's standard error.
func (s *Server) Log() string { return s.stderr.String() }

// Usage is what a process has consumed, from /proc.
type Usage struct {
	CPU     time.Duration // user + system time since the process started
	RSS     int64         // resident set, bytes
	PeakRSS int64         // the most resident set so far, bytes (VmHWM)
	FDs     int           // open file descriptors
	Threads int
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every
// Linux architecture Go runs on (sysconf(_SC_CLK_TCK) would need cgo).
const clockTicks = 100

// ProcessUsage reads the usage of process pid.
func ProcessUsage(pid int) (Usage, error) {
	var u Usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count the fields after its closing one.
	rest := stat[bytes.LastIndexByte(stat, ')')+2:]
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return u, fmt.Errorf("loadtest: /proc/%d/stat: short", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return u, fmt.Errorf("loadtest: /proc/%d/stat: %w", pid, err)
	}
	u.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for line := range strings.Lines(string(status)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			u.RSS = n << 10
		case "VmHWM":
			u.PeakRSS = n << 10
		case "Threads":
			u.Threads = int(n)
		}
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		u.FDs = len(fds)
	}
	return u, nil
}

// Usage reads the server's usage.
func (s *Server) Usage() (Usage, error) { return ProcessUsage(s.Pid) }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
