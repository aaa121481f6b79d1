package fsguard_test

import (
	"context"
	"errors"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/fsguard"
	"golang.org/x/text/unicode/norm"
)

// FuzzCheck passes an input through the ways applications build names from
// input (as it is, under a directory, with an extension, decoded,
// NFKC-normalised, with backslashes as slashes, path-cleaned under a
// directory) and checks, besides that nothing panics, that whatever
// Guard.Check allows stays in the base: the joined path is inside it lexically and, when
// it exists, once its symbolic links are resolved, whether the name is
// joined (filepath.Join) or concatenated. The base has the links of
// testdata/exploits.txt, some leading outside. The deprecated package-level
// Check must answer as Guard.Check does. The seed corpus is in
// testdata/fuzz/FuzzCheck.
func FuzzCheck(f *testing.F) {
	l := newLayout(f)
	agent := discardingAgent(f)
	d, err := fsguard.New(agent, l.base)
	must(f, err)
	f.Cleanup(func() { d.Close() })
	real, err := filepath.EvalSymlinks(l.base)
	must(f, err)

	for _, seed := range []string{"report.v2.pdf", "../../outside/secret.txt", "up/secret.txt", "..%252f..%252fx", "‥／‥／x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		ctx := rampart.WithUntrusted(context.Background(), "fuzz", input)
		names := []string{
			input,
			"public/" + input,
			input + ".txt",
			norm.NFKC.String(input),
			strings.ReplaceAll(input, `\`, "/"),
			path.Join("docs", input),
		}
		if dec, err := url.PathUnescape(input); err == nil {
			names = append(names, dec)
			if dec2, err := url.PathUnescape(dec); err == nil {
				names = append(names, dec2)
			}
		}
		for _, name := range names {
			err := d.Check(ctx, name)
			if perr := fsguard.Check(ctx, agent, l.base, name); errors.Is(perr, rampart.ErrBlocked) != errors.Is(err, rampart.ErrBlocked) {
				t.Errorf("Check(%q): Guard.Check says %v but the package-level Check says %v", name, err, perr)
			}
			if errors.Is(err, rampart.ErrBlocked) {
				continue
			}
			if err != nil {
				t.Fatalf("Check(%q): %v, want nil or ErrBlocked", name, err)
			}
			if len(input) < 2 {
				continue // the guard does not consider one-byte inputs
			}
			if filepath.IsAbs(name) {
				t.Errorf("input %q: allowed the absolute name %q", input, name)
				continue
			}
			if strings.IndexByte(input, 0) >= 0 && strings.Contains(name, input) {
				t.Errorf("input %q: allowed the name %q with its NUL byte", input, name)
			}
			joined := filepath.Join(l.base, name)
			if !inside(joined, l.base) {
				t.Errorf("input %q: allowed %q, which joins to %q outside the base", input, name, joined)
			}
			for _, p := range []string{joined, l.base + string(filepath.Separator) + name} {
				if resolved, err := filepath.EvalSymlinks(p); err == nil && !inside(resolved, real) {
					t.Errorf("input %q: allowed %q, which resolves to %q outside the base", input, name, resolved)
				}
			}
		}
		// A Guard operation never panics and never leaves the base.
		if b, err := d.ReadFile(ctx, input); err == nil && strings.HasPrefix(string(b), secretPrefix) {
			t.Errorf("ReadFile(%q) read a secret", input)
		}
	})
}

func inside(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
