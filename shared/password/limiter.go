package password

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrBusy: no room for another hash came free in time, or the queue of
// hashes waiting for room was already full.
var ErrBusy = errors.New("too many password checks at once")

// GCHeadroom is what an argon2id hash costs the process per KiB it fills.
// argon2 allocates its memory afresh for every hash, and that memory is
// garbage the moment the hash ends; with the collector's default pacing
// (GOGC=100) the heap grows to twice what is live before the next
// collection, so each KiB a hash fills holds about two of the process's
// memory. Counting only the live KiB is how 13 hashes "within" 256 MiB
// once took 600 MiB.
const GCHeadroom = 2

// LimiterConfig sizes a Limiter.
type LimiterConfig struct {
	// Concurrency bounds the hashes computed at once. argon2id with one
	// lane keeps one processor busy: more hashes at once than processors
	// finish no sooner, and each holds its memory while it waits for one.
	Concurrency int
	// BudgetKiB bounds the memory of the hashes computed at once, counted
	// with GCHeadroom.
	BudgetKiB int64
	// Wait bounds how long a hash waits for room.
	Wait time.Duration
	// Queue bounds how many hashes wait for room at once; one more is
	// refused at once.
	Queue int
}

// Limiter bounds the argon2id hashes computed at once, by count
// (Concurrency) and by memory (BudgetKiB). A hash without room waits, at
// most Wait; at most Queue hashes wait at once, and one more is refused
// at once, so that an overload sheds load quickly instead of piling up
// requests (each holding its body and a goroutine) for the whole wait.
type Limiter struct {
	sem     *semaphore.Weighted
	n       int64 // Concurrency
	budget  int64 // KiB
	wait    time.Duration
	queue   int64
	waiting atomic.Int64
}

// NewLimiter returns a limiter sized by c.
func NewLimiter(c LimiterConfig) *Limiter {
	n, budget := max(int64(c.Concurrency), 1), max(c.BudgetKiB, 1)
	return &Limiter{sem: semaphore.NewWeighted(n * budget), n: n, budget: budget, wait: c.Wait, queue: int64(c.Queue)}
}

// weight is a hash's share of the semaphore, whose capacity is
// Concurrency × BudgetKiB units. It is the larger of a processor's share
// (BudgetKiB units: Concurrency of them fill the capacity) and a memory
// share (Concurrency units per KiB, headroom included: these fill the
// capacity when the memory reaches BudgetKiB). Taking the larger keeps
// both bounds with one semaphore, so one first-come, first-served queue.
// A hash larger than the whole budget runs alone rather than never.
func (l *Limiter) weight(p Params) int64 {
	memory := int64(p.Memory) * GCHeadroom
	return min(max(l.budget, l.n*memory), l.n*l.budget)
}

// Slots is how many hashes with parameters p run at once.
func (l *Limiter) Slots(p Params) int { return int(l.n * l.budget / l.weight(p)) }

// Saturated reports whether a hash asking now would be refused at once:
// the queue of hashes waiting for room is full. A caller can shed a
// request before doing the work it would have to undo. With no queue it
// cannot tell, and reports false.
func (l *Limiter) Saturated() bool { return l.queue > 0 && l.waiting.Load() >= l.queue }

// Acquire takes room for one argon2id hash with parameters p, waiting as
// Matches does, or fails with ErrBusy. Call release once the hash is done.
func (l *Limiter) Acquire(ctx context.Context, p Params) (release func(), err error) {
	w := l.weight(p)
	if !l.sem.TryAcquire(w) {
		if l.waiting.Add(1) > l.queue {
			l.waiting.Add(-1)
			return nil, ErrBusy
		}
		ctx, cancel := context.WithTimeout(ctx, l.wait)
		err := l.sem.Acquire(ctx, w)
		cancel()
		l.waiting.Add(-1)
		if err != nil {
			return nil, ErrBusy
		}
	}
	return func() { l.sem.Release(w) }, nil
}

// Matches checks password against h: an argon2id hash within the
// limiter's bounds, a service secret's digest at once (it takes
// microseconds and no memory to speak of, and must not queue behind
// people's hashes).
func (l *Limiter) Matches(ctx context.Context, h Hashed, password []byte) (bool, error) {
	if h.Fast() {
		return h.Matches(password), nil
	}
	release, err := l.Acquire(ctx, h.Params)
	if err != nil {
		return false, err
	}
	defer release()
	return h.Matches(password), nil
}
