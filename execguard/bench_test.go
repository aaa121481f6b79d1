package execguard_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/execguard"
	"github.com/rampartsec/rampart/internal/benchinputs"
)

// The benchmarks in this file measure what the guard adds to building a
// command, in three cases that differ by where the request's input ends up:
//
//	case=none     no input of the context occurs in the command line (the common case)
//	case=quoted   one input occurs in the command line as data: single-quoted in
//	              the script, or as one argument (benign)
//	case=injected one input is concatenated into the script, or given as an
//	              option (blocked)
//
// for a shell command (sh -c with a 90-byte script) and a direct one (git
// with seven arguments), with 20 untrusted inputs in the context. guard=off
// is exec.CommandContext itself; programs are named by absolute path so
// that neither side pays for a PATH lookup. BenchmarkStart gives, for
// scale, the cost of starting and waiting for /bin/true.

// benchInputs are 19 values of the kind one request carries (headers,
// query parameters, JSON fields), none of which occurs in the commands.
var benchInputs = benchinputs.Request()

type benchCommand struct {
	name  string
	build func(in string) []string // the command line, with in where the application puts its input
	input map[string]string        // the 20th input, by case
}

var benchCommands = []benchCommand{
	{
		name: "shell",
		build: func(in string) []string {
			return []string{"/bin/sh", "-c", "convert '/var/lib/thumbs/in/" + in + "' -resize 50% -strip '/var/lib/thumbs/out/thumb.png'"}
		},
		input: map[string]string{"none": "holiday.jpg", "quoted": "holiday photo.jpg", "injected": "x'; touch /tmp/pwned; '"},
	},
	{
		name: "direct",
		build: func(in string) []string {
			return []string{"/usr/bin/git", "-C", "/srv/repos/shop", "log", "--oneline", "-n", "20", in}
		},
		input: map[string]string{"none": "HEAD", "quoted": "release-2024.05", "injected": "--output=/tmp/pwned"},
	},
}

type discard struct{}

func (discard) WriteEvents(context.Context, []rampart.Event) error { return nil }

func benchGuard(b *testing.B) *execguard.Guard {
	agent, err := rampart.New(rampart.Config{Service: "bench", Sinks: []rampart.Sink{discard{}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { agent.Close(context.Background()) })
	g, err := execguard.New(agent)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// benchContext returns the context of a request with the 19 inputs and a
// 20th, and the command line. In case=none the command line holds a
// constant and the 20th input is unrelated; otherwise the application put
// the 20th input in the command line.
func benchContext(c benchCommand, kase string) (context.Context, []string) {
	in := c.input[kase]
	if kase == "none" {
		return rampart.WithUntrusted(context.Background(), "query", append(benchInputs, "unrelated-value")...), c.build(in)
	}
	return rampart.WithUntrusted(context.Background(), "query", append(benchInputs, in)...), c.build(in)
}

func BenchmarkCommand(b *testing.B) {
	g := benchGuard(b)
	for _, c := range benchCommands {
		for _, kase := range []string{"none", "quoted", "injected"} {
			ctx, argv := benchContext(c, kase)
			wantBlocked := kase == "injected"
			if err := g.Check(ctx, argv[0], argv[1:]...); errors.Is(err, rampart.ErrBlocked) != wantBlocked {
				b.Fatalf("%s/%s: Check = %v", c.name, kase, err)
			}
			b.Run("cmd="+c.name+"/case="+kase+"/guard=off", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
					if cmd == nil {
						b.Fatal("nil Cmd")
					}
				}
			})
			b.Run("cmd="+c.name+"/case="+kase+"/guard=on", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					cmd := g.CommandContext(ctx, argv[0], argv[1:]...)
					if (cmd.Err != nil) != wantBlocked {
						b.Fatal(cmd.Err)
					}
				}
			})
		}
	}
}

// BenchmarkCheck is the check alone, without building the Cmd.
func BenchmarkCheck(b *testing.B) {
	g := benchGuard(b)
	for _, c := range benchCommands {
		for _, kase := range []string{"none", "quoted", "injected"} {
			ctx, argv := benchContext(c, kase)
			b.Run("cmd="+c.name+"/case="+kase, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = g.Check(ctx, argv[0], argv[1:]...)
				}
			})
		}
	}
}

// BenchmarkStart runs /bin/true, for scale: what a command costs anyway.
func BenchmarkStart(b *testing.B) {
	g := benchGuard(b)
	ctx := rampart.WithUntrusted(context.Background(), "query", append(benchInputs, "unrelated-value")...)
	b.Run("guard=off", func(b *testing.B) {
		for b.Loop() {
			if err := exec.CommandContext(ctx, "/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("guard=on", func(b *testing.B) {
		for b.Loop() {
			if err := g.CommandContext(ctx, "/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
