package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/storetest"
	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/store"
)

// outage is a memory store that can be taken down: then every operation
// fails as an unreachable backend's does. calls counts the operations
// that reached it; hold, when set, runs in each one before it answers.
type outage struct {
	store.Store
	down  atomic.Bool
	calls atomic.Int64
	hold  func()
}

func (o *outage) try(ctx context.Context) error {
	o.calls.Add(1)
	if o.hold != nil {
		o.hold()
	}
	if o.down.Load() {
		return fmt.Errorf("%w: connection refused", store.ErrUnavailable)
	}
	return ctx.Err()
}

func (o *outage) Get(ctx context.Context, key string) (store.Entry, bool, error) {
	if err := o.try(ctx); err != nil {
		return store.Entry{}, false, err
	}
	return o.Store.Get(ctx, key)
}

const (
	failures = 3
	cooldown = time.Second
)

func newBreaker(t *testing.T) (store.Store, *outage, *testclock.Clock) {
	clock := testclock.New(testclock.Start)
	o := &outage{Store: store.NewMemory(clock.Now)}
	return store.NewBreaker(o, failures, cooldown, clock.Now), o, clock
}

func get(s store.Store) error {
	_, _, err := s.Get(context.Background(), "k")
	return err
}

func TestBreaker_FailsFastOnceOpenWithoutAsking(t *testing.T) {
	b, o, _ := newBreaker(t)
	o.down.Store(true)
	for i := range failures {
		if err := get(b); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrOpen) {
			t.Fatalf("failure %d: %v; want the store's own ErrUnavailable", i+1, err)
		}
	}
	for range 10 {
		if err := get(b); !errors.Is(err, store.ErrOpen) || !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("after %d failures in a row: %v; want ErrOpen, an ErrUnavailable", failures, err)
		}
	}
	if n := o.calls.Load(); n != failures {
		t.Fatalf("the store was asked %d times; want %d, then not while open", n, failures)
	}
}

func TestBreaker_ProbesOnceEachCooldownAndClosesWhenTheStoreIsBack(t *testing.T) {
	b, o, clock := newBreaker(t)
	o.down.Store(true)
	for range failures {
		get(b)
	}
	// Still down at the end of the cool-down: one probe, then open again.
	clock.Advance(cooldown)
	if err := get(b); errors.Is(err, store.ErrOpen) {
		t.Fatalf("after the cool-down: %v; want a probe that reaches the store", err)
	}
	if err := get(b); !errors.Is(err, store.ErrOpen) {
		t.Fatalf("after a failed probe: %v; want ErrOpen for another cool-down", err)
	}
	if n := o.calls.Load(); n != failures+1 {
		t.Fatalf("the store was asked %d times; want %d (one probe)", n, failures+1)
	}
	// Back: the next probe succeeds and closes the breaker.
	o.down.Store(false)
	clock.Advance(cooldown)
	for i := range 5 {
		if err := get(b); err != nil {
			t.Fatalf("operation %d once the store is back: %v", i+1, err)
		}
	}
}

func TestBreaker_OneProbeAtATime(t *testing.T) {
	b, o, clock := newBreaker(t)
	o.down.Store(true)
	for range failures {
		get(b)
	}
	clock.Advance(cooldown)
	o.down.Store(false)
	// The first operation to reach the store (the probe) waits there.
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	o.hold = func() { once.Do(func() { close(entered); <-release }) }
	probed := make(chan error)
	go func() { probed <- get(b) }()
	<-entered
	for range 5 {
		if err := get(b); !errors.Is(err, store.ErrOpen) {
			t.Fatalf("while the probe is out: %v; want ErrOpen", err)
		}
	}
	close(release)
	if err := <-probed; err != nil {
		t.Fatalf("probe: %v", err)
	}
	if err := get(b); err != nil {
		t.Fatalf("after a successful probe: %v", err)
	}
}

func TestBreaker_CountsOnlyTheStoreBeingDown(t *testing.T) {
	b, o, _ := newBreaker(t)
	// Failures in a row open it; a success in between starts the count again.
	o.down.Store(true)
	for range failures - 1 {
		get(b)
	}
	o.down.Store(false)
	get(b)
	o.down.Store(true)
	for range failures - 1 {
		get(b)
	}
	if err := get(b); errors.Is(err, store.ErrOpen) {
		t.Fatalf("opened after %d failures with a success among them", 2*(failures-1))
	}
	// A caller that gave up says nothing about the store.
	b, o, _ = newBreaker(t)
	o.down.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 2 * failures {
		b.Get(ctx, "k")
	}
	o.down.Store(false)
	if err := get(b); err != nil {
		t.Fatalf("after callers gave up: %v; want the breaker still closed", err)
	}
}

func TestBreaker_ContentionIsNotAnOutage(t *testing.T) {
	clock := testclock.New(testclock.Start)
	c := &contended{Store: store.NewMemory(clock.Now)}
	b := store.NewBreaker(c, failures, cooldown, clock.Now)
	for range 2 * failures {
		if _, err := b.Add(context.Background(), "k", 1, time.Hour); !errors.Is(err, store.ErrContended) {
			t.Fatalf("Add = %v, want ErrContended", err)
		}
	}
	if _, err := b.Add(context.Background(), "k", 1, time.Hour); errors.Is(err, store.ErrOpen) {
		t.Fatal("the breaker opened on contention: the store answered every time")
	}
}

// contended is a store whose every Add loses to other writers.
type contended struct{ store.Store }

func (contended) Add(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, store.ErrContended
}

func TestBreaker_Conformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		New: func(_ *testing.T, now func() time.Time) store.Store {
			return store.NewBreaker(store.NewMemory(now), failures, cooldown, now)
		},
	})
}

func TestBreaker_ZeroFailuresIsNoBreaker(t *testing.T) {
	m := store.NewMemory(nil)
	if s := store.NewBreaker(m, 0, cooldown, nil); s != store.Store(m) {
		t.Fatalf("NewBreaker with 0 failures = %T; want the store itself", s)
	}
}
