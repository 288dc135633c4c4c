// Package lockout limits guessing: it counts attempts per subject (an
// account, a client address) in the shared store and refuses a subject
// that has failed too often, for a time that grows with each further
// failure, up to a cap.
package lockout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// Ticket is an admitted attempt. A failed attempt needs nothing more: it
// stays counted. A successful one calls Succeeded; one never judged (the
// server was busy) calls Abandoned.
type Ticket struct {
	g       Guard
	p       Policy
	subject string
	n       int64
}

// Keys carry a digest of the subject, not the subject: a subject is what a
// client typed (any length, perhaps a password in the wrong field), and
// the store should hold neither.
func failKey(subject string) string { return "fail:" + digest(subject) }
func lockKey(subject string) string { return "lock:" + digest(subject) }

func digest(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return hex.EncodeToString(sum[:16])
}

// Begin admits an attempt for subject, or refuses it with *LockedError
// before any work is done. The attempt is counted now, not when it fails,
// so that concurrent attempts cannot all slip past the threshold: at most
// Threshold attempts are admitted in a window, then one per lock-out.
func (g Guard) Begin(ctx context.Context, p Policy, subject string) (*Ticket, error) {
	if err := g.checkLock(ctx, subject); err != nil {
		return nil, err
	}
	n, err := g.Store.Add(ctx, failKey(subject), 1, p.Window)
	if err != nil {
		return nil, err
	}
	lock := store.Entry{Value: n, Expires: g.Now().Add(p.lockFor(n))} // used only when n >= Threshold
	switch {
	case n == p.Threshold:
		// The last admitted attempt locks the next ones until it is over.
		err = g.Store.Put(ctx, lockKey(subject), lock)
	case n > p.Threshold:
		// Past the threshold, one attempt per lock-out: whoever sets the
		// next lock-out gets it; the others are refused.
		var won bool
		if won, err = g.Store.Claim(ctx, lockKey(subject), lock); err == nil && !won {
			if err := g.checkLock(ctx, subject); err != nil {
				return nil, err
			}
			// The winner's lock-out ended between its claim and this read:
			// still refused, briefly, rather than admitted uncounted.
			return nil, &LockedError{RetryAfter: time.Second}
		}
	}
	if err != nil {
		return nil, err
	}
	return &Ticket{g: g, p: p, subject: subject, n: n}, nil
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

// Succeeded ends a successful attempt. With forget, the subject's failures
// are wiped (an account proved by its password); without, only this
// attempt is uncounted (an address that other people share).
func (t *Ticket) Succeeded(ctx context.Context, forget bool) error {
	if forget {
		if err := t.g.Store.Delete(ctx, failKey(t.subject)); err != nil {
			return err
		}
		return t.g.Store.Delete(ctx, lockKey(t.subject))
	}
	return t.Abandoned(ctx)
}

// Abandoned uncounts an attempt that was never judged (the server was
// busy), and lifts the lock-out it set.
func (t *Ticket) Abandoned(ctx context.Context) error {
	if _, err := t.g.Store.Add(ctx, failKey(t.subject), -1, t.p.Window); err != nil {
		return err
	}
	if t.n >= t.p.Threshold {
		return t.g.Store.Delete(ctx, lockKey(t.subject))
	}
	return nil
}
