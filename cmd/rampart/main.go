// Command rampart is Rampart's one binary: the demo now, the control plane,
// gateway and administration commands as they land.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/demo"
)

const usage = `Rampart secures requests between Go microservices.

Usage:
  rampart demo [-addr host:port] [-mode block|monitor] [-db path]
                                 run the sample service behind the SDK and attack it
  rampart version                print the version
  rampart help                   print this help
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "rampart: %v\n", err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "rampart: %v\n", err)
		os.Exit(1)
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given; run 'rampart help'"}
	}
	switch args[0] {
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q; run 'rampart help'", args[0])}
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "listen address (default 127.0.0.1:8080, or a free port if taken)")
	mode := fs.String("mode", string(rampart.ModeBlock), "block or monitor")
	db := fs.String("db", "", "SQLite database file (default: in memory)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("demo takes no arguments, got %q", fs.Arg(0))}
	}
	if *mode != string(rampart.ModeBlock) && *mode != string(rampart.ModeMonitor) {
		return usageError{fmt.Sprintf("-mode %q: want block or monitor", *mode)}
	}
	return demo.Run(ctx, demo.Config{
		Addr:     *addr,
		Mode:     rampart.Mode(*mode),
		Database: *db,
		Out:      stdout,
		Logger:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "rampart (unknown version)"
	}
	return fmt.Sprintf("rampart %s (%s)", bi.Main.Version, bi.GoVersion)
}
