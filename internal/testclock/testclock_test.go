package testclock_test

import (
	"sync"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/testclock"
)

func TestClock_MovesOnlyWhenTold(t *testing.T) {
	c := testclock.New(testclock.Start)
	if got := c.Now(); !got.Equal(testclock.Start) {
		t.Fatalf("Now = %v, want the start %v", got, testclock.Start)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), testclock.Start.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("after Advance(90s) Now = %v, want %v", got, want)
	}
	later := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	c.Set(later)
	if got := c.Now(); !got.Equal(later) {
		t.Fatalf("after Set Now = %v, want %v", got, later)
	}
}

// TestClock_ConcurrentAdvancesAllCount is for the race detector too: a
// clock shared by a store and the goroutines of a test must not tear.
func TestClock_ConcurrentAdvancesAllCount(t *testing.T) {
	var c testclock.Clock
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			c.Advance(time.Second)
			c.Now()
		})
	}
	wg.Wait()
	if got := c.Now(); !got.Equal(time.Time{}.Add(100 * time.Second)) {
		t.Fatalf("after 100 concurrent Advance(1s) Now = %v, want 100s past the zero time", got)
	}
}
