package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCPUTime_IsUserPlusSystemTicksAt100Hz(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want time.Duration
	}{
		{"a process", "4242 (login) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 37 0 0 20 0 9 0 123456 1000000 2000 18446744073709551615",
			2870 * time.Millisecond},
		{"a command with spaces and parentheses", "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0 0",
			30 * time.Millisecond},
		{"nothing used yet", "9 (trivial) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cpuTime([]byte(tt.stat))
			if err != nil || got != tt.want {
				t.Errorf("cpuTime = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestCPUTime_RefusesWhatIsNoStatLine(t *testing.T) {
	for _, stat := range []string{"", "4242 login S 1", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ten 2 0"} {
		if got, err := cpuTime([]byte(stat)); err == nil {
			t.Errorf("cpuTime(%q) = %v, want an error", stat, got)
		}
	}
}

func TestSchedCPU_IsTheFirstFieldInNanoseconds(t *testing.T) {
	got, err := schedCPU([]byte("668790203 66444401338 2400\n"))
	if err != nil || got != 668790203*time.Nanosecond {
		t.Errorf("schedCPU = %v, %v; want 668.790203ms", got, err)
	}
	for _, bad := range []string{"", "1 2", "x 2 3", "-1 2 3"} {
		if d, err := schedCPU([]byte(bad)); err == nil {
			t.Errorf("schedCPU(%q) = %v, want an error", bad, d)
		}
	}
}

func TestParseStatus_ReadsResidentAndPeakInBytes(t *testing.T) {
	status := "Name:\tlogin\nVmPeak:\t 1300000 kB\nVmHWM:\t  245760 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n"
	got, err := parseStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if want := (memory{RSS: 20 << 20, Peak: 240 << 20}); got != want {
		t.Errorf("parseStatus = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"Name:\tkthreadd\nThreads:\t1\n", "VmHWM:\t10 MB\nVmRSS:\t1 kB\n", "VmHWM:\tx kB\nVmRSS:\t1 kB\n"} {
		if m, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("parseStatus(%q) = %+v, want an error", bad, m)
		}
	}
}

func TestParseInitTrace_KeepsInitLinesSlowestFirst(t *testing.T) {
	stderr := strings.Join([]string{
		"init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs",
		"init github.com/santhosh-tekuri/jsonschema/v6 @10 ms, 5.4 ms clock, 1701640 bytes, 21289 allocs",
		`{"severity":"INFO","message":"init of something else"}`,
		"init runtime @0.02 ms, 0.047 ms clock, 0 bytes, 0 allocs",
		"2026/11/27 listening",
	}, "\n")
	want := []initLine{
		{"github.com/santhosh-tekuri/jsonschema/v6", 5400 * time.Microsecond},
		{"runtime", 47 * time.Microsecond},
		{"internal/bytealg", 0},
	}
	if diff := cmp.Diff(want, parseInitTrace([]byte(stderr))); diff != "" {
		t.Errorf("parseInitTrace (-want +got):\n%s", diff)
	}
}

func TestQuantile_NearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(30, 10, 20), 0.5, 20 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 100), 0.99, 100 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := quantile(tt.in, tt.q); got != tt.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", tt.in, tt.q, got, tt.want)
		}
	}
}
