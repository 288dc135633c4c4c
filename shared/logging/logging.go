// Package logging writes log/slog records as Cloud Logging structured JSON,
// one object per line, correlated with the request's trace.
package logging

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"impo.com.uy/copetes/backend/shared/env"
)

// Keys Cloud Logging lifts out of a JSON line into the LogEntry itself.
// https://cloud.google.com/logging/docs/structured-logging#special-payload-fields
const (
	traceKey   = "logging.googleapis.com/trace"
	spanKey    = "logging.googleapis.com/spanId"
	sampledKey = "logging.googleapis.com/trace_sampled"
)

// New returns a logger that writes Cloud Logging JSON lines to w.
// project, when set, turns trace ids into the full resource name
// ("projects/P/traces/T") that Cloud Logging links to Cloud Trace.
func New(w io.Writer, level slog.Leveler, project string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.MessageKey:
				a.Key = "message"
			case slog.LevelKey:
				a.Key = "severity"
				a.Value = slog.StringValue(severity(a.Value.Any().(slog.Level)))
			}
			return a
		},
	})
	return slog.New(&traceHandler{Handler: h, project: project})
}

func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

// Setup makes a Cloud Logging logger on standard output the slog default,
// at the level named by LOG_LEVEL (debug, info, warn, error; default
// info). A process calls it when it starts and when it builds a function;
// calling it again only sets the same logger again.
func Setup() {
	var level slog.Level
	if err := level.UnmarshalText([]byte(env.String("LOG_LEVEL", "info"))); err != nil {
		level = slog.LevelInfo
		defer slog.Warn("LOG_LEVEL is not a level (debug, info, warn, error); using info")
	}
	slog.SetDefault(New(os.Stdout, level, env.String("GOOGLE_CLOUD_PROJECT", "")))
}

// Trace identifies the trace and span a request belongs to.
type Trace struct {
	ID      string // 32 hex digits
	SpanID  string
	Sampled bool
}

type traceCtxKey struct{}

// WithTrace returns a context whose log records carry t.
func WithTrace(ctx context.Context, t Trace) context.Context {
	return context.WithValue(ctx, traceCtxKey{}, t)
}

// TraceFrom reads the W3C traceparent header, or else Google's
// X-Cloud-Trace-Context ("TRACE_ID/SPAN_ID;o=1"). Cloud Run sends them
// with every request, so they are read by hand, allocating nothing.
func TraceFrom(h http.Header) (Trace, bool) {
	if t, ok := traceparent(firstValue(h, "Traceparent")); ok {
		return t, true
	}
	return cloudTrace(firstValue(h, "X-Cloud-Trace-Context"))
}

// firstValue is h.Get for a key in canonical form, which Get would work
// out again.
func firstValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// traceparent reads "VERSION-TRACEID-SPANID-FLAGS" (W3C Trace Context
// §3.2): two, 32, 16 and two lowercase hex digits. A trace id of zeros
// is invalid.
func traceparent(v string) (Trace, bool) {
	if len(v) != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' ||
		!lowerHex(v[:2]) || !lowerHex(v[3:35]) || !lowerHex(v[36:52]) || !lowerHex(v[53:]) ||
		v[3:35] == "00000000000000000000000000000000" {
		return Trace{}, false
	}
	// Bit 0 of the flags is "sampled": the low bit of their last digit.
	sampled := (hexValue(v[54]) & 1) == 1
	return Trace{ID: v[3:35], SpanID: v[36:52], Sampled: sampled}, true
}

// cloudTrace reads "TRACE_ID[/SPAN_ID][;o=OPTIONS]": 32 hex digits in
// either case, a decimal span id of at most 20 digits, o=0 or o=1.
func cloudTrace(v string) (Trace, bool) {
	if len(v) < 32 || !anyHex(v[:32]) {
		return Trace{}, false
	}
	t := Trace{ID: v[:32]}
	rest := v[32:]
	if span, ok := strings.CutPrefix(rest, "/"); ok {
		n := 0
		for n < len(span) && span[n] >= '0' && span[n] <= '9' {
			n++
		}
		if n == 0 || n > 20 {
			return Trace{}, false
		}
		t.SpanID, rest = span[:n], span[n:]
	}
	switch rest {
	case "", ";o=0":
	case ";o=1":
		t.Sampled = true
	default:
		return Trace{}, false
	}
	if !lowerHex(t.ID) {
		t.ID = strings.ToLower(t.ID)
	}
	return t, true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func anyHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// hexValue is the value of a lowercase hex digit.
func hexValue(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// Middleware puts the request's trace into its context, so that every
// log record written with that context is correlated in Cloud Logging.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := TraceFrom(r.Header); ok {
			r = r.WithContext(WithTrace(r.Context(), t))
		}
		next.ServeHTTP(w, r)
	})
}

type traceHandler struct {
	slog.Handler
	project string
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if t, ok := ctx.Value(traceCtxKey{}).(Trace); ok {
		id := t.ID
		if h.project != "" {
			id = "projects/" + h.project + "/traces/" + t.ID
		}
		r.AddAttrs(slog.String(traceKey, id), slog.Bool(sampledKey, t.Sampled))
		if t.SpanID != "" {
			r.AddAttrs(slog.String(spanKey, t.SpanID))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h *traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &traceHandler{h.Handler.WithAttrs(as), h.project}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	return &traceHandler{h.Handler.WithGroup(name), h.project}
}
