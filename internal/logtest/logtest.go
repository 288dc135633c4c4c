// Package logtest captures what a test logs through log/slog, in the
// production format, so that the test can read it back.
package logtest

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"impo.com.uy/copetes/backend/internal/testbuf"
	"impo.com.uy/copetes/backend/shared/logging"
)

// Log is the captured output. Its Write and String are testbuf's: safe
// from many goroutines.
type Log struct {
	testbuf.Buffer
}

// Lines decodes each JSON line logged so far.
func (l *Log) Lines() []map[string]any {
	var out []map[string]any
	for line := range strings.Lines(l.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// Messages returns the lines whose message is msg.
func (l *Log) Messages(msg string) []map[string]any {
	var out []map[string]any
	for _, m := range l.Lines() {
		if m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// Capture makes slog's default logger write Cloud Logging JSON, at debug
// level, into the returned Log until the test ends.
func Capture(t testing.TB) *Log {
	l := &Log{}
	old := slog.Default()
	slog.SetDefault(logging.New(l, slog.LevelDebug, "impo-test"))
	t.Cleanup(func() { slog.SetDefault(old) })
	return l
}
