// Package logging writes log/slog records as Cloud Logging structured JSON,
// one object per line, correlated with the request's trace.
package logging

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
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

var (
	traceparentRE = regexp.MustCompile(`^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)
	cloudTraceRE  = regexp.MustCompile(`^([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?$`)
)

// TraceFrom reads the W3C traceparent header, or else Google's
// X-Cloud-Trace-Context ("TRACE_ID/SPAN_ID;o=1").
func TraceFrom(h http.Header) (Trace, bool) {
	if m := traceparentRE.FindStringSubmatch(strings.TrimSpace(h.Get("traceparent"))); m != nil {
		if m[1] != strings.Repeat("0", 32) {
			return Trace{ID: m[1], SpanID: m[2], Sampled: m[3][1]&1 == 1}, true
		}
	}
	if m := cloudTraceRE.FindStringSubmatch(strings.TrimSpace(h.Get("X-Cloud-Trace-Context"))); m != nil {
		return Trace{ID: strings.ToLower(m[1]), SpanID: m[2], Sampled: m[3] == "1"}, true
	}
	return Trace{}, false
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
