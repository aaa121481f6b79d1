package fsguard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rampartsec/rampart"
)

// Guard is a directory in which an application opens files by names that
// may carry untrusted input, the way an os.Root is one: [New] binds it to
// the directory and the agent, and its methods mirror os.Root's with a
// context first. Its operations go through an os.Root, so none of them
// reaches outside the directory whatever the name says, in block and
// monitor mode alike; when an input of the context tries to, the Guard
// reports the attack and, in block mode, returns an error wrapping
// rampart.ErrBlocked instead of os.Root's error. [Guard.Check] is the check
// alone, for names handed to other APIs. It is safe for concurrent use.
// Close it when done.
//
// Names are relative to the directory, with the operating system's
// separators, as for os.Root.
type Guard struct {
	agent *rampart.Agent
	root  *os.Root
	t     target // computed once by New, read-only afterwards
}

// Dir is the former name of [Guard], from before every guard package named
// its main type Guard.
//
// Deprecated: use [Guard]. Dir will be removed in the next release.
type Dir = Guard

// New opens base, which must exist and be a directory, for operations
// checked against the untrusted inputs of their context and reported to
// agent. The directory is the boundary: names may move around inside it
// ("docs/../readme.txt") but not above it.
func New(agent *rampart.Agent, base string) (*Guard, error) {
	if agent == nil {
		return nil, errors.New("fsguard: New: agent is nil")
	}
	if base == "" {
		return nil, errors.New("fsguard: New: base is empty")
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		return nil, fmt.Errorf("fsguard: New: base %q: %w", base, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("fsguard: New: base %q: %w", base, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("fsguard: New: base %q is not a directory", base)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("fsguard: New: base %q: %w", base, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("fsguard: New: base %q: %w", base, err)
	}
	return &Guard{agent: agent, root: root, t: target{given: base, base: abs, real: real}}, nil
}

// Name returns the directory's absolute path, for code that joins names to
// it itself after [Guard.Check].
func (g *Guard) Name() string { return g.t.base }

// Root returns the os.Root the directory's operations go through, for the
// operations Guard does not wrap (Mkdir, Rename, Symlink...). They are
// confined to the directory but not checked against inputs, so nothing is
// reported.
func (g *Guard) Root() *os.Root { return g.root }

// Close closes the directory. Files opened through it stay open.
func (g *Guard) Close() error { return g.root.Close() }

// Check returns nil when name may be used in the directory: no untrusted
// input of ctx makes it leave the directory, by its text or through a
// symbolic link, and the request's inputs were all recorded (see
// rampart.CheckInputsComplete). Otherwise it reports the event and, in block
// mode, returns an error wrapping rampart.ErrBlocked. The Guard's operations
// check their names themselves; Check is for names handed to other APIs,
// such as http.ServeFileFS(w, r, g.Root().FS(), name), and for code that
// keeps its own calls:
//
//	if err := files.Check(ctx, name); err != nil {
//		return err
//	}
//	f, err := os.Open(filepath.Join(files.Name(), name))
//
// Check the name apart from the directory, never the joined path:
// filepath.Join cleans away the ".." segments that made the attack, and
// with them the input. Checking then using a path leaves a window in which
// a symbolic link can be swapped in; the Guard's own operations have none,
// because os.Root resolves the name as it opens it.
//
// When no input occurs in name, Check costs one substring search per input.
// When one does, it also looks up the input's path components (os.Lstat).
func (g *Guard) Check(ctx context.Context, name string) error {
	t := g.t
	return check(ctx, g.agent, &t, name)
}

// before checks the text of name, before the operation: a NUL byte, an
// absolute name or a ".." above the directory, from an input. Names with
// none of the three (most names) cost a scan of the name and nothing else.
// It reports whether it reported a finding, so that after does not report it
// again in monitor mode.
func (g *Guard) before(ctx context.Context, op, name string) (reported bool, err error) {
	if !suspicious(name) {
		return false, nil
	}
	t := g.t
	f, ok := inspect(ctx, name, &t, true, false)
	if !ok {
		return false, nil
	}
	return true, report(ctx, g.agent, op, name, &t, f)
}

// after runs when os.Root refused or failed an operation: if an input of
// ctx led the name outside the directory through a symbolic link, it
// reports that and, in block mode, returns the blocked error in place of
// os.Root's. os.Root has refused the escape already; looking at links only
// now keeps successful operations free of the extra lookups. os.Root does
// not export its escape error, so every failure is looked at; most are a
// missing file, and cost one lookup per component of the input.
func (g *Guard) after(ctx context.Context, op, name string, reported bool, err error) error {
	if reported {
		return err
	}
	t := g.t
	f, ok := inspect(ctx, name, &t, false, true)
	if !ok {
		return err
	}
	if berr := report(ctx, g.agent, op, name, &t, f); berr != nil {
		return berr
	}
	return err
}

// Open opens name for reading, like os.Root.Open.
func (g *Guard) Open(ctx context.Context, name string) (*os.File, error) {
	return g.openFile(ctx, "open", name, os.O_RDONLY, 0)
}

// Create creates or truncates name, like os.Root.Create.
func (g *Guard) Create(ctx context.Context, name string) (*os.File, error) {
	return g.openFile(ctx, "create", name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile opens name with flag and perm, like os.Root.OpenFile.
func (g *Guard) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (*os.File, error) {
	return g.openFile(ctx, "open", name, flag, perm)
}

func (g *Guard) openFile(ctx context.Context, op, name string, flag int, perm fs.FileMode) (*os.File, error) {
	reported, err := g.before(ctx, op, name)
	if err != nil {
		return nil, err
	}
	f, err := g.root.OpenFile(name, flag, perm)
	if err != nil {
		return nil, g.after(ctx, op, name, reported, err)
	}
	return f, nil
}

// ReadFile reads the whole of name, like os.Root.ReadFile.
func (g *Guard) ReadFile(ctx context.Context, name string) ([]byte, error) {
	reported, err := g.before(ctx, "read", name)
	if err != nil {
		return nil, err
	}
	b, err := g.root.ReadFile(name)
	if err != nil {
		return nil, g.after(ctx, "read", name, reported, err)
	}
	return b, nil
}

// WriteFile writes data to name, creating it with perm if needed, like
// os.Root.WriteFile.
func (g *Guard) WriteFile(ctx context.Context, name string, data []byte, perm fs.FileMode) error {
	reported, err := g.before(ctx, "write", name)
	if err != nil {
		return err
	}
	if err := g.root.WriteFile(name, data, perm); err != nil {
		return g.after(ctx, "write", name, reported, err)
	}
	return nil
}

// Stat returns name's FileInfo, following symbolic links, like
// os.Root.Stat.
func (g *Guard) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	reported, err := g.before(ctx, "stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := g.root.Stat(name)
	if err != nil {
		return nil, g.after(ctx, "stat", name, reported, err)
	}
	return fi, nil
}

// Remove removes the file or empty directory name, like os.Root.Remove. A
// symbolic link is removed, not what it points to.
func (g *Guard) Remove(ctx context.Context, name string) error {
	reported, err := g.before(ctx, "remove", name)
	if err != nil {
		return err
	}
	if err := g.root.Remove(name); err != nil {
		return g.after(ctx, "remove", name, reported, err)
	}
	return nil
}

// ReadDir reads the directory name and returns its entries sorted by file
// name, like os.ReadDir.
func (g *Guard) ReadDir(ctx context.Context, name string) ([]fs.DirEntry, error) {
	reported, err := g.before(ctx, "read dir", name)
	if err != nil {
		return nil, err
	}
	f, err := g.root.Open(name)
	if err != nil {
		return nil, g.after(ctx, "read dir", name, reported, err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}
