package memlimit

import (
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

// fixture is the system of testdata/name, with env as its environment.
func fixture(name string, env map[string]string) System {
	return System{FS: os.DirFS("testdata/" + name), Getenv: func(k string) string { return env[k] }}
}

const mib = 1 << 20

func TestDetect(t *testing.T) {
	cloudRun := map[string]string{"K_SERVICE": "login"}
	tests := []struct {
		name       string
		fixture    string
		env        map[string]string
		want       int64
		wantSource string
	}{
		{"cgroup v2, the container's own", "v2", nil, 512 * mib, "/sys/fs/cgroup/memory.max"},
		{"cgroup v2, a parent's is tighter than the leaf's max", "v2-parent", nil, 256 * mib, "/sys/fs/cgroup/kubepods/pod1/memory.max"},
		{"cgroup v2, max is no limit", "v2-unlimited", nil, 0, ""},
		{"cgroup v1, host path not mounted: the mount's root", "v1", nil, 512 * mib, "/sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"cgroup v1, memory among other controllers", "v1-combined", nil, 384 * mib, "/sys/fs/cgroup/memory/job/memory.limit_in_bytes"},
		{"cgroup v1, the huge unlimited value", "v1-unlimited", nil, 0, ""},
		{"no cgroup files: no limit, whatever MemTotal says", "missing", nil, 0, ""},
		{"Cloud Functions 1st gen", "missing", map[string]string{"FUNCTION_MEMORY_MB": "256"}, 256 * mib, "FUNCTION_MEMORY_MB"},
		{"Cloud Run: MemTotal is the instance", "cloudrun", cloudRun, 512 * mib, "/proc/meminfo MemTotal (Cloud Run)"},
		{"Cloud Run beside a tighter cgroup limit", "v2-parent", cloudRun, 256 * mib, "/sys/fs/cgroup/kubepods/pod1/memory.max"},
		{"the tightest of several", "v1", map[string]string{"FUNCTION_MEMORY_MB": "128"}, 128 * mib, "FUNCTION_MEMORY_MB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(fixture(tt.fixture, tt.env))
			if err != nil || got.Bytes != tt.want || got.Source != tt.wantSource {
				t.Fatalf("Detect = %+v, %v; want %d bytes from %q", got, err, tt.want, tt.wantSource)
			}
		})
	}
}

func TestDetect_GarbageIsAnErrorNotAGuess(t *testing.T) {
	tests := []struct {
		name, fixture string
		env           map[string]string
		wantInErr     string
	}{
		{"cgroup v2", "garbage-v2", nil, "/sys/fs/cgroup/memory.max"},
		{"cgroup v1, negative", "garbage-v1", nil, "/sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"FUNCTION_MEMORY_MB", "missing", map[string]string{"FUNCTION_MEMORY_MB": "lots"}, "FUNCTION_MEMORY_MB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(fixture(tt.fixture, tt.env))
			if err == nil || got.Bytes != 0 || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("Detect = %+v, %v; want no limit and an error naming %s", got, err, tt.wantInErr)
			}
		})
	}
}

func TestGoLimit_LeavesRoomOutsideTheHeap(t *testing.T) {
	tests := []struct{ instance, want int64 }{
		{512 * mib, 512*mib - 512*mib/10}, // 90 %
		{2048 * mib, 2048*mib - 2048*mib/10},
		{128 * mib, 112 * mib}, // at least 16 MiB below
		{24 * mib, 12 * mib},   // never below half
	}
	for _, tt := range tests {
		if got := GoLimit(tt.instance); got != tt.want {
			t.Errorf("GoLimit(%d MiB) = %d, want %d", tt.instance/mib, got, tt.want)
		}
	}
}

// Configure changes the process's limit: each case puts it back.
func TestConfigure(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	s, err := Configure(fixture("v2", nil))
	if err != nil || s.GoLimit != GoLimit(512*mib) || s.Instance.Bytes != 512*mib || debug.SetMemoryLimit(-1) != GoLimit(512*mib) {
		t.Fatalf("Configure under a 512 MiB cgroup = %+v, %v; runtime limit %d", s, err, debug.SetMemoryLimit(-1))
	}

	debug.SetMemoryLimit(300 * mib) // as GOMEMLIMIT=300MiB would at start
	s, err = Configure(fixture("v2", map[string]string{"GOMEMLIMIT": "300MiB"}))
	if err != nil || !s.FromEnv || s.GoLimit != 300*mib || debug.SetMemoryLimit(-1) != 300*mib {
		t.Fatalf("Configure with GOMEMLIMIT set = %+v, %v; want the operator's limit left alone", s, err)
	}

	debug.SetMemoryLimit(None)
	for _, name := range []string{"v1-unlimited", "garbage-v2"} {
		s, err = Configure(fixture(name, nil))
		if s.GoLimit != None || debug.SetMemoryLimit(-1) != None {
			t.Fatalf("Configure(%s) = %+v, %v; want no limit set", name, s, err)
		}
	}
}

func TestDetect_ThisMachine(t *testing.T) {
	// Whatever the machine, detection must not fail on its real files.
	if _, err := Detect(Host()); err != nil {
		t.Fatalf("Detect(Host()) = %v", err)
	}
}
