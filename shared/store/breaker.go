package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Breaker is a Store that fails fast while the store behind it is known
// to be down. After Failures operations in a row could not reach it, it
// is open: every operation fails at once with ErrUnavailable for
// Cooldown, instead of waiting its whole timeout for the same answer.
// Then one operation goes through as a probe (half-open) while the
// others still fail fast: if the probe reaches the store, the breaker
// closes; if not, it stays open for another Cooldown.
//
// A write that lost to other writers (ErrContended) and an operation
// whose caller gave up do not count: the store answered, or was never
// asked to.
type Breaker struct {
	store    Store
	failures int
	cooldown time.Duration
	now      func() time.Time

	mu       sync.Mutex
	failed   int       // operations in a row that could not reach the store
	openedAt time.Time // when it last opened; zero while closed
	retryAt  time.Time // when the next probe may go
	probing  bool
}

// ErrOpen is the error of an operation refused without trying, while the
// breaker is open. It wraps ErrUnavailable.
var ErrOpen = fmt.Errorf("%w: it failed repeatedly; not trying again yet", ErrUnavailable)

// NewBreaker returns a breaker over s that opens after failures
// operations in a row failed and probes every cooldown; now is its clock
// (nil: time.Now). failures of 0 or less returns s itself.
func NewBreaker(s Store, failures int, cooldown time.Duration, now func() time.Time) Store {
	if failures <= 0 {
		return s
	}
	if now == nil {
		now = time.Now
	}
	return &Breaker{store: s, failures: failures, cooldown: cooldown, now: now}
}

// redialer is a store that can replace its connection (Firestore).
type redialer interface{ redial() error }

// admit says whether an operation may go, and whether it is the probe.
func (b *Breaker) admit() (probe bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failed < b.failures {
		return false, nil
	}
	if now := b.now(); b.probing || now.Before(b.retryAt) {
		wait := max(b.retryAt.Sub(now), 0)
		return false, fmt.Errorf("%w (%d failures since %s; next try in %s)", ErrOpen, b.failed,
			b.openedAt.UTC().Format(time.RFC3339), wait.Round(time.Millisecond))
	}
	b.probing = true
	return true, nil
}

// record counts the outcome of an admitted operation.
func (b *Breaker) record(ctx context.Context, probe bool, err error) {
	down := errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrContended)
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	if down && ctx.Err() != nil {
		return // the caller gave up or ran out of time: no verdict on the store
	}
	now := b.now()
	if !down {
		if !b.openedAt.IsZero() {
			slog.Info("state store reachable again", "down_s", now.Sub(b.openedAt).Seconds())
		}
		b.failed, b.openedAt = 0, time.Time{}
		return
	}
	b.failed++
	if b.failed < b.failures {
		return
	}
	if b.openedAt.IsZero() {
		b.openedAt = now
		slog.Warn("state store unreachable: failing fast", "failures", b.failed, "cooldown_s", b.cooldown.Seconds(), "error", err.Error())
	}
	b.retryAt = now.Add(b.cooldown)
}

// do runs op through the breaker. A probe first gives a store that can a
// new connection: the old one may be waiting out a long reconnect backoff.
func (b *Breaker) do(ctx context.Context, op func() error) error {
	probe, err := b.admit()
	if err != nil {
		return err
	}
	if probe {
		if r, ok := b.store.(redialer); ok {
			if err := r.redial(); err != nil {
				err = fmt.Errorf("%w: %v", ErrUnavailable, err)
				b.record(ctx, true, err)
				return err
			}
		}
	}
	err = op()
	b.record(ctx, probe, err)
	return err
}

// Add implements Store.
func (b *Breaker) Add(ctx context.Context, key string, delta int64, ttl time.Duration) (v int64, err error) {
	err = b.do(ctx, func() error { v, err = b.store.Add(ctx, key, delta, ttl); return err })
	return v, err
}

// Get implements Store.
func (b *Breaker) Get(ctx context.Context, key string) (e Entry, ok bool, err error) {
	err = b.do(ctx, func() error { e, ok, err = b.store.Get(ctx, key); return err })
	return e, ok, err
}

// GetMany implements Store.
func (b *Breaker) GetMany(ctx context.Context, keys ...string) (entries []Entry, found []bool, err error) {
	err = b.do(ctx, func() error { entries, found, err = b.store.GetMany(ctx, keys...); return err })
	return entries, found, err
}

// Put implements Store.
func (b *Breaker) Put(ctx context.Context, key string, e Entry) error {
	return b.do(ctx, func() error { return b.store.Put(ctx, key, e) })
}

// Claim implements Store.
func (b *Breaker) Claim(ctx context.Context, key string, e Entry) (won bool, err error) {
	err = b.do(ctx, func() error { won, err = b.store.Claim(ctx, key, e); return err })
	return won, err
}

// Delete implements Store.
func (b *Breaker) Delete(ctx context.Context, key string) error {
	return b.do(ctx, func() error { return b.store.Delete(ctx, key) })
}

// Close closes the store behind it, if it has a Close.
func (b *Breaker) Close() error {
	if c, ok := b.store.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
