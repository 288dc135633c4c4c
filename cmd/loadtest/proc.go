package main

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: the kernel
// reports them in USER_HZ ticks, which is 100 on every Linux architecture
// that Go supports (it is part of the ABI, unlike the kernel's HZ).
const userHZ = 100

// cpuTime parses /proc/<pid>/stat and returns the CPU time that the
// process has used, in user and kernel mode together, over all its
// threads (utime + stime, fields 14 and 15; proc(5)).
func cpuTime(stat []byte) (time.Duration, error) {
	// Field 2, the command, is in parentheses and may hold spaces and
	// parentheses itself: the fields that follow start after the last ")".
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc stat: no command field in %q", stat)
	}
	f := strings.Fields(string(stat[end+1:]))
	// After the command: state is field 3, so utime (14) is f[11] and
	// stime (15) is f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("/proc stat: CPU time %q is not a tick count", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// processCPU reads the CPU time that process pid has used so far.
func processCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return cpuTime(stat)
}

// schedCPU parses a /proc/<pid>/task/<tid>/schedstat line: the thread's
// time on a CPU, in nanoseconds, is its first field (the kernel's
// Documentation/scheduler/sched-stats.rst). /proc/<pid>/stat counts in
// ticks of 10 ms, too coarse for a cold start of a few milliseconds.
func schedCPU(schedstat []byte) (time.Duration, error) {
	f := strings.Fields(string(schedstat))
	if len(f) != 3 {
		return 0, fmt.Errorf("schedstat: %q is not three numbers", schedstat)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || ns < 0 {
		return 0, fmt.Errorf("schedstat: %q is no time on a CPU", f[0])
	}
	return time.Duration(ns), nil
}

// threadsCPU is the CPU time of all the threads of process pid, to the
// nanosecond (Go's threads do not exit, so none is missed).
func threadsCPU(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			return 0, err
		}
		d, err := schedCPU(data)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// memory is what /proc/<pid>/status says of a process's resident memory.
type memory struct {
	RSS  int64 // VmRSS: resident now, in bytes
	Peak int64 // VmHWM: the most it was ever resident, in bytes
}

// parseStatus reads VmRSS and VmHWM from /proc/<pid>/status (in kB, that
// is KiB: proc(5)).
func parseStatus(status []byte) (memory, error) {
	var m memory
	var seen int
	for _, line := range strings.Split(string(status), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("/proc status: %s is %q, want a count of kB", name, strings.TrimSpace(value))
		}
		kib, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc status: %s: %w", name, err)
		}
		if name == "VmRSS" {
			m.RSS = kib << 10
		} else {
			m.Peak = kib << 10
		}
		seen++
	}
	if seen != 2 {
		return m, fmt.Errorf("/proc status: no VmRSS and VmHWM (a kernel thread, or a process that has exited)")
	}
	return m, nil
}

// processMemory reads the resident memory of process pid.
func processMemory(pid int) (memory, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	return parseStatus(status)
}

// initLine is one package's init in a GODEBUG=inittrace=1 trace.
type initLine struct {
	Package string
	Clock   time.Duration
}

// parseInitTrace reads what GODEBUG=inittrace=1 wrote to a process's
// standard error: one line per package whose init ran, such as
//
//	init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs
//
// and returns those packages, the slowest first. Other lines (the
// process's own) are skipped.
func parseInitTrace(stderr []byte) []initLine {
	var out []initLine
	for _, line := range strings.Split(string(stderr), "\n") {
		f := strings.Fields(line)
		// init PKG @T ms, C ms clock, B bytes, A allocs
		if len(f) < 7 || f[0] != "init" || !strings.HasPrefix(f[2], "@") || f[5] != "ms" || f[6] != "clock," {
			continue
		}
		ms, err := strconv.ParseFloat(f[4], 64)
		if err != nil || ms < 0 {
			continue
		}
		out = append(out, initLine{Package: f[1], Clock: time.Duration(ms * float64(time.Millisecond))})
	}
	slices.SortStableFunc(out, func(a, b initLine) int { return cmp.Compare(b.Clock, a.Clock) })
	return out
}
