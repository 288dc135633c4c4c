// Package testclock is the settable clock that tests inject wherever code
// takes a `func() time.Time`, so that expiry is tested by moving time, not
// by waiting for it.
package testclock

import (
	"sync"
	"time"
)

// Start is where a clock from New(Start) begins: a fixed instant, so that
// what a test prints is the same on every run.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Clock is a time source that moves only when told to. Its methods are
// safe to call from many goroutines; the zero value reads time.Time{}.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock reading t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time. Pass the method value (c.Now) where code
// wants a func() time.Time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d (backward if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
