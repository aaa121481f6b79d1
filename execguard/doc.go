// Package execguard blocks command injection at the exec call, with no false
// positives on input that stays one argument.
//
// Build commands through the guard instead of os/exec; the call has
// exec.CommandContext's shape, so switching is a mechanical edit:
//
//	guard, err := execguard.New(agent)
//	...
//	cmd := guard.CommandContext(ctx, "sh", "-c", "convert "+name+" out.png") // was exec.CommandContext
//	out, err := cmd.Output()
//	if errors.Is(err, rampart.ErrBlocked) { ... }
//
// [Guard.CommandContext] returns exec.CommandContext's Cmd. When the command
// line would let an untrusted input inject, the event is reported and, in
// block mode, the Cmd's Err field holds an error wrapping
// rampart.ErrBlocked: Start, Run, Output and CombinedOutput return it and
// nothing runs, as they return a program that exec.LookPath did not find.
// In monitor mode the command runs and the event is only reported.
// [Guard.Check] checks a command line built some other way. The untrusted
// inputs come from the context (see rampart.Inputs): the request that
// rampart's middleware is serving, or what a queue worker marked with
// rampart.WithUntrusted.
//
// # Shell scripts
//
// When the program is a shell (sh, bash, dash, zsh, ash, ksh, mksh, yash,
// posh, by base name, so /bin/sh too) given -c (alone or in a group such as
// -lc or -ec), its script is lexed as POSIX shell, and so are the arguments
// of eval and the remote command of ssh: words with their single
// and double quotes, $'...', backslash escapes, operators, comments, $( ) and
// backquote substitutions (nested), parameter and arithmetic expansions,
// globs, brace and tilde expansion, here-documents. Each byte gets a class:
// text of a word, a quote, or syntax. An input occurring in the script is an
// injection when
//
//   - any of its bytes is syntax: a blank that starts another argument, a
//     newline, ; & | && || ( ), a redirection or here-document, a comment, an
//     expansion ($x, ${x}, $(...), `...`, $((...)), <(...)), an unquoted
//     glob, brace or tilde — inside double quotes $ and ` still expand, so an
//     input adding them there is an injection too;
//   - the rest of the script does not read the same as it does with plain
//     letters in the input's place: the input closes a quote, opens one, or
//     ends with a backslash that escapes what follows it;
//   - the word holding it names the program (see below) or is an option
//     (see below), or is itself a script: the script of a nested sh -c or
//     the arguments of eval are checked in turn, as the inner shell reads
//     them once the outer one has removed its quotes. An input quoted for
//     the outer shell alone (eval printf %s 'input') is found there too.
//
// An input wholly inside one word with no expansion is data: correctly
// single-quoted text (each quote in it written as a quote, a backslash and
// two quotes, as in the first line below), text inside double quotes with no
// $ or `, a plain word such as report-2024.pdf, a line of a here-document.
// The arguments after the script ($0, $1, ...) are data too, which makes
// the second line the safe way to pass input to a script:
//
//	guard.CommandContext(ctx, "sh", "-c", `printf %s 'it'\''s fine'`)
//	guard.CommandContext(ctx, "sh", "-c", `convert "$1" out.png`, "sh", name)
//
// Even there, the guard follows $1 (and $@, $*) into the script: it is an
// injection when the script runs it as code (eval "$1", sh -c "ls $1"),
// as the program ("$1" file), or hands it to a program that reads options
// while the input starts with a dash (see Options).
//
// # Options
//
// An argument that starts with a dash is an option injection when the dash
// came from an input: the argument is the input, or starts with it
// ("--upload-pack=touch x"), or the input starts with a dash and only dashes
// precede it ("-" + "-output=x"). Options the program reads from input can
// run commands (git --upload-pack, tar --to-command, ssh -oProxyCommand, find
// -exec) or write files (sort -o, git log --output, curl -o). Arguments after
// a "--" argument are operands and are never options, and a negative number
// (convert -rotate -90) is taken for a value. Words of an input that
// the application split into several arguments (strings.Fields) count as
// coming from the input when a neighbouring argument holds the neighbouring
// word. The same rule applies to the words of a shell script, except for
// echo, whose options only change how it prints, and printf after its format.
//
// # Program names
//
// An input that is the whole program name — the name passed to
// CommandContext, the command word of a script, the command that env, sudo, nice, timeout,
// nohup, setsid, stdbuf, chroot or busybox run — is an injection, and so is
// an input with a slash in a program name (it can walk to another program).
// An input that is only part of a name ("convert-" + format) is allowed.
//
// # Limits
//
// Inputs shorter than two bytes are not considered (a lone * that an
// application appends to a path in a script is not seen). Input that is by
// chance a whole program name or option that the application wrote itself is
// refused, since the guard cannot tell who wrote it: a client that sends
// format=tar to a service that, having checked the value, runs tar; "-l"
// while the service runs ls -l. Naming programs by absolute path
// (/usr/bin/tar) avoids the first: an input equal to the base name is then
// only part of the name. A script that
// works only when its input brings a quote (the application relies on the
// input to close the quote it opened) is not analysed as such: that input
// is code by design. An input inside a parameter expansion the
// application wrote (${x:-input}) or in an arithmetic expression other than
// as a number or name is refused. Shells other than POSIX ones (fish,
// cmd.exe, PowerShell), zsh-only expansions (=cmd, extended globs), commands
// that a program runs from other arguments (find -exec, xargs, git -c,
// su -c) and scripts read from files or standard input are not lexed; their
// arguments are checked for options and program names only. As with every
// guard, an application that transforms input before using it (other than
// trimming white space) hides it from the guard.
package execguard
