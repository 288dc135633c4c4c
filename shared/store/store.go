// Package store holds the small pieces of state that must agree across
// every instance of every function: failure counters, lock-outs, revoked
// token ids, ended sessions, handled message ids. Every entry expires.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Entry is a stored value and the moment it stops existing.
type Entry struct {
	Value   int64
	Expires time.Time
	// Data is a small record (a few KiB at most: an authorization code's
	// grant, a refresh token family) for entries that hold more than a
	// number. Put and Claim store it and every read returns it; Add leaves
	// it as it is (counters have none). Backends copy it: a caller may
	// change its slice after a Put, or the one a Get returned.
	Data []byte
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

// ErrContended is a write that lost to other writers of the same entry
// too many times in a row. It wraps ErrUnavailable (the request fails
// alike), but it says the store answers: a circuit breaker does not count
// it as the store being down.
var ErrContended = fmt.Errorf("%w: too many concurrent writers of one entry", ErrUnavailable)

// CounterShards is how many entries a sharded counter is spread over.
// Firestore sustains about one write per second to one document, and a
// counter's throughput grows with its shards: 16 sustain about 16 adds a
// second, an office behind one address logging in at 9:00 (two writes per
// login). Changing it changes which entries a counter reads: a counter
// then restarts from what the new set holds.
const CounterShards = 16

// counterMark starts every sharded counter's key; no other key can start
// with it, as no key the code builds holds a NUL.
const counterMark = "\x00counter:"

// ShardedCounter returns the key of a counter that many requests add to
// at once (every login from one address): a backend that limits the write
// rate of one entry spreads its adds over CounterShards entries, named
// key/00 … key/15, and Get sums them. Use it with Add, Get, GetMany and
// Delete; Put and Claim refuse it.
//
// Add of a positive delta returns the counter's total read after this add
// is stored: of n concurrent adds of 1, at most k see a total of k or
// less, so at most a threshold's worth of attempts see themselves under
// it. A negative delta (taking back an attempt) goes to a shard that holds
// at least as much, so that it undoes an add where one was counted (two
// take-backs at once may pick the same shard and leave it below zero;
// the total stays right), and returns the total as read before it. Each
// shard keeps the fixed window of its own first add: like a plain
// counter's, each add counts for at most ttl.
func ShardedCounter(key string) string { return counterMark + key }

// counterBase returns the key a sharded counter's shards are named after,
// and whether key names a sharded counter.
func counterBase(key string) (string, bool) { return strings.CutPrefix(key, counterMark) }

// shardKey names shard i of the counter whose base key is base.
func shardKey(base string, i int) string { return fmt.Sprintf("%s/%02d", base, i) }

// notACounter refuses an operation that only plain entries take.
func notACounter(op, key string) error {
	if base, ok := counterBase(key); ok {
		return fmt.Errorf("store: %s of the sharded counter %q: counters take Add, Get and Delete only", op, base)
	}
	return nil
}
