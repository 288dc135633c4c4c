package lockout

import (
	"context"
	"errors"
	"runtime"
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

// fail makes one attempt that fails.
func fail(t *testing.T, g Guard, subject string) {
	t.Helper()
	tk, err := g.Begin(context.Background(), policy, subject)
	if err != nil {
		t.Fatalf("attempt refused: %v", err)
	}
	if err := tk.Failed(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestGuard_LocksAfterThresholdAndGrowsToCap(t *testing.T) {
	g, clk := newGuard()
	ctx := context.Background()
	for range policy.Threshold {
		fail(t, g, "ana")
	}
	_, err := g.Begin(ctx, policy, "ana")
	if d := lockedFor(t, err); d != 30*time.Second {
		t.Fatalf("first lock-out = %s, want 30s", d)
	}
	// Each lock-out admits one attempt when it ends, and doubles.
	for _, want := range []time.Duration{time.Minute, 2 * time.Minute, 2 * time.Minute} {
		clk.Advance(3 * time.Minute)
		tk, err := g.Begin(ctx, policy, "ana")
		if err != nil {
			t.Fatalf("attempt after the lock-out ended refused: %v", err)
		}
		if _, err := g.Begin(ctx, policy, "ana"); !errors.Is(err, ErrContended) {
			t.Fatalf("a second attempt while the one after the lock-out is in flight: %v, want ErrContended", err)
		}
		tk.Failed(ctx)
		_, err = g.Begin(ctx, policy, "ana")
		if d := lockedFor(t, err); d != want {
			t.Fatalf("lock-out = %s, want %s", d, want)
		}
	}
}

func TestGuard_SubjectsAreIndependent(t *testing.T) {
	g, _ := newGuard()
	for range policy.Threshold {
		fail(t, g, "ana")
	}
	if _, err := g.Begin(context.Background(), policy, "bob"); err != nil {
		t.Fatalf("bob refused for ana's failures: %v", err)
	}
}

func TestGuard_SuccessForgets(t *testing.T) {
	g, _ := newGuard()
	ctx := context.Background()
	for range policy.Threshold - 1 {
		fail(t, g, "ana")
	}
	tk, err := g.Begin(ctx, policy, "ana")
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Succeeded(ctx, true); err != nil {
		t.Fatal(err)
	}
	for range policy.Threshold {
		fail(t, g, "ana") // all admitted: the earlier failures are gone
	}
}

func TestGuard_SharedAddressKeepsOthersFailures(t *testing.T) {
	g, _ := newGuard()
	ctx := context.Background()
	fail(t, g, "10.0.0.1")
	fail(t, g, "10.0.0.1")
	tk, _ := g.Begin(ctx, policy, "10.0.0.1")
	tk.Succeeded(ctx, false)
	// Two failures stand; one more failure locks.
	fail(t, g, "10.0.0.1")
	if _, err := g.Begin(ctx, policy, "10.0.0.1"); err == nil {
		t.Fatal("admitted after three failures; the two earlier ones were forgotten")
	}
}

func TestGuard_AbandonedCountsNothing(t *testing.T) {
	g, _ := newGuard()
	ctx := context.Background()
	for range 10 * policy.Threshold {
		tk, err := g.Begin(ctx, policy, "ana")
		if err != nil {
			t.Fatalf("an attempt after abandoned ones refused: %v", err)
		}
		tk.Abandoned(ctx) // the server was busy: no verdict
	}
}

func TestGuard_ConcurrentBurstAdmitsOnlyThreshold(t *testing.T) {
	g, _ := newGuard()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	tickets := make(chan *Ticket, 200)
	for range 200 {
		wg.Go(func() {
			tk, err := g.Begin(context.Background(), policy, "ana")
			if err == nil {
				admitted.Add(1)
				tickets <- tk
			} else if !errors.Is(err, ErrContended) {
				t.Errorf("in a burst: %v, want ErrContended", err)
			}
		})
	}
	wg.Wait()
	close(tickets)
	if n := admitted.Load(); n != policy.Threshold {
		t.Fatalf("a burst of 200 admitted %d attempts, want %d", n, policy.Threshold)
	}
	for tk := range tickets {
		tk.Failed(context.Background())
	}
	if _, err := g.Begin(context.Background(), policy, "ana"); err == nil {
		t.Fatal("after the admitted attempts failed, another was admitted")
	} else {
		lockedFor(t, err)
	}
}

func TestGuard_ConcurrentCorrectAttemptsAreAllAdmittedInTurn(t *testing.T) {
	g, _ := newGuard()
	// Twice the threshold of correct attempts at once (several workers of
	// one service starting together): each is admitted once room frees,
	// none is ever locked out.
	var wg sync.WaitGroup
	for range 2 * policy.Threshold {
		wg.Go(func() {
			for {
				tk, err := g.Begin(context.Background(), policy, "pipeline")
				if errors.Is(err, ErrContended) {
					runtime.Gosched()
					continue
				}
				if err != nil {
					t.Errorf("a correct attempt: %v", err)
					return
				}
				tk.Succeeded(context.Background(), true)
				return
			}
		})
	}
	wg.Wait()
}
