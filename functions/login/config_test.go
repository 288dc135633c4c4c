package login

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/memlimit"
)

func TestConfig_HashConcurrencyDefaultsToOneMoreThanTheProcessors(t *testing.T) {
	c, err := configFromEnv()
	if err != nil || c.HashConcurrency != runtime.GOMAXPROCS(0)+1 {
		t.Fatalf("HashConcurrency = %d, %v; want GOMAXPROCS+1, %d", c.HashConcurrency, err, runtime.GOMAXPROCS(0)+1)
	}
	t.Setenv("LOGIN_HASH_CONCURRENCY", "3")
	if c, err = configFromEnv(); err != nil || c.HashConcurrency != 3 {
		t.Fatalf("LOGIN_HASH_CONCURRENCY=3: %d, %v", c.HashConcurrency, err)
	}
	for _, bad := range []string{"0", "-1", "many", "100000"} {
		t.Setenv("LOGIN_HASH_CONCURRENCY", bad)
		var e *env.Error
		if _, err := configFromEnv(); !errors.As(err, &e) || !strings.Contains(err.Error(), "LOGIN_HASH_CONCURRENCY") {
			t.Errorf("LOGIN_HASH_CONCURRENCY=%q: %v, want an error naming the variable", bad, err)
		}
	}
}

func TestConfig_HashMemoryIsHalfTheInstance(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
		want int
	}{
		{"a 512 MiB cgroup v2 limit", fstest.MapFS{
			"proc/self/cgroup":         {Data: []byte("0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("536870912\n")},
		}, 256},
		{"a 1 GiB cgroup v1 limit", fstest.MapFS{
			"proc/self/cgroup":                           {Data: []byte("4:memory:/\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("1073741824\n")},
		}, 512},
		{"a tiny limit still fits one hash", fstest.MapFS{
			"sys/fs/cgroup/memory.max": {Data: []byte("16777216\n")},
		}, 20},
		{"no limit visible", fstest.MapFS{}, 256},
		{"an unreadable limit", fstest.MapFS{
			"sys/fs/cgroup/memory.max": {Data: []byte("lots\n")},
		}, 256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := memlimit.System{FS: tt.fs, Getenv: func(string) string { return "" }}
			if got := defaultHashMemoryMiB(sys); got != tt.want {
				t.Fatalf("defaultHashMemoryMiB = %d, want %d", got, tt.want)
			}
		})
	}
}

// An operator who lengthened LOGIN_REFRESH_IDLE past the default
// LOGIN_REFRESH_MAX (12h) and left the latter unset used to start a login
// whose every code exchange failed with 503 "retry" (the refresh family
// could not start: idle past absolute), burning each person's code. Now
// login refuses to start, naming both variables; a MAX set below IDLE
// is refused with the same message, not with a range whose example
// (the 12h default) lies outside it.
func TestConfig_RefreshIdleBeyondMaxIsRefusedByName(t *testing.T) {
	tests := []struct {
		name, idle, max string
		ok              bool
		wantIdle        time.Duration
		wantMax         time.Duration
	}{
		{"defaults", "", "", true, 8 * time.Hour, 12 * time.Hour},
		{"idle past the default max, max unset", "24h", "", false, 0, 0},
		{"idle past max, both set", "10h", "9h", false, 0, 0},
		{"idle equal to max", "24h", "24h", true, 24 * time.Hour, 24 * time.Hour},
		{"max below the default idle, idle unset", "", "6h", false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LOGIN_REFRESH_IDLE", tt.idle)
			t.Setenv("LOGIN_REFRESH_MAX", tt.max)
			c, err := configFromEnv()
			if tt.ok {
				if err != nil || c.RefreshIdle != tt.wantIdle || c.RefreshMax != tt.wantMax {
					t.Fatalf("idle %v, max %v, %v; want %v, %v", c.RefreshIdle, c.RefreshMax, err, tt.wantIdle, tt.wantMax)
				}
				return
			}
			var e *env.Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), "LOGIN_REFRESH_MAX") || !strings.Contains(err.Error(), "LOGIN_REFRESH_IDLE") {
				t.Fatalf("configFromEnv = %v, want a refusal naming LOGIN_REFRESH_MAX and LOGIN_REFRESH_IDLE", err)
			}
			if strings.Contains(err.Error(), `such as "12h0m0s"`) {
				t.Errorf("the message offers the default as an example outside its own range: %v", err)
			}
		})
	}
}
