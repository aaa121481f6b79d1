package fsguard

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// rootLen returns the length of name's volume name and leading separator:
// the part that makes it absolute ("/" on Unix; "C:\", "C:", "\" or
// "\\host\share\" on Windows), 0 for a relative name.
func rootLen(name string) int {
	n := len(filepath.VolumeName(name))
	if n < len(name) && os.IsPathSeparator(name[n]) {
		n++
	}
	return n
}

// suspicious reports whether name could leave its base without the help of
// a symbolic link: it has a NUL byte, is absolute, or has two dots in a row
// (a superset of having a ".." segment). Most names have none of these, and
// for them no input needs to be looked at before os.Root does its part.
func suspicious(name string) bool {
	return strings.IndexByte(name, 0) >= 0 || rootLen(name) > 0 || strings.Contains(name, "..")
}

// climbs walks the segments of a relative name from its base and returns how
// many directories above the base it reaches at most (0 when it stays
// inside), and whether one of the ".." segments that reached a new height
// overlaps [start,end). This is what filepath.Join(base, name) does to the
// name before the kernel sees it, and what os.Root refuses.
func climbs(name string, start, end int) (levels int, overlaps bool) {
	if rootLen(name) > 0 {
		return 0, false
	}
	depth, lowest := 0, 0
	for i := 0; i <= len(name); {
		j := i
		for j < len(name) && !os.IsPathSeparator(name[j]) {
			j++
		}
		switch seg := name[i:j]; seg {
		case "", ".":
		case "..":
			depth--
			if depth < lowest {
				lowest = depth
				if i < end && j > start {
					overlaps = true
				}
			}
		default:
			depth++
		}
		i = j + 1
	}
	return -lowest, overlaps
}

func climbReason(levels int) string {
	if levels == 1 {
		return "input climbs 1 directory above the base"
	}
	return "input climbs " + strconv.Itoa(levels) + " directories above the base"
}

// lexical returns why the occurrence [start,end) of an input makes name
// leave its base, judging by the name alone, or "" if it does not.
func lexical(name string, start, end int) string {
	if strings.IndexByte(name[start:end], 0) >= 0 {
		return "input carries a NUL byte"
	}
	if n := rootLen(name); n > 0 && start < n {
		return "input makes the path absolute"
	}
	if levels, overlaps := climbs(name, start, end); overlaps {
		return climbReason(levels)
	}
	return ""
}

// cleanedAway reports whether an input form f explains a name that leaves
// its base although f does not occur in it: the application cleaned the path
// (path.Join("uploads", f), filepath.Clean) and so spent some of f's ".."
// segments, or cleaned an absolute f. What f leads to once its ".." are
// spent must still end the name.
func cleanedAway(cleanName, f string) bool {
	if n := rootLen(f); n > 0 {
		if rootLen(cleanName) > 0 {
			return filepath.Clean(f) == cleanName
		}
		f = relative(f)
	}
	if levels, _ := climbs(f, 0, len(f)); levels == 0 {
		return false
	}
	tail := cleanedTail(f)
	if tail == "" {
		return true
	}
	return strings.HasSuffix(cleanName, tail) && len(cleanName) > len(tail) && os.IsPathSeparator(cleanName[len(cleanName)-len(tail)-1])
}

// cleanedTail returns what filepath.Clean leaves of f, joined under a
// directory, once its leading ".." segments are spent: "a/../../etc/passwd"
// and "/../etc/passwd" give "etc/passwd". It is "" when nothing is left.
func cleanedTail(f string) string {
	tail := filepath.Clean(relative(f))
	for {
		rest, ok := strings.CutPrefix(tail, "..")
		if !ok || rest != "" && !os.IsPathSeparator(rest[0]) {
			break
		}
		tail = trimSeparators(rest)
	}
	if tail == "." {
		return ""
	}
	return tail
}

// relative is f joined under a directory: without its volume name and
// leading separators.
func relative(f string) string {
	return trimSeparators(f[len(filepath.VolumeName(f)):])
}

func trimSeparators(s string) string {
	for s != "" && os.IsPathSeparator(s[0]) {
		s = s[1:]
	}
	return s
}

// within reports whether the clean path p is dir or beneath it.
func within(p, dir string) bool {
	if !strings.HasPrefix(p, dir) {
		return false
	}
	return len(p) == len(dir) || os.IsPathSeparator(dir[len(dir)-1]) || os.IsPathSeparator(p[len(dir)])
}

// maxLinks bounds the symbolic links one resolution follows, as the kernel
// does (40 on Linux); past it the operation fails with ELOOP anyway.
const maxLinks = 40

