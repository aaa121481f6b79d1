// Package fsguard guards file operations whose names carry untrusted input
// against path traversal.
//
// The structural fix for path traversal is os.Root (Go 1.24 and later):
// every operation through it stays beneath one directory, whatever the name
// says, symbolic links included. Use it. A [Guard] is bound to one directory,
// as an os.Root is, and performs its operations through an os.Root, so it
// cannot be led outside its directory, in monitor mode either. What fsguard
// adds is recognising the attack: the event names the input, the route, the
// actor and the line of code, and in block mode the call returns an error
// wrapping rampart.ErrBlocked so that the middleware answers 403.
//
//	files, err := fsguard.New(agent, "/srv/uploads") // once, at start-up
//	...
//	data, err := files.ReadFile(r.Context(), r.PathValue("name")) // was os.ReadFile, or root.ReadFile
//
// The Guard's methods mirror os.Root's (Open, Create, OpenFile, ReadFile,
// WriteFile, Stat, Remove, ReadDir) with a context first. [Guard.Check] is
// the check alone, for names handed to other APIs and for code that keeps
// os.Open(filepath.Join(base, name)): call files.Check(ctx, name), then
// os.Open(filepath.Join(files.Name(), name)).
//
// # What is blocked
//
// A name is refused only when an untrusted input of the context
// (rampart.Inputs: the request's parameters, path wildcards, JSON strings,
// cookies, headers, and values marked with rampart.WithUntrusted) occurs in
// it and that occurrence
//
//   - contributes a ".." segment that climbs above the base directory
//     ("../../etc/passwd", "a/../../x"), counted as filepath.Join counts:
//     "../uploads/x" is refused even though it comes back, because os.Root
//     refuses it and the kernel resolves it from wherever a link put the
//     base;
//   - makes the name absolute: a leading separator, or on Windows a volume
//     name ("/etc/passwd", `C:\Windows`);
//   - carries a NUL byte: Go refuses such names, but C code that receives
//     them stops at the NUL, the classic way to drop an extension that the
//     application appended;
//   - or leads outside the base through a symbolic link, resolved component
//     by component from the base as the kernel resolves it, and also after
//     filepath.Clean, as filepath.Join resolves it ("uploads/link/x" where
//     link points to /etc). Links in the part of the name that the
//     application wrote, before or after the input, are the application's
//     choice and are not held against the input; only an input that climbs
//     by ".." from where such a link put it is.
//
// Everything else is allowed, because it reaches nothing that the base does
// not already expose: dots in names ("report.v2.pdf", "..hidden", "...",
// "v1..v2"), spaces, unicode, emoji, nested directories, links that stay
// inside, and ".." that stays inside the base ("docs/../readme.txt"). The
// base is the boundary the application declared, the same one os.Root
// enforces; give a part of the tree that must stay out of reach its own
// Guard.
// A backslash is an ordinary file name character where it is not a
// separator, so `..\..\x` is a file name on Linux and an attack on Windows.
//
// # How input is recognised
//
// An input counts when it occurs in the name as received, or in a form the
// application may have made of it: trimmed of white space; percent-decoded
// up to three times (a double-encoded "..%252f" becomes "../" when the
// application decodes the already decoded value); normalised with NFKC
// (golang.org/x/text/unicode/norm: "‥" U+2025 becomes "..", "／" U+FF0F
// "/", "ｅｔｃ" "etc"); with backslashes read as slashes; and combinations of
// these. The forms only establish where the name came from: what is judged
// is always the name that the call received, so a form the application did
// not make never causes a block.
//
// When the application transformed the input otherwise, no form occurs. A
// name that climbs above the base is then attributed to an input that
// itself climbs above its start: untrusted input with such a ".." is not a
// file name, whatever the application did to it next (path.Join("docs",
// input), strings.ToLower). What path cleaning leaves of an input is also
// checked for links. An absolute name is attributed only to an input that is
// the same path, up to case. Other transformations (base64, a database round
// trip) are not followed: a Guard still refuses the escape through os.Root,
// but nothing is reported. Inputs shorter than two bytes are ignored.
//
// # Cost
//
// A Guard operation whose name has no NUL byte, no leading separator or volume
// name and no two dots in a row costs a scan of the name on top of
// os.Root's work: inputs are looked at only when the name has one of these,
// or when the operation fails (then for links, since os.Root does not say
// why it refused). Check costs one substring search per input when none
// occurs in the name, and one os.Lstat per path component of an input that
// does. BENCHMARKS.md has the figures.
package fsguard
