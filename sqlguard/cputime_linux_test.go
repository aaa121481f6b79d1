//go:build linux

package sqlguard_test

import (
	"runtime"
	"syscall"
	"time"
)

// threadCPU returns the CPU time that f spends on the calling goroutine,
// locked to its thread for the call: the work f does, which neither a busy
// machine nor the other goroutines of the test change. ok is false where
// it cannot be measured.
func threadCPU(f func()) (d time.Duration, ok bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_THREAD, &before) != nil {
		f()
		return 0, false
	}
	f()
	if syscall.Getrusage(syscall.RUSAGE_THREAD, &after) != nil {
		return 0, false
	}
	return cpu(&after) - cpu(&before), true
}

// processCPU returns the CPU time the process has used so far.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return cpu(&ru), true
}

func cpu(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
