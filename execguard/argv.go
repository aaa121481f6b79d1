package execguard

import (
	"slices"
	"strings"
)

// slotKind says how the programs of a command line read one of its words.
type slotKind uint8

const (
	slotArg     slotKind = iota // an argument the program may read as an option
	slotProgram                 // the program to run: argv[0], or the command a wrapper runs
	slotOperand                 // after "--": never an option
	slotScript                  // shell code: sh -c's script, eval's arguments, ssh's remote command
	slotData                    // handed on as data: sh -c's $0 $1..., env's NAME=VALUE, echo's words
)

// slot is what analyze says about one word of argv.
type slot struct {
	kind slotKind
	prog int // index in argv of the program that reads this word
	// script is, for slotScript, the index of the script's first word: eval
	// and ssh join their words with spaces into one script. For slotData of
	// a shell, it is the index of the script whose positional parameter
	// this is, or -1.
	script int
	param  int // that positional parameter's number ($0 is 0)
}

// maxHops bounds how many wrappers (env, sudo, nice...) analyze follows.
const maxHops = 8

// analyze says how each word of argv (argv[0] is the program) is read: it
// knows how shells take -c, how wrappers such as env and sudo find the
// command they run, and that "--" ends options.
func analyze(argv []string) []slot {
	slots := make([]slot, len(argv))
	for i := range slots {
		slots[i].script = -1
	}
	if len(argv) > 0 {
		program(argv, slots, 0, 0)
	}
	return slots
}

// baseName returns the last element of a slash-separated path.
func baseName(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}

// shells are the programs whose -c argument is a POSIX shell script.
var shells = []string{"sh", "bash", "dash", "zsh", "ash", "ksh", "mksh", "pdksh", "ksh93", "yash", "posh", "rbash"}

func isShell(base string) bool { return slices.Contains(shells, base) }

// wrapper describes a program that runs another command given after its own
// options and operands.
type wrapper struct {
	valueOpts  string   // short options that take a value
	longValue  []string // long options that take the next word as their value
	scriptOpts string   // short options whose value is a command line (env -S)
	operands   int      // operands before the command (timeout's duration, chroot's root)
	assigns    bool     // NAME=VALUE words before the command (env)
}

var wrappers = map[string]wrapper{
	"env":     {valueOpts: "uCS", scriptOpts: "S", longValue: []string{"--unset", "--chdir", "--split-string"}, assigns: true},
	"nice":    {valueOpts: "n", longValue: []string{"--adjustment"}},
	"nohup":   {},
	"setsid":  {},
	"stdbuf":  {valueOpts: "ioe", longValue: []string{"--input", "--output", "--error"}},
	"timeout": {valueOpts: "ks", longValue: []string{"--kill-after", "--signal"}, operands: 1},
	"time":    {valueOpts: "fo", longValue: []string{"--format", "--output"}},
	"sudo":    {valueOpts: "CDghpRrTtUu", longValue: []string{"--close-from", "--chdir", "--group", "--host", "--prompt", "--role", "--type", "--command-timeout", "--other-user", "--user"}},
	"doas":    {valueOpts: "Cu"},
	"chroot":  {longValue: []string{"--groups", "--userspec"}, operands: 1},
	"exec":    {valueOpts: "a"},
	"command": {},
	"builtin": {},
}

// program fills the slots of the words after argv[p], the program.
func program(argv []string, slots []slot, p, hops int) {
	slots[p].kind = slotProgram
	base := baseName(argv[p])
	if base == "busybox" && p+1 < len(argv) && hops < maxHops {
		program(argv, slots, p+1, hops+1)
		return
	}
	set := func(q int, k slotKind) {
		slots[q].kind, slots[q].prog = k, p
		if k == slotScript {
			slots[q].script = q
		}
	}
	switch base {
	case "eval":
		for q := p + 1; q < len(argv); q++ {
			set(q, slotScript)
			slots[q].script = p + 1
		}
		return
	case "echo": // its options (-n -e -E) only change how it prints
		for q := p + 1; q < len(argv); q++ {
			set(q, slotData)
		}
		return
	case "printf": // options come before the format; the format and what follows are data
		q := p + 1
		for ; q < len(argv) && len(argv[q]) > 1 && argv[q][0] == '-'; q++ {
			set(q, slotArg)
			if argv[q] == "--" {
				q++
				break
			}
			if argv[q] == "-v" && q+1 < len(argv) {
				q++
				set(q, slotArg)
			}
		}
		for ; q < len(argv); q++ {
			set(q, slotData)
		}
		return
	case "ssh":
		sshCommand(argv, slots, p)
		return
	}
	if isShell(base) {
		shellCommand(argv, slots, p)
		return
	}
	if w, ok := wrappers[base]; ok && hops < maxHops {
		if q := w.command(argv, set, p); q < len(argv) {
			program(argv, slots, q, hops+1)
		}
		return
	}
	dashdash := false
	for q := p + 1; q < len(argv); q++ {
		if dashdash {
			set(q, slotOperand)
			continue
		}
		set(q, slotArg)
		dashdash = argv[q] == "--"
	}
}

