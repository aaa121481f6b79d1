//go:build !amd64 && !arm64

package goroutine

import "runtime"

// id parses the goroutine number from the header of runtime.Stack ("goroutine
// 42 [running]:"). It costs about a microsecond, so the assembly version is
// used where one exists.
func id() uintptr {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	const prefix = "goroutine "
	var v uintptr
	for _, c := range buf[len(prefix):n] {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + uintptr(c-'0')
	}
	return v
}
