package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNew_WritesCloudLoggingFields(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelDebug, "impo-prod")
	ctx := WithTrace(context.Background(), Trace{ID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", Sampled: true})
	log.WarnContext(ctx, "refresh failed", "secret", "accounts")
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON object: %q", buf.String())
	}
	delete(got, "time")
	want := map[string]any{
		"severity": "WARNING", "message": "refresh failed", "secret": "accounts",
		"logging.googleapis.com/trace":         "projects/impo-prod/traces/4bf92f3577b34da6a3ce929d0e0e4736",
		"logging.googleapis.com/spanId":        "00f067aa0ba902b7",
		"logging.googleapis.com/trace_sampled": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
}

func TestSeverity(t *testing.T) {
	for level, want := range map[slog.Level]string{
		slog.LevelDebug: "DEBUG", slog.LevelInfo: "INFO", slog.LevelWarn: "WARNING", slog.LevelError: "ERROR", slog.LevelError + 4: "ERROR",
	} {
		if got := severity(level); got != want {
			t.Errorf("severity(%v) = %q, want %q", level, got, want)
		}
	}
}

func TestTraceFrom(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   Trace
		ok     bool
	}{
		{"traceparent", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
			Trace{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true}, true},
		{"traceparent not sampled", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
			Trace{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", false}, true},
		{"all-zero trace id is invalid", map[string]string{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, Trace{}, false},
		{"X-Cloud-Trace-Context", map[string]string{"X-Cloud-Trace-Context": "105445AA7843BC8BF206B12000100000/1;o=1"},
			Trace{"105445aa7843bc8bf206b12000100000", "1", true}, true},
		{"traceparent wins", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000"},
			Trace{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true}, true},
		{"garbage", map[string]string{"traceparent": "zz", "X-Cloud-Trace-Context": "nope"}, Trace{}, false},
		{"sampled is bit 0 of the flags", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0b"},
			Trace{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true}, true},
		{"not sampled, flags 0a", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0a"},
			Trace{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", false}, true},
		{"uppercase traceparent", map[string]string{"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}, Trace{}, false},
		{"spaces around", map[string]string{"traceparent": " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 "},
			Trace{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true}, true},
		{"zero trace id falls back", map[string]string{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000;o=0"},
			Trace{"105445aa7843bc8bf206b12000100000", "", false}, true},
		{"X-Cloud-Trace-Context, id only", map[string]string{"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000"},
			Trace{"105445aa7843bc8bf206b12000100000", "", false}, true},
		{"X-Cloud-Trace-Context, span of 21 digits", map[string]string{"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/123456789012345678901"}, Trace{}, false},
		{"X-Cloud-Trace-Context, o=2", map[string]string{"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=2"}, Trace{}, false},
		{"X-Cloud-Trace-Context, empty span", map[string]string{"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/;o=1"}, Trace{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			got, ok := TraceFrom(h)
			if got != tt.want || ok != tt.ok {
				t.Errorf("TraceFrom = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// The patterns TraceFrom reads by hand, as regular expressions.
var (
	traceparentRE = regexp.MustCompile(`^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)
	cloudTraceRE  = regexp.MustCompile(`^([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?$`)
)

func traceFromRE(h http.Header) (Trace, bool) {
	if m := traceparentRE.FindStringSubmatch(strings.TrimSpace(h.Get("traceparent"))); m != nil {
		if m[1] != strings.Repeat("0", 32) {
			return Trace{ID: m[1], SpanID: m[2], Sampled: hexValue(m[3][1])&1 == 1}, true
		}
	}
	if m := cloudTraceRE.FindStringSubmatch(strings.TrimSpace(h.Get("X-Cloud-Trace-Context"))); m != nil {
		return Trace{ID: strings.ToLower(m[1]), SpanID: m[2], Sampled: m[3] == "1"}, true
	}
	return Trace{}, false
}

// FuzzTraceFrom holds the hand-written reader to the patterns it stands
// for.
func FuzzTraceFrom(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "105445AA7843BC8BF206B12000100000/1;o=1")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "105445aa7843bc8bf206b12000100000;o=0")
	f.Add("", "105445aa7843bc8bf206b12000100000/12345678901234567890")
	f.Fuzz(func(t *testing.T, traceparent, cloud string) {
		h := http.Header{}
		h.Set("traceparent", traceparent)
		h.Set("X-Cloud-Trace-Context", cloud)
		got, ok := TraceFrom(h)
		want, wantOK := traceFromRE(h)
		if got != want || ok != wantOK {
			t.Fatalf("TraceFrom(%q, %q) = %+v, %v; the patterns say %+v, %v", traceparent, cloud, got, ok, want, wantOK)
		}
	})
}
