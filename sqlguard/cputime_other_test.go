//go:build !linux

package sqlguard_test

import "time"

// threadCPU runs f; the CPU time of one thread is measured on Linux only.
func threadCPU(f func()) (time.Duration, bool) {
	f()
	return 0, false
}

// processCPU is measured on Linux only.
func processCPU() (time.Duration, bool) { return 0, false }
