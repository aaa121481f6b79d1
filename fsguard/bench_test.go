package fsguard_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/fsguard"
	"github.com/rampartsec/rampart/internal/benchinputs"
)

// The benchmarks in this file measure what the guard adds to opening a
// file, against the unguarded os.Open(filepath.Join(base, name)) and against
// os.Root.Open, in the same run. The context carries 20 untrusted inputs of
// the kind one request has, and the name is a file two directories deep:
//
//	case=none   no input occurs in the name (the application's own name)
//	case=input  one input is the file's name ("invoice-2024-05.pdf"), the
//	            usual download handler; it is benign
//
// Each iteration opens and closes the file. BenchmarkCheck measures the
// check alone, without the open: Guard.Check, and the deprecated
// package-level Check. Results are in BENCHMARKS.md, with the
// commands that reproduce them.

// discardingAgent is an agent that drops its events, for a benchmark or a
// fuzz target: they report more events than a ramparttest.Recorder should
// keep.
func discardingAgent(tb testing.TB) *rampart.Agent {
	tb.Helper()
	a, err := rampart.New(rampart.Config{Service: "files", Sinks: []rampart.Sink{discard{}}, Logger: slog.New(slog.DiscardHandler)})
	must(tb, err)
	tb.Cleanup(func() { a.Close(context.Background()) })
	return a
}

type discard struct{}

func (discard) WriteEvents(context.Context, []rampart.Event) error { return nil }

// benchInputs are 19 values of the kind one request carries (headers, query
// parameters, JSON fields), none of which occurs in the benchmarks' names.
var benchInputs = benchinputs.Request()

const (
	benchFile   = "invoice-2024-05.pdf"
	benchDir    = "customers/c-1042"
	benchQuiet  = "monthly-report" // the 20th input in case=none
	benchResult = "%PDF-1.7 invoice"
)

type benchEnv struct {
	base  string
	name  string // benchDir/benchFile
	agent *rampart.Agent
	guard *fsguard.Guard
	root  *os.Root
	ctx   map[string]context.Context // by case
}

func newBenchEnv(b *testing.B) benchEnv {
	b.Helper()
	base := b.TempDir()
	must(b, os.MkdirAll(filepath.Join(base, filepath.FromSlash(benchDir)), 0o755))
	name := filepath.Join(filepath.FromSlash(benchDir), benchFile)
	must(b, os.WriteFile(filepath.Join(base, name), []byte(benchResult), 0o644))
	agent := discardingAgent(b)
	d, err := fsguard.New(agent, base)
	must(b, err)
	b.Cleanup(func() { d.Close() })
	root, err := os.OpenRoot(base)
	must(b, err)
	b.Cleanup(func() { root.Close() })
	bg := context.Background()
	return benchEnv{
		base: base, name: name, agent: agent, guard: d, root: root,
		ctx: map[string]context.Context{
			"none":  rampart.WithUntrusted(bg, "query", append(benchInputs[:len(benchInputs):len(benchInputs)], benchQuiet)...),
			"input": rampart.WithUntrusted(bg, "query", append(benchInputs[:len(benchInputs):len(benchInputs)], benchFile)...),
		},
	}
}

func BenchmarkOpen(b *testing.B) {
	env := newBenchEnv(b)
	impls := []struct {
		name string
		open func(ctx context.Context) (*os.File, error)
	}{
		{"os.Open", func(context.Context) (*os.File, error) { return os.Open(filepath.Join(env.base, env.name)) }},
		{"os.Root.Open", func(context.Context) (*os.File, error) { return env.root.Open(env.name) }},
		{"Guard.Open", func(ctx context.Context) (*os.File, error) { return env.guard.Open(ctx, env.name) }},
		{"Guard.Check+os.Open", func(ctx context.Context) (*os.File, error) {
			if err := env.guard.Check(ctx, env.name); err != nil {
				return nil, err
			}
			return os.Open(filepath.Join(env.guard.Name(), env.name))
		}},
	}
	for _, c := range []string{"none", "input"} {
		ctx := env.ctx[c]
		for _, impl := range impls {
			b.Run("case="+c+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					f, err := impl.open(ctx)
					if err != nil {
						b.Fatal(err)
					}
					f.Close()
				}
			})
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	env := newBenchEnv(b)
	for _, c := range []string{"none", "input"} {
		ctx := env.ctx[c]
		// The deprecated package-level function, which resolves the base on
		// every call.
		b.Run("case="+c+"/impl=Check", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := fsguard.Check(ctx, env.agent, env.base, env.name); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("case="+c+"/impl=Guard.Check", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := env.guard.Check(ctx, env.name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
