package detect

import (
	"embed"
	"io/fs"
	"slices"
	"strings"
	"sync"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

var builtins = sync.OnceValue(func() []*Scenario {
	names, _ := fs.Glob(builtinFS, "builtin/*.yaml")
	slices.Sort(names)
	var out []*Scenario
	for _, name := range names {
		data, _ := builtinFS.ReadFile(name)
		ss, err := Parse("builtin:"+strings.TrimPrefix(name, "builtin/"), data)
		if err != nil {
			// The built-ins are compiled by every test run: this is a
			// build mistake, never input.
			panic(err)
		}
		out = append(out, ss...)
	}
	return out
})

// Builtin returns the built-in scenarios, compiled once. Each file under
// builtin/ documents its defaults; a scenario file loaded with the same
// name replaces a built-in (see Merge).
func Builtin() []*Scenario { return slices.Clone(builtins()) }

// BuiltinSource returns the YAML of the built-in scenario name, for
// showing and copying it.
func BuiltinSource(name string) ([]byte, bool) {
	data, err := builtinFS.ReadFile("builtin/" + name + ".yaml")
	return data, err == nil
}

// Merge returns base with each scenario of override replacing the one of
// the same name, or added after them: how loaded files replace or extend
// the built-ins.
func Merge(base, override []*Scenario) []*Scenario {
	out := slices.Clone(base)
	for _, s := range override {
		if i := slices.IndexFunc(out, func(o *Scenario) bool { return o.Name == s.Name }); i >= 0 {
			out[i] = s
		} else {
			out = append(out, s)
		}
	}
	return out
}
