// Package lockout limits guessing: it counts attempts per subject (an
// account, a client address) in the shared store and refuses a subject
// that has failed too often, for a time that grows with each further
// failure, up to a cap.
package lockout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"impo.com.uy/copetes/backend/shared/store"
)

// Policy says how many attempts a subject gets and how long it is locked.
type Policy struct {
	Threshold int64         // attempts allowed in Window before locking
	Window    time.Duration // attempts are counted over a fixed window
	Base      time.Duration // first lock-out
	Max       time.Duration // lock-outs double up to Max: never permanent
	// Sharded spreads the subject's counters over several store entries:
	// for a subject that many requests count at once (every login from an
	// office's address), where one entry would take more writes than the
	// store sustains.
	Sharded bool
}

// lockFor is the lock-out that the n-th attempt in a window sets.
func (p Policy) lockFor(n int64) time.Duration {
	shift := max(min(n-p.Threshold, 30), 0)
	return min(p.Base<<shift, p.Max)
}

// LockedError refuses an attempt; retry after RetryAfter.
type LockedError struct {
	RetryAfter time.Duration
}

// Error implements error.
func (e *LockedError) Error() string {
	return fmt.Sprintf("too many failed attempts; retry in %s", e.RetryAfter.Round(time.Second))
}

// Guard applies policies over a store.
type Guard struct {
	Store store.Store
	Now   func() time.Time
}

// Ticket is an admitted attempt, reserved until it is judged: Failed,
// Succeeded, or Abandoned (never judged: the server was busy, the store
// or the secrets were down). Exactly one of them must be called.
type Ticket struct {
	g       Guard
	p       Policy
	subject string
}

// Keys carry a digest of the subject, not the subject: a subject is what a
// client typed (any length, perhaps a password in the wrong field), and
// the store should hold neither.
func failKey(subject string) string    { return "fail:" + digest(subject) }
func lockKey(subject string) string    { return "lock:" + digest(subject) }
func pendingKey(subject string) string { return "pend:" + digest(subject) }

// counter is key as a counter of p's subject: sharded when p says so.
func (p Policy) counter(key string) string {
	if p.Sharded {
		return store.ShardedCounter(key)
	}
	return key
}

func digest(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return hex.EncodeToString(sum[:16])
}

// ErrContended: the attempts of subject already in flight could reach the
// threshold if they all failed, so this one is not admitted yet. Retry
// shortly: once they are judged (most succeed) there is room again. It is
// not a lock-out, and nothing was counted.
var ErrContended = errors.New("too many attempts in flight for this subject")

// pendingTTL bounds how long a reservation of an attempt that is never
// judged (its instance died mid-hash) holds a place.
const pendingTTL = 2 * time.Minute

// Begin admits an attempt for subject, or refuses it with *LockedError
// before any work is done, or with ErrContended while the attempts in
// flight fill the room left under the threshold. Failures are judged
// outcomes, not attempts: correct attempts made together are all admitted
// in turn, while a burst of wrong ones reaches the work no more often
// than the threshold allows, then one per lock-out.
func (g Guard) Begin(ctx context.Context, p Policy, subject string) (*Ticket, error) {
	if err := g.checkLock(ctx, subject); err != nil {
		return nil, err
	}
	pending, err := g.Store.Add(ctx, p.counter(pendingKey(subject)), 1, pendingTTL)
	if err != nil {
		return nil, err
	}
	t := &Ticket{g: g, p: p, subject: subject}
	entries, found, err := g.Store.GetMany(ctx, lockKey(subject), p.counter(failKey(subject)))
	if err != nil {
		t.release(ctx)
		return nil, err
	}
	if found[0] {
		t.release(ctx)
		return nil, &LockedError{RetryAfter: entries[0].Expires.Sub(g.Now())}
	}
	var fails int64
	if found[1] {
		fails = entries[1].Value
	}
	// A reservation lost to an expired window can make the count read
	// low; this attempt is in flight in any case.
	pending = max(pending, 1)
	switch {
	case fails+pending <= p.Threshold:
	case fails >= p.Threshold && pending == 1:
		// A lock-out just ended: one attempt at a time, and if it fails
		// the next lock-out is longer.
	default:
		t.release(ctx)
		return nil, ErrContended
	}
	return t, nil
}

// Failed records a failure, and locks the subject out when the failures
// in the window reach the threshold.
func (t *Ticket) Failed(ctx context.Context) error {
	defer t.release(ctx)
	n, err := t.g.Store.Add(ctx, t.p.counter(failKey(t.subject)), 1, t.p.Window)
	if err != nil {
		return err
	}
	if n < t.p.Threshold {
		return nil
	}
	lock := store.Entry{Value: n, Expires: t.g.Now().Add(t.p.lockFor(n))}
	if n == t.p.Threshold {
		return t.g.Store.Put(ctx, lockKey(t.subject), lock)
	}
	// Past the threshold, the lock-out the one admitted attempt earns.
	_, err = t.g.Store.Claim(ctx, lockKey(t.subject), lock)
	return err
}

// Succeeded ends a successful attempt. With forget, the subject's failures
// are wiped (an account proved by its password); without, nothing else
// changes (an address that other people share keeps their failures).
func (t *Ticket) Succeeded(ctx context.Context, forget bool) error {
	defer t.release(ctx)
	if forget {
		if err := t.g.Store.Delete(ctx, t.p.counter(failKey(t.subject))); err != nil {
			return err
		}
		return t.g.Store.Delete(ctx, lockKey(t.subject))
	}
	return nil
}

// Abandoned ends an attempt that was never judged: it counts as nothing.
func (t *Ticket) Abandoned(ctx context.Context) error {
	return t.release(ctx)
}

func (t *Ticket) release(ctx context.Context) error {
	_, err := t.g.Store.Add(ctx, t.p.counter(pendingKey(t.subject)), -1, pendingTTL)
	return err
}

// Check refuses subject with *LockedError while it is locked out, and
// counts nothing: a caller checks every lock that applies before it counts
// an attempt against any of them, so that an attempt refused by one lock
// (an account's) is not charged to another subject (the address it came
// from).
func (g Guard) Check(ctx context.Context, subject string) error {
	return g.checkLock(ctx, subject)
}

// Unlock lifts subject's lock-out and forgets its failures: an operator's
// act, for a person locked out by someone else's guesses.
func (g Guard) Unlock(ctx context.Context, subject string) error {
	if err := g.Store.Delete(ctx, failKey(subject)); err != nil {
		return err
	}
	return g.Store.Delete(ctx, lockKey(subject))
}

func (g Guard) checkLock(ctx context.Context, subject string) error {
	e, locked, err := g.Store.Get(ctx, lockKey(subject))
	if err != nil {
		return err
	}
	if locked {
		return &LockedError{RetryAfter: e.Expires.Sub(g.Now())}
	}
	return nil
}
