package lockout

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/store"
)

var policy = Policy{Threshold: 3, Window: time.Hour, Base: 30 * time.Second, Max: 2 * time.Minute}

func newGuard() (Guard, *testclock.Clock) {
	c := testclock.New(testclock.Start)
	return Guard{Store: store.NewMemory(c.Now), Now: c.Now}, c
}

func lockedFor(t *testing.T, err error) time.Duration {
	t.Helper()
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("error = %v, want *LockedError", err)
	}
	return le.RetryAfter
}

func TestGuard_LocksAfterThresholdAndGrowsToCap(t *testing.T) {
	g, clk := newGuard()
	ctx := context.Background()
	for i := range policy.Threshold {
		if _, err := g.Begin(ctx, policy, "ana"); err != nil {
			t.Fatalf("attempt %d refused: %v", i+1, err)
		}
	}
	_, err := g.Begin(ctx, policy, "ana")
	if d := lockedFor(t, err); d != 30*time.Second {
		t.Fatalf("first lock-out = %s, want 30s", d)
	}
	// Each lock-out admits one attempt when it ends, and doubles.
	for _, want := range []time.Duration{time.Minute, 2 * time.Minute, 2 * time.Minute} {
		clk.Advance(3 * time.Minute)
		if _, err := g.Begin(ctx, policy, "ana"); err != nil {
			t.Fatalf("attempt after the lock-out ended refused: %v", err)
		}
		_, err := g.Begin(ctx, policy, "ana")
		if d := lockedFor(t, err); d != want {
			t.Fatalf("lock-out = %s, want %s", d, want)
		}
	}
}

func TestGuard_SubjectsAreIndependent(t *testing.T) {
	g, _ := newGuard()
	ctx := context.Background()
	for range policy.Threshold {
		g.Begin(ctx, policy, "ana")
	}
	if _, err := g.Begin(ctx, policy, "bob"); err != nil {
		t.Fatalf("bob refused for ana's failures: %v", err)
	}
}

func TestGuard_SuccessForgets(t *testing.T) {
	g, _ := newGuard()
	ctx := context.Background()
	for range policy.Threshold - 1 {
		g.Begin(ctx, policy, "ana")
	}
	tk, _ := g.Begin(ctx, policy, "ana") // the last admitted: sets a lock
	if err := tk.Succeeded(ctx, true); err != nil {
		t.Fatal(err)
	}
	for i := range policy.Threshold {
		if _, err := g.Begin(ctx, policy, "ana"); err != nil {
			t.Fatalf("after a success, attempt %d refused: %v", i+1, err)
		}
	}
}

func TestGuard_SharedAddressOnlyUncountsTheSuccess(t *testing.T) {
	g, _ := newGuard()
	ctx := context.Background()
	g.Begin(ctx, policy, "10.0.0.1")
	g.Begin(ctx, policy, "10.0.0.1")
	tk, _ := g.Begin(ctx, policy, "10.0.0.1")
	tk.Succeeded(ctx, false)
	// Two failures stand; one more attempt is admitted, the next refused.
	if _, err := g.Begin(ctx, policy, "10.0.0.1"); err != nil {
		t.Fatalf("third attempt refused: %v", err)
	}
	if _, err := g.Begin(ctx, policy, "10.0.0.1"); err == nil {
		t.Fatal("fourth attempt admitted; the two earlier failures were forgotten")
	}
}

func TestGuard_ConcurrentBurstAdmitsOnlyThreshold(t *testing.T) {
	g, _ := newGuard()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if _, err := g.Begin(context.Background(), policy, "ana"); err == nil {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n != policy.Threshold {
		t.Fatalf("a burst of 200 admitted %d attempts, want %d", n, policy.Threshold)
	}
}