var errTooManyLinks = errors.New("fsguard: too many levels of symbolic links")

// walk resolves name from the directory dir the way the kernel does:
// component by component, following every symbolic link, so that "link/.."
// is the parent of the link's target. Past the first component that does not
// exist it goes on lexically, as filepath.Join would. It returns the path,
// the last symbolic link followed ("" if none) and whether any link was met.
func walk(dir, name string, links *int) (dest, lastLink string, err error) {
	dest = dir
	missing := false
	rest := name
	for rest != "" {
		i := 0
		for i < len(rest) && !os.IsPathSeparator(rest[i]) {
			i++
		}
		comp := rest[:i]
		if i < len(rest) {
			i++
		}
		rest = rest[i:]
		switch comp {
		case "", ".":
			continue
		case "..":
			dest = filepath.Dir(dest)
			continue
		}
		next := dest + string(filepath.Separator) + comp
		if os.IsPathSeparator(dest[len(dest)-1]) {
			next = dest + comp
		}
		if missing {
			dest = next
			continue
		}
		fi, err := os.Lstat(next)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			missing = err != nil
			dest = next
			continue
		}
		if *links++; *links > maxLinks {
			return "", "", errTooManyLinks
		}
		target, err := os.Readlink(next)
		if err != nil {
			missing = true
			dest = next
			continue
		}
		lastLink = next
		if n := rootLen(target); n > 0 {
			vol := filepath.VolumeName(target)
			if vol == "" {
				vol = filepath.VolumeName(dest)
			}
			dest = vol + string(filepath.Separator)
			target = target[n:]
		}
		rest = target + string(filepath.Separator) + rest
	}
	return dest, lastLink, nil
}

// viaLinks returns why an input whose occurrence spans the path components
// name[cs:ce] makes name, resolved from the directory real (free of symbolic
// links), lead outside it through a symbolic link, and where it leads; "" if
// it does not. It also reports whether any link was met.
//
// Only the input's own components count: what the application wrote before
// them is its choice (when that part already leads outside through a link,
// the input is judged against where it leads), and so is what it appends
// after them ("users/{name}/avatar" with avatar a link to shared storage).
// The input leaves through a link of its own, or by ".." once a link of the
// application's part has put it somewhere shallower than the text says.
//
// The name is resolved the way the kernel does (code that concatenates, and
// os.Root) and, when it has "..", once more after filepath.Clean (code that
// joins): "dir/../link" is "link" for filepath.Join but the parent of dir's
// target for the kernel, and either may be the one that leads outside.
func viaLinks(real, name string, cs, ce int) (reason, resolved string, met bool) {
	if !strings.Contains(name[:ce], "..") && !linkAmong(real, name, cs, ce) {
		// The input only goes down from where the application put it,
		// through no link: it cannot lead anywhere the application's part
		// does not.
		return "", "", false
	}
	n := 0
	from, _, err := walk(real, name[:cs], &n)
	if err != nil {
		return "", "", true
	}
	boundary := real
	if !within(from, real) {
		boundary = from
	}
	// Without a link of its own, the input can still climb out by ".."
	// once a link of the application's part has moved it elsewhere.
	final, link, err := walk(from, name[cs:ce], &n)
	if err == nil && !within(final, boundary) {
		return outsideReason(real, link), final, true
	}
	if boundary == real && strings.Contains(name[:ce], "..") {
		m := 0
		final, link, err = walk(real, filepath.Clean(name[:ce]), &m)
		n += m
		if err == nil && link != "" && !within(final, real) {
			return outsideReason(real, link), final, true
		}
	}
	return "", final, n > 0
}

// linkAmong reports whether one of the components of name between cs and ce
// (the input's) is a symbolic link, looking each up from dir with os.Lstat,
// which resolves the components before it as the kernel does. It stops at
// the first component that does not exist.
func linkAmong(dir, name string, cs, ce int) bool {
	for i := cs; i < ce; {
		j := i
		for j < ce && !os.IsPathSeparator(name[j]) {
			j++
		}
		if comp := name[i:j]; comp != "" && comp != "." {
			fi, err := os.Lstat(dir + string(filepath.Separator) + name[:j])
			if err != nil {
				return false
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				return true
			}
		}
		i = j + 1
	}
	return false
}

func outsideReason(real, link string) string {
	if link == "" {
		return "input climbs out of the base once symbolic links are resolved"
	}
	shown := link
	if rel, err := filepath.Rel(real, link); err == nil && !strings.HasPrefix(rel, "..") {
		shown = rel
	}
	return "input leads outside the base through the symbolic link " + strconv.Quote(shown)
}
