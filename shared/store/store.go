// Package store holds the small pieces of state that must agree across
// every instance of every function: failure counters, lock-outs, revoked
// token ids, ended sessions, handled message ids. Every entry expires.
package store

import (
	"context"
	"errors"
	"time"
)

// Entry is a stored value and the moment it stops existing.
type Entry struct {
	Value   int64
	Expires time.Time
}

// Store is implemented by each backend; storetest.Run is the contract.
// Expired entries behave as absent in every method.
type Store interface {
	// Add adds delta to the counter at key and returns the new value. A
	// missing counter starts at zero and expires ttl from now; an existing
	// one keeps its expiry (a fixed window).
	Add(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// Get returns the entry at key, and false when there is none.
	Get(ctx context.Context, key string) (Entry, bool, error)
	// GetMany is Get for several keys in one round trip: entries[i] and
	// found[i] answer keys[i]. A verifier reads a token's revocation and
	// its subject's mark together this way, on every request.
	GetMany(ctx context.Context, keys ...string) (entries []Entry, found []bool, err error)
	// Put sets the entry at key, replacing any.
	Put(ctx context.Context, key string, e Entry) error
	// Claim sets the entry at key only if there is none, and reports
	// whether this call set it: of many concurrent claims, one wins.
	Claim(ctx context.Context, key string, e Entry) (bool, error)
	// Delete removes the entry at key, if any.
	Delete(ctx context.Context, key string) error
}

// ErrUnavailable wraps every failure to reach a backend: the caller must
// fail the request (503, or a retried event), never let it pass.
var ErrUnavailable = errors.New("state store unavailable")
