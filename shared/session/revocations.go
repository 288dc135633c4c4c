package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"impo.com.uy/copetes/backend/shared/store"
)

// Revocations records, in the shared store, revoked token ids, revoked
// sessions (sid: every token of one login) and marks that end every
// session of one subject, each until the tokens it refuses would have
// expired anyway.
//
// With CacheFor set, an "accepted" answer is remembered that long in
// this process, per token id, so that a token used again and again costs
// one store read per CacheFor instead of one per request. That is the
// bound on how late a revocation or an ended session made through another
// instance (or by cmd/admin) takes effect here; one made through this
// instance takes effect at once.
type Revocations struct {
	Store    store.Store
	CacheFor time.Duration
	Now      func() time.Time
	cache    *notRevoked
}

type notRevoked struct {
	mu      sync.Mutex
	checked map[string]checked // jti -> when the store accepted the token
}

type checked struct {
	at      time.Time
	subject string // so that ending the subject's sessions can drop it
	sid     string // so that revoking its session can drop it
}

// NewRevocations returns revocations over st with a "not revoked" cache.
func NewRevocations(st store.Store, cacheFor time.Duration, now func() time.Time) Revocations {
	return Revocations{Store: st, CacheFor: cacheFor, Now: now, cache: &notRevoked{checked: map[string]checked{}}}
}

// Why Refused refuses a token.
const (
	ReasonRevoked = "revoked"
	ReasonEnded   = "sessions of this account were ended"
)

func revokedKey(jti string) string { return "revoked:" + jti }

// revokedSessionKey carries a digest of the session id, as notBeforeKey
// does of the subject: the store's keys hold no text from a token.
func revokedSessionKey(sid string) string {
	sum := sha256.Sum256([]byte(sid))
	return "revoked-sid:" + hex.EncodeToString(sum[:16])
}

// notBeforeKey carries a digest of the subject, as lockout's keys do: a
// subject may come from what a client typed (/revoke's subject field),
// and the store holds no such text.
func notBeforeKey(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return "notbefore:" + hex.EncodeToString(sum[:16])
}

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

// RevokeSession refuses every token whose sid is sid, issued before now
// or after: login ends a login's refresh family so, and with it every
// access token the family issued, not only the last one it recorded. The
// mark lives until every token issued by now has expired, with room for
// one that a renewal racing with the revocation signs a moment later,
// past the most leeway a verifier allows.
func (r Revocations) RevokeSession(ctx context.Context, sid string, now time.Time) error {
	if sid == "" {
		// Tokens without a session have sid "": no mark may name them all.
		return errors.New("revoke session: no session id")
	}
	e := store.Entry{Value: 1, Expires: now.Add(MaxLifetime + 2*MaxLeeway)}
	if err := r.Store.Put(ctx, revokedSessionKey(sid), e); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	r.forget(func(c checked) bool { return c.sid == sid })
	return nil
}

// EndSessions refuses every token of subject (its "sub") issued at or
// before through, to the second: through is now to end the sessions
// open now, or later to also refuse those that a login instance still
// unaware of a disabled account might issue meanwhile. The mark only
// moves forward: a later call with an earlier time changes nothing.
func (r Revocations) EndSessions(ctx context.Context, subject string, through time.Time) error {
	key := notBeforeKey(subject)
	// A token's iat is in whole seconds: one issued during through's
	// second may precede it, so that second is refused too.
	from := through.Unix() + 1
	// Read, then write: only operators end sessions, rarely, and two of
	// them racing can at worst keep the earlier of two marks.
	cur, found, err := r.Store.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	if !found || cur.Value < from {
		if err := r.Store.Put(ctx, key, markEntry(from)); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
	}
	r.forget(func(c checked) bool { return c.subject == subject })
	return nil
}

// ReopenSessions lets subject's tokens issued after now be accepted again,
// when an earlier EndSessions refused them ahead (a disabled account that
// is enabled again); tokens issued up to now stay refused.
func (r Revocations) ReopenSessions(ctx context.Context, subject string, now time.Time) error {
	key := notBeforeKey(subject)
	from := now.Unix() + 1
	cur, found, err := r.Store.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("reopen sessions: %w", err)
	}
	if found && cur.Value > from {
		if err := r.Store.Put(ctx, key, markEntry(from)); err != nil {
			return fmt.Errorf("reopen sessions: %w", err)
		}
	}
	return nil
}

// markEntry refuses tokens issued before the second from. It lives until
// the last of them has expired, past the most leeway a verifier allows.
func markEntry(from int64) store.Entry {
	return store.Entry{Value: from, Expires: time.Unix(from, 0).Add(MaxLifetime + MaxLeeway)}
}

// revocationKeys are the store keys that may refuse the token with
// claims c: its revocation, its subject's not-before mark and, when it
// has one, its session's revocation.
func revocationKeys(c Claims) []string {
	keys := []string{revokedKey(c.ID), notBeforeKey(c.Subject)}
	if c.SessionID != "" {
		keys = append(keys, revokedSessionKey(c.SessionID))
	}
	return keys
}

// Refused reports why the token with claims c is refused, ReasonRevoked
// (the token or its session) or ReasonEnded, or "" when it is not. All
// are read in one round trip.
func (r Revocations) Refused(ctx context.Context, c Claims) (string, error) {
	return r.refused(ctx, c, revocationKeys(c))
}

// refused is Refused with the token's revocationKeys, which a verifier
// derives once per token rather than once per request.
func (r Revocations) refused(ctx context.Context, c Claims, keys []string) (string, error) {
	caching := r.cache != nil && r.CacheFor > 0
	if caching {
		r.cache.mu.Lock()
		seen, ok := r.cache.checked[c.ID]
		r.cache.mu.Unlock()
		if ok && r.Now().Sub(seen.at) < r.CacheFor {
			return "", nil
		}
	}
	entries, found, err := r.Store.GetMany(ctx, keys...)
	if err != nil {
		return "", fmt.Errorf("check revocation: %w", err)
	}
	switch {
	case found[0], len(found) > 2 && found[2]:
		return ReasonRevoked, nil
	case found[1] && c.IssuedAt < entries[1].Value:
		return ReasonEnded, nil
	}
	if caching {
		now := r.Now()
		r.cache.mu.Lock()
		if len(r.cache.checked) >= maxSeen { // bounded like the verified tokens
			for k, seen := range r.cache.checked {
				if now.Sub(seen.at) >= r.CacheFor {
					delete(r.cache.checked, k)
				}
			}
		}
		r.cache.checked[c.ID] = checked{at: now, subject: c.Subject, sid: c.SessionID}
		r.cache.mu.Unlock()
	}
	return "", nil
}

// forget drops the cached answers for the tokens that match: sessions
// ended through this instance end here at once. It scans the cache
// (bounded by maxSeen), which only a logout, a revocation or an
// operator's request pays for.
func (r Revocations) forget(match func(checked) bool) {
	if r.cache == nil {
		return
	}
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	for jti, c := range r.cache.checked {
		if match(c) {
			delete(r.cache.checked, jti)
		}
	}
}
