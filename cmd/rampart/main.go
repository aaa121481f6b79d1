// Command rampart is Rampart's one binary. Its subcommands:
//
//   - demo runs the control plane, the gateway and a sample service in one
//     process, attacks them and shows the events.
//   - init creates a control-plane data directory (its CA, the CA key
//     sealed under a key-encryption key kept elsewhere, the admin token);
//     server serves the control-plane API over TLS from one.
//   - gateway runs the edge gateway that a gateway.yaml describes.
//   - token, decisions, policy, events and services administer a running
//     control plane over its API: join tokens (created with a number of
//     uses, listed, revoked), the decisions that refuse
//     or slow an actor, the authorization policy, the security events, and
//     the service inventory and its revocations. They print tables, or
//     JSON with -o json.
//   - version and help print the version and the usage.
//
// "rampart help" lists every flag. The binary parses flags and prints;
// what it runs lives in the packages it calls.
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

Client commands talk to the control plane at RAMPART_ADDR (or -addr) with the
admin token RAMPART_TOKEN (-token), checking its certificate against RAMPART_CA
(-ca). They print tables; -o json prints JSON for scripts.

Usage:
  rampart demo [-addr host:port] [-mode block|monitor] [-data DIR] [-once]
                                 run the control plane, the gateway and the sample service
                                 in one process, attack them and show the events
  rampart init -data DIR [-trust-domain rampart.local] [-ca-cert FILE -ca-key FILE] [-ca-kek-file FILE]
                                 create a control-plane data directory, its CA key sealed under a
                                 key-encryption key kept elsewhere, and print the admin token
  rampart server -data DIR [-ca-kek-file FILE] [-addr 127.0.0.1:8443] [-hosts names] [-postgres DSN]
                 [-detect] [-scenarios DIR] [-detect-allow ip:10.0.0.0/8,user:ops] [-detect-allow-file FILE]
                                 serve the control-plane API over TLS (the CA key's KEK: -ca-kek-file
                                 or RAMPART_CA_KEK), and detect abuse in the events it stores
  rampart gateway [-c gateway.yaml]
                                 run the edge gateway: WAF, authentication, decisions, actor tokens
  rampart token create [-ttl 1h] [-uses 1] SERVICE
                                 create a join token for a service: -uses N lets N replicas
                                 join with it (a restarted service renews with its persisted
                                 SVID and needs no new token)
  rampart token list [-service S] [-all]
                                 list join tokens: id, service, uses left, expiry (never the secret)
  rampart token revoke ID...     refuse the remaining uses of join tokens
  rampart decisions add [-action block] [-ttl D] [-reason R] [-force] SCOPE VALUE
                                 block an actor (SCOPE: ip, cidr, user, session)
  rampart decisions list [-all]  list decisions
  rampart decisions rm ID...     remove decisions
  rampart decisions explain ID   why a decision was made: origin, alert, scenario, evidence events
  rampart alerts [-scenario S] [-since 24h] [-limit N]
                                 list what detection raised, newest first
  rampart scenarios list         list the detection scenarios in force
  rampart scenarios test DIR...  run scenario fixtures (input.jsonl → expected.jsonl), offline
  rampart scenarios replay [-since 24h] [-until T] [-dir DIR]
                                 what the scenarios (those of DIR replacing the server's) would
                                 raise over the stored events; nothing is stored
  rampart policy apply -f FILE [-base N]
                                 validate and apply a service authorization policy (YAML)
  rampart policy show [-version N]
                                 print the current (or an earlier) policy
  rampart events [-kind K] [-service S] [-since 1h] [-limit N]
                                 list security events, newest first
  rampart services [-exposed] [-module PATH]
                                 list the services in the inventory
  rampart services revoke|reinstate SERVICE
                                 refuse (or allow again) a service's renewals and joins
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
	case "init":
		return noHelpErr(runInit(ctx, args[1:], stdout, stderr))
	case "server":
		return noHelpErr(runServer(ctx, args[1:], stdout, stderr))
	case "gateway":
		return runGateway(ctx, args[1:], stdout, stderr)
	case "token", "tokens":
		return noHelpErr(runToken(ctx, args[1:], stdout, stderr))
	case "decisions":
		return noHelpErr(runDecisions(ctx, args[1:], stdout, stderr))
	case "events":
		return noHelpErr(runEvents(ctx, args[1:], stdout, stderr))
	case "policy":
		return noHelpErr(runPolicy(ctx, args[1:], stdout, stderr))
	case "services":
		return noHelpErr(runServices(ctx, args[1:], stdout, stderr))
	case "alerts":
		return noHelpErr(runAlerts(ctx, args[1:], stdout, stderr))
	case "scenarios":
		return noHelpErr(runScenarios(ctx, args[1:], stdout, stderr))
	case "version":
		fmt.Fprintln(stdout, version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q; run 'rampart help'", args[0])}
}

// noHelpErr turns the help a command printed for -h into success.
func noHelpErr(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "the gateway's listen address (default 127.0.0.1:8080, or a free port if taken)")
	controlAddr := fs.String("control-addr", "127.0.0.1:0", "the control plane's listen address")
	data := fs.String("data", "", "the control plane's data directory, initialized if new (default: a temporary one); an existing one needs RAMPART_TOKEN")
	mode := fs.String("mode", string(rampart.ModeBlock), "block or monitor (the WAF then only detects too)")
	db := fs.String("db", "", "the shop's SQLite database file (default: in memory)")
	once := fs.Bool("once", false, "tell the story and exit instead of serving until interrupted")
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
		Addr:        *addr,
		ControlAddr: *controlAddr,
		DataDir:     *data,
		AdminToken:  os.Getenv("RAMPART_TOKEN"),
		Mode:        rampart.Mode(*mode),
		Database:    *db,
		Once:        *once,
		Out:         stdout,
		Logger:      slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "rampart (unknown version)"
	}
	return fmt.Sprintf("rampart %s (%s)", bi.Main.Version, bi.GoVersion)
}