// command marks the wrapper's own words and returns the index of the
// program it runs (len(argv) if none).
func (w wrapper) command(argv []string, set func(int, slotKind), p int) int {
	operands := w.operands
	q := p + 1
	for q < len(argv) {
		a := argv[q]
		switch {
		case a == "--":
			set(q, slotArg)
			return q + 1
		case len(a) > 1 && a[0] == '-':
			set(q, slotArg)
			if strings.HasPrefix(a, "--") {
				if !strings.Contains(a, "=") && slices.Contains(w.longValue, a) && q+1 < len(argv) {
					q++
					set(q, slotArg)
					if a == "--split-string" {
						set(q, slotScript)
					}
				}
				if v, ok := strings.CutPrefix(a, "--split-string="); ok && v != "" {
					set(q, slotScript)
				}
				q++
				continue
			}
			for k := 1; k < len(a); k++ {
				if strings.IndexByte(w.valueOpts, a[k]) < 0 {
					continue
				}
				kind := slotArg
				if strings.IndexByte(w.scriptOpts, a[k]) >= 0 {
					kind = slotScript
				}
				if k == len(a)-1 {
					if q+1 < len(argv) {
						q++
						set(q, kind)
					}
				} else if kind == slotScript {
					set(q, kind)
				}
				break
			}
			q++
		case w.assigns && isEnvAssignment(a):
			set(q, slotData)
			q++
		case operands > 0:
			set(q, slotArg)
			operands--
			q++
		default:
			return q
		}
	}
	return q
}

func isEnvAssignment(a string) bool {
	i := strings.IndexByte(a, '=')
	return i > 0
}

// shellCommand marks a shell's words: its options, and with -c the script
// and the positional parameters that follow it.
func shellCommand(argv []string, slots []slot, p int) {
	set := func(q int, k slotKind) { slots[q].kind, slots[q].prog, slots[q].script = k, p, q }
	cflag := false
	q := p + 1
	for q < len(argv) {
		a := argv[q]
		if a == "--" || a == "-" {
			set(q, slotArg)
			q++
			break
		}
		if len(a) < 2 || a[0] != '-' && a[0] != '+' {
			break
		}
		set(q, slotArg)
		q++
		if strings.HasPrefix(a, "--") { // bash's long options
			if (a == "--rcfile" || a == "--init-file") && q < len(argv) {
				set(q, slotArg)
				q++
			}
			continue
		}
		values := 0
		for k := 1; k < len(a); k++ {
			switch a[k] {
			case 'c':
				cflag = cflag || a[0] == '-'
			case 'o', 'O':
				values++
			}
		}
		for ; values > 0 && q < len(argv); values-- {
			set(q, slotArg)
			q++
		}
	}
	if q >= len(argv) {
		return
	}
	if cflag {
		set(q, slotScript)
	} else {
		set(q, slotArg) // a script file
	}
	for r := q + 1; r < len(argv); r++ {
		set(r, slotData)
		slots[r].script, slots[r].param = -1, r-q-1
		if cflag {
			slots[r].script = q
		}
	}
}

// sshCommand marks ssh's words: options, the destination, and the remote
// command, which the remote user's shell runs.
func sshCommand(argv []string, slots []slot, p int) {
	set := func(q int, k slotKind) { slots[q].kind, slots[q].prog, slots[q].script = k, p, -1 }
	q := p + 1
	for q < len(argv) {
		a := argv[q]
		if a == "--" {
			set(q, slotArg)
			q++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		set(q, slotArg)
		q++
		if k := strings.IndexAny(a[1:], "BbcDEeFIiJLlmOoPpQRSWw"); k >= 0 && k+2 == len(a) && q < len(argv) {
			set(q, slotArg) // the option's value is the next word
			q++
		}
	}
	if q < len(argv) {
		set(q, slotArg) // the destination
	}
	for r := q + 1; r < len(argv); r++ {
		set(r, slotScript)
		slots[r].script = q + 1
	}
}

// scriptOf returns the script that word i (a slotScript) belongs to, and
// the offset of word i in it.
func scriptOf(argv []string, slots []slot, i int) (string, int) {
	first := slots[i].script
	last := first
	for last+1 < len(argv) && slots[last+1].kind == slotScript && slots[last+1].script == first {
		last++
	}
	if first == last {
		return argv[i], 0
	}
	off := 0
	for k := first; k < i; k++ {
		off += len(argv[k]) + 1
	}
	return strings.Join(argv[first:last+1], " "), off
}
