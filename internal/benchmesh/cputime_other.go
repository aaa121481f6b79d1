//go:build !unix

package benchmesh

import "time"

// cpuTime returns -1: the CPU time is not measured on this system.
func cpuTime() time.Duration { return -1 }
