package login

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"

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
