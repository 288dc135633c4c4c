// Package benchcpu measures what a benchmark costs in CPU time: the
// process's user and system time, in all its threads (the collector's
// included). On a machine shared with other work it varies much less than
// the time on the clock, so ratios against a baseline hold.
//
//	start := benchcpu.Now()
//	for b.Loop() { … }
//	benchcpu.Report(b, start)
package benchcpu

import (
	"testing"
	"time"
)

// Report adds cpu-ns/op, the CPU time per operation since start.
func Report(b *testing.B, start time.Duration) float64 {
	if b.N == 0 {
		return 0
	}
	cpu := float64(Now()-start) / float64(b.N)
	b.ReportMetric(cpu, "cpu-ns/op")
	return cpu
}

// ReportRate adds cpu-ns/op and its inverse, unit/s/core: how many
// operations one core would do per second at that cost.
func ReportRate(b *testing.B, start time.Duration, unit string) {
	if cpu := Report(b, start); cpu > 0 {
		b.ReportMetric(1e9/cpu, unit+"/s/core")
	}
}

// Parallel runs op from 4 goroutines per processor (requests in flight
// on a server, more than its cores) for b.N calls in all, and returns the
// CPU time at its start, for Report or ReportRate.
func Parallel(b *testing.B, op func()) time.Duration {
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	start := Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op()
		}
	})
	return start
}
