package execguard_test

import (
	"context"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart"
)

// TestDifferential builds inputs from pieces of shell syntax, puts them in
// scripts the way vulnerable and careful applications do, and runs every
// script that the guard allows under the real shell: none may create the
// canary file. It tries 400 inputs from a fixed seed; set
// EXECGUARD_PROBE=5m to search longer with a random seed.
func TestDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("runs hundreds of shells to compare the guard with a real one; the full suite (without -short) runs it")
	}
	tries, seed := 400, int64(1)
	var deadline time.Time
	if d, err := time.ParseDuration(os.Getenv("EXECGUARD_PROBE")); err == nil {
		tries, seed, deadline = 1<<62, time.Now().UnixNano(), time.Now().Add(d)
	}
	g, _ := newGuard(t, rampart.ModeBlock)
	dir := t.TempDir()
	dataFile(t, dir)
	canary := dir + "/canary"
	pieces := []string{"'", "'", `"`, `"`, `\`, ";", "&&", "|", "\n", "$(", ")", "`", " touch CANARY ", "touch${IFS}CANARY", "x", " ",
		"#", "<<", "EOF", "EOF\n", `\'`, `'\''`, "$'", "${x:-", "}", "(", "&", ">CANARY", "*", "~", "{", "eval ", "sh -c ", `\"`, "$", "$1", "-o", "=", "\t",
		"-oCANARY", "--output=CANARY", "--use-compress-program=touch CANARY", "-", "--", "-- "}
	tpls := []string{"sh-raw", "sh-single", "sh-double", "sh-heredoc", "sh-nested", "sh-eval", "sh-positional-eval", "bash-raw", "bash-single",
		"sh-quoted", "sh-heredoc-quoted", "sh-subst-quoted", "bash-quoted", "env-sh", "sh-eval-quoted", "sh-nested-quoted",
		"sort", "sh-sort", "sh-positional-sort", "tar-create"}
	r := rand.New(rand.NewSource(seed))
	ran := 0
	for i := 0; i < tries && (deadline.IsZero() || time.Now().Before(deadline)); i++ {
		var b strings.Builder
		for k := 1 + r.Intn(7); k > 0; k-- {
			b.WriteString(pieces[r.Intn(len(pieces))])
		}
		in := b.String()
		if !strings.Contains(in, "CANARY") {
			in += " touch CANARY"
		}
		in = strings.ReplaceAll(in, "CANARY", canary)
		name := tpls[r.Intn(len(tpls))]
		argv := templates[name].argv(dir, in)
		if err := g.Check(rampart.WithUntrusted(context.Background(), "query", in), argv[0], argv[1:]...); err != nil {
			continue
		}
		ran++
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.Run()
		cancel()
		if waitFor(canary, 2*time.Millisecond) {
			t.Errorf("allowed, and created the canary: %s %s", name, strconv.Quote(in))
			os.Remove(canary)
		}
	}
	t.Logf("seed %d: %d inputs allowed and run", seed, ran)
}
