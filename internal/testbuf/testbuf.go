// Package testbuf captures output that other goroutines or a child
// process write during a test, and lets the test wait until the output
// shows what it is waiting for instead of guessing how long that takes.
package testbuf

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
)

// ErrEnded is returned by Wait and Line when the buffer was closed (the
// writer finished) without showing what the caller waited for.
var ErrEnded = errors.New("output ended")

// Buffer is an io.Writer whose methods are safe to call from many
// goroutines. The zero value is an empty, open buffer.
type Buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	closed  bool
	changed chan struct{} // closed, and replaced, on every Write and on Close
}

// Write appends p. It implements io.Writer; after Close it fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, ErrEnded
	}
	n, err := b.buf.Write(p)
	b.notify()
	return n, err
}

// Close records that nothing more will be written, so that a Wait for
// output that never came returns at once instead of at its deadline.
func (b *Buffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.notify()
	return nil
}

// notify wakes every waiter. Callers hold b.mu.
func (b *Buffer) notify() {
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Wait returns nil as soon as done, given everything written so far,
// reports true. It returns ErrEnded if the buffer is closed first, and
// ctx's error if ctx ends first: a test's guard against a writer that
// hangs, never the way it learns that output is complete.
func (b *Buffer) Wait(ctx context.Context, done func(string) bool) error {
	for {
		b.mu.Lock()
		s, closed := b.buf.String(), b.closed
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		if done(s) {
			return nil
		}
		if closed {
			return ErrEnded
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Line waits for the first complete line (one ended by a newline) that re
// matches, and returns re's submatches in it. A line still being written
// is never matched, so a submatch is never cut short.
func (b *Buffer) Line(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	var m []string
	err := b.Wait(ctx, func(s string) bool {
		for line := range strings.Lines(s) {
			if !strings.HasSuffix(line, "\n") {
				break
			}
			if m = re.FindStringSubmatch(line); m != nil {
				return true
			}
		}
		return false
	})
	return m, err
}
