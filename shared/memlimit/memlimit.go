// Package memlimit finds the memory limit of the instance the process
// runs in, and sets the Go runtime's soft memory limit below it, so that
// the collector works harder as the heap nears the limit instead of
// letting the instance be killed for memory.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// Limit is the instance's memory limit.
type Limit struct {
	Bytes  int64  // 0 when no limit is visible
	Source string // where it was read, for the log
}

// System is what Detect reads: the file system from its root, and the
// environment. Host is the real one; tests pass fixtures.
type System struct {
	FS     fs.FS
	Getenv func(string) string
}

// Host is the system the process runs on.
func Host() System { return System{FS: os.DirFS("/"), Getenv: os.Getenv} }

// noLimit is where a cgroup v1 limit stops meaning anything: v1 writes "no
// limit" as the largest page-aligned int64 (9223372036854771712), and no
// instance has 4 EiB.
const noLimit = 1 << 62

// Detect returns the tightest memory limit visible to the process, from
// every source that shows one:
//
//   - cgroup v2: memory.max of the process's own cgroup (named in
//     /proc/self/cgroup) and of each parent visible under /sys/fs/cgroup;
//     "max" is no limit;
//   - cgroup v1: memory.limit_in_bytes the same way, under
//     /sys/fs/cgroup/memory; a value past 2^62 is no limit;
//   - Cloud Functions 1st gen: FUNCTION_MEMORY_MB;
//   - Cloud Run (K_SERVICE set), which shows no cgroup limit: MemTotal in
//     /proc/meminfo. Its first generation (gVisor) reports the instance's
//     memory there, and its second is a microVM the size of the
//     instance. Elsewhere MemTotal is the machine's, not a limit.
//
// A source that is missing is skipped; one that is present but does not
// parse is an error, not a guess.
func Detect(sys System) (Limit, error) {
	var found []Limit
	for _, src := range []func(System) (Limit, error){cgroupV2, cgroupV1, functionMemory, cloudRunMemory} {
		l, err := src(sys)
		if err != nil {
			return Limit{}, err
		}
		if l.Bytes > 0 {
			found = append(found, l)
		}
	}
	var best Limit
	for _, l := range found {
		if best.Bytes == 0 || l.Bytes < best.Bytes {
			best = l
		}
	}
	return best, nil
}

// cgroupPath returns the path of the process's cgroup in the hierarchy
// whose /proc/self/cgroup line matches: "0::/path" for v2, or
// "N:…,memory,…:/path" for v1's memory controller.
func cgroupPath(fsys fs.FS, v2 bool) (string, bool) {
	data, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		return "", false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		id, rest, _ := strings.Cut(sc.Text(), ":")
		controllers, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		if v2 && id == "0" && controllers == "" {
			return p, true
		}
		if !v2 && id != "0" && slices.Contains(strings.Split(controllers, ","), "memory") {
			return p, true
		}
	}
	return "", false
}

// cgroupLimit reads file in the process's cgroup under mount and in each
// parent up to the mount's root, and returns the tightest limit. A
// container often sees its own cgroup at the root of the mount while
// /proc/self/cgroup names it by the host's path: the walk up reaches it.
func cgroupLimit(fsys fs.FS, mount, file string, v2 bool, parse func([]byte) (int64, error)) (Limit, error) {
	dir, ok := cgroupPath(fsys, v2)
	if !ok {
		dir = "/"
	}
	var best Limit
	for {
		name := path.Join(mount, dir, file)
		if fs.ValidPath(name) {
			data, err := fs.ReadFile(fsys, name)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return Limit{}, fmt.Errorf("read /%s: %w", name, err)
			default:
				n, err := parse(bytes.TrimSpace(data))
				if err != nil {
					return Limit{}, fmt.Errorf("/%s: %w", name, err)
				}
				if n > 0 && (best.Bytes == 0 || n < best.Bytes) {
					best = Limit{Bytes: n, Source: "/" + name}
				}
			}
		}
		if dir == "/" || dir == "." || dir == "" {
			return best, nil
		}
		dir = path.Dir(dir)
	}
}

func cgroupV2(sys System) (Limit, error) {
	return cgroupLimit(sys.FS, "sys/fs/cgroup", "memory.max", true, func(b []byte) (int64, error) {
		if string(b) == "max" {
			return 0, nil
		}
		return parseBytes(b)
	})
}

func cgroupV1(sys System) (Limit, error) {
	return cgroupLimit(sys.FS, "sys/fs/cgroup/memory", "memory.limit_in_bytes", false, func(b []byte) (int64, error) {
		n, err := parseBytes(b)
		if n >= noLimit {
			return 0, err
		}
		return n, err
	})
}

func parseBytes(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a number of bytes, found %q", truncate(b))
	}
	return n, nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

func functionMemory(sys System) (Limit, error) {
	v := strings.TrimSpace(sys.Getenv("FUNCTION_MEMORY_MB"))
	if v == "" {
		return Limit{}, nil
	}
	mb, err := strconv.ParseInt(v, 10, 64)
	if err != nil || mb <= 0 || mb > 1<<30 {
		return Limit{}, errors.New("environment variable FUNCTION_MEMORY_MB: want a whole number of MiB")
	}
	return Limit{Bytes: mb << 20, Source: "FUNCTION_MEMORY_MB"}, nil
}

func cloudRunMemory(sys System) (Limit, error) {
	if sys.Getenv("K_SERVICE") == "" {
		return Limit{}, nil
	}
	data, err := fs.ReadFile(sys.FS, "proc/meminfo")
	if errors.Is(err, fs.ErrNotExist) {
		return Limit{}, nil
	}
	if err != nil {
		return Limit{}, fmt.Errorf("read /proc/meminfo: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil || kb <= 0 {
			return Limit{}, fmt.Errorf("/proc/meminfo: MemTotal is not a number of kB: %q", truncate([]byte(rest)))
		}
		return Limit{Bytes: kb << 10, Source: "/proc/meminfo MemTotal (Cloud Run)"}, nil
	}
	return Limit{}, errors.New("/proc/meminfo has no MemTotal line")
}

// GoLimit is the Go runtime's soft memory limit for an instance limit:
// 90 % of it, and at least 16 MiB below it, for what the runtime's limit
// does not count (the binary's code, C allocations, the kernel's buffers
// for the instance's files and sockets).
func GoLimit(instance int64) int64 {
	reserve := max(instance/10, 16<<20)
	return max(instance-reserve, instance/2)
}

// Setting is what Configure did.
type Setting struct {
	Instance Limit // what Detect found
	// GoLimit is the runtime's soft memory limit now; math.MaxInt64 for
	// none.
	GoLimit int64
	// FromEnv: GOMEMLIMIT was set, and Configure left the runtime's limit
	// as the operator set it.
	FromEnv bool
}

// Configure sets the Go runtime's soft memory limit to GoLimit of the
// instance's limit, unless GOMEMLIMIT is set (an operator's choice
// stands) or no limit is visible. Call it once per process.
func Configure(sys System) (Setting, error) {
	current := debug.SetMemoryLimit(-1)
	if sys.Getenv("GOMEMLIMIT") != "" {
		return Setting{GoLimit: current, FromEnv: true}, nil
	}
	l, err := Detect(sys)
	if err != nil || l.Bytes == 0 {
		return Setting{GoLimit: current}, err
	}
	limit := GoLimit(l.Bytes)
	debug.SetMemoryLimit(limit)
	return Setting{Instance: l, GoLimit: limit}, nil
}

// None is the runtime's "no limit".
const None = math.MaxInt64
