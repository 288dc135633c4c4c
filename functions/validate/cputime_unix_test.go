//go:build unix

package validate

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time this process has used so far, user and
// system, in all its threads (the collector's included).
func cpuTime() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// reportCPU adds cpu-ns/op, the CPU time per operation since start: on a
// machine shared with other work it varies much less than the time on
// the clock, and it counts the collector's work on other threads.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}
