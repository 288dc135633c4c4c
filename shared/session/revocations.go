package session

import (
	"context"
	"fmt"
	"sync"
	"time"

	"impo.com.uy/copetes/backend/shared/store"
)

// Revocations records revoked token ids in the shared store until the
// token would have expired anyway.
//
// With CacheFor set, a "not revoked" answer is remembered that long in
// this process, so that a token used again and again costs one store read
// per CacheFor instead of one per request. That is the bound on how late a
// revocation made through another instance takes effect here; one made
// through this instance takes effect at once.
type Revocations struct {
	Store    store.Store
	CacheFor time.Duration
	Now      func() time.Time
	cache    *notRevoked
}

type notRevoked struct {
	mu      sync.Mutex
	checked map[string]time.Time // jti -> when the store said "not revoked"
}

// NewRevocations returns revocations over st with a "not revoked" cache.
func NewRevocations(st store.Store, cacheFor time.Duration, now func() time.Time) Revocations {
	return Revocations{Store: st, CacheFor: cacheFor, Now: now, cache: &notRevoked{checked: map[string]time.Time{}}}
}

func revokedKey(jti string) string { return "revoked:" + jti }

// Revoke refuses the token with claims c from now on.
func (r Revocations) Revoke(ctx context.Context, c Claims) error {
	// Keep the record past exp by the most leeway a verifier allows.
	e := store.Entry{Value: 1, Expires: c.ExpiresAt().Add(MaxLeeway)}
	if err := r.Store.Put(ctx, revokedKey(c.ID), e); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if r.cache != nil {
		r.cache.mu.Lock()
		delete(r.cache.checked, c.ID)
		r.cache.mu.Unlock()
	}
	return nil
}

// IsRevoked reports whether the token with id jti was revoked.
func (r Revocations) IsRevoked(ctx context.Context, jti string) (bool, error) {
	if r.cache != nil && r.CacheFor > 0 {
		r.cache.mu.Lock()
		at, ok := r.cache.checked[jti]
		r.cache.mu.Unlock()
		if ok && r.Now().Sub(at) < r.CacheFor {
			return false, nil
		}
	}
	_, revoked, err := r.Store.Get(ctx, revokedKey(jti))
	if err != nil {
		return false, fmt.Errorf("check revocation: %w", err)
	}
	if !revoked && r.cache != nil && r.CacheFor > 0 {
		now := r.Now()
		r.cache.mu.Lock()
		if len(r.cache.checked) >= maxSeen { // bounded like the verified tokens
			for k, at := range r.cache.checked {
				if now.Sub(at) >= r.CacheFor {
					delete(r.cache.checked, k)
				}
			}
		}
		r.cache.checked[jti] = now
		r.cache.mu.Unlock()
	}
	return revoked, nil
}
