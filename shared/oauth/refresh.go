package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"impo.com.uy/copetes/backend/shared/store"
)

// Lifetimes bound a refresh family: it ends Idle after its last use (a
// laptop closed overnight), and Absolute after the login whatever its use
// (a stolen token does not live forever by being used).
type Lifetimes struct {
	Idle, Absolute time.Duration
}

// DefaultLifetimes fit a working day: a lunch break does not end the
// session, the next morning starts with a login.
var DefaultLifetimes = Lifetimes{Idle: 8 * time.Hour, Absolute: 12 * time.Hour}

// Refresh issues, rotates and revokes refresh token families.
//
// The store holds, all with the token's SHA-256 and never the token:
//
//	refresh-family:<id>      the Family as JSON, until its absolute end
//	refresh:<sha256>         a live token: its family and generation, until the idle end
//	refresh-used:<sha256>    a used token's family, claimed by the one rotation that uses it
//	refresh-revoked:<id>     a revoked family: every read checks it
//
// A revocation is a mark of its own, not a change to the family record:
// the store has no compare-and-set on records, and a rotation writing the
// family as it read it would undo a revocation made in between. A rotation
// reads the mark after it writes, so that a revocation racing with it
// either stops it or sees what it issued.
type Refresh struct {
	Store     store.Store
	Now       func() time.Time // nil: time.Now
	Lifetimes Lifetimes        // zero: DefaultLifetimes
}

// Family is one login's chain of refresh tokens, as it stands.
type Family struct {
	ID string `json:"-"` // Authorization.Family, repeated for the reader
	Authorization
	Started   time.Time `json:"started"`
	IdleUntil time.Time `json:"idle_until"` // slides with each rotation, never past Until
	Until     time.Time `json:"until"`      // the absolute end
	// TokenID and TokenExpires are the last access token issued with the
	// family's newest refresh token: the one to revoke with the family.
	TokenID      string    `json:"jti"`
	TokenExpires time.Time `json:"token_expires"`
	Generation   int64     `json:"generation"` // 1 for the login's token, +1 per rotation
}

// tokenRecord is what a refresh token's key, live or used, holds.
type tokenRecord struct {
	Family     string `json:"family"`
	Generation int64  `json:"generation"`
}

func tokenKey(h string) string     { return "refresh:" + h }
func usedTokenKey(h string) string { return "refresh-used:" + h }
func familyKey(id string) string   { return "refresh-family:" + id }
func revokedKey(id string) string  { return "refresh-revoked:" + id }
func (r Refresh) now() time.Time   { return clock(r.Now) }

// lifetimes are r's, or the defaults when it sets none.
func (r Refresh) lifetimes() Lifetimes {
	if r.Lifetimes == (Lifetimes{}) {
		return DefaultLifetimes
	}
	return r.Lifetimes
}

// Start begins the family a.Family with its first refresh token, issued
// with the access token tokenID. It fails with ErrInvalidGrant if the
// family was revoked before it began (a replay of its authorization code
// raced with the first redemption).
func (r Refresh) Start(ctx context.Context, a Authorization, tokenID string, tokenExpires time.Time) (string, error) {
	lt := r.lifetimes()
	if lt.Idle <= 0 || lt.Absolute < lt.Idle {
		return "", fmt.Errorf("oauth: refresh lifetimes: idle %v, absolute %v; want 0 < idle ≤ absolute", lt.Idle, lt.Absolute)
	}
	if a.Family == "" || a.ClientID == "" || a.Subject == "" {
		return "", errors.New("oauth: start refresh family: the authorization needs a family, a client and a subject")
	}
	now := r.now()
	until := now.Add(lt.Absolute)
	f := Family{
		ID: a.Family, Authorization: a, Started: now, IdleUntil: earlier(now.Add(lt.Idle), until), Until: until,
		TokenID: tokenID, TokenExpires: tokenExpires, Generation: 1,
	}
	data, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("oauth: start refresh family: %w", err)
	}
	won, err := r.Store.Claim(ctx, familyKey(f.ID), store.Entry{Value: f.Generation, Expires: f.Until, Data: data})
	if err != nil {
		return "", fmt.Errorf("oauth: start refresh family: %w", err)
	}
	if !won {
		return "", fmt.Errorf("oauth: start refresh family %s: it exists", f.ID)
	}
	return r.issue(ctx, f)
}

// issue stores a new token for f's current generation and returns it,
// unless f was revoked meanwhile. f is stored already: the revocation
// mark is read after, so a revocation that this read misses reads f.
func (r Refresh) issue(ctx context.Context, f Family) (string, error) {
	token := newSecret()
	data, err := json.Marshal(tokenRecord{Family: f.ID, Generation: f.Generation})
	if err != nil {
		return "", fmt.Errorf("oauth: refresh token: %w", err)
	}
	if err := r.Store.Put(ctx, tokenKey(digest(token)), store.Entry{Value: f.Generation, Expires: f.IdleUntil, Data: data}); err != nil {
		return "", fmt.Errorf("oauth: refresh token: %w", err)
	}
	_, revoked, err := r.Store.Get(ctx, revokedKey(f.ID))
	if err != nil {
		return "", fmt.Errorf("oauth: refresh token: %w", err)
	}
	if revoked {
		return "", invalid("refresh family revoked")
	}
	return token, nil
}

// current returns the family of the token with digest h if the token
// can be rotated now. Otherwise it returns the token's used mark when it
// was used (reuse), or else why it cannot be: unknown, past the idle or
// absolute end, family revoked.
func (r Refresh) current(ctx context.Context, h string) (f Family, used *store.Entry, reason string, err error) {
	entries, found, err := r.Store.GetMany(ctx, tokenKey(h), usedTokenKey(h))
	if err != nil {
		return Family{}, nil, "", err
	}
	if found[1] {
		return Family{}, &entries[1], "refresh token already used", nil
	}
	if !found[0] {
		return Family{}, nil, "unknown or expired refresh token", nil
	}
	var t tokenRecord
	if err := json.Unmarshal(entries[0].Data, &t); err != nil {
		return Family{}, nil, "", fmt.Errorf("its record: %w", err)
	}
	fam, found, err := r.Store.GetMany(ctx, familyKey(t.Family), revokedKey(t.Family))
	if err != nil {
		return Family{}, nil, "", err
	}
	if found[1] {
		return Family{}, nil, "refresh family revoked", nil
	}
	if !found[0] {
		return Family{}, nil, "refresh family ended", nil
	}
	if f, err = decodeFamily(fam[0]); err != nil {
		return Family{}, nil, "", err
	}
	now := r.now()
	switch {
	case !now.Before(f.Until):
		return Family{}, nil, "refresh family past its absolute lifetime", nil
	case !now.Before(f.IdleUntil):
		return Family{}, nil, "refresh family idle too long", nil
	case f.Generation != t.Generation:
		// The family moved on, so this token was used: its used mark,
		// claimed after the read above, says by whom.
		e, ok, err := r.Store.Get(ctx, usedTokenKey(h))
		if err != nil {
			return Family{}, nil, "", err
		}
		if ok {
			return Family{}, &e, "refresh token already used", nil
		}
		return Family{}, nil, "refresh token superseded", nil
	}
	return f, nil, "", nil
}

// Rotate redeems token for clientID: it returns the family as it now
// stands, with newTokenID (the access token the caller issues alongside,
// until tokenExpires) as its last token, and a new refresh token; the
// old one is used up. Of two rotations of one token, one at most
// succeeds: the other is reuse.
//
// Reuse of a used token, by anyone, revokes the family and returns
// *ReuseError. A token presented by another client is ErrInvalidGrant and
// stays usable by its own. A store failure after the token is used up
// leaves it used: the client's retry is reuse and ends the family, the
// safe side of an outage.
func (r Refresh) Rotate(ctx context.Context, token, clientID, newTokenID string, tokenExpires time.Time) (Family, string, error) {
	return r.RotateIf(ctx, token, clientID, newTokenID, tokenExpires, nil)
}

// RotateIf is Rotate with check, which runs on the family once the token
// is found current and the client's, before the token is used up. An
// error from check is returned as it is and leaves the token as it was:
// a check that fails in an outage (the account, its ended sessions) must
// not spend the token that the client's retry needs, or the retry would
// be reuse and end the family.
func (r Refresh) RotateIf(ctx context.Context, token, clientID, newTokenID string, tokenExpires time.Time, check func(Family) error) (Family, string, error) {
	if !wellFormed(token) {
		return Family{}, "", invalid("malformed refresh token")
	}
	h := digest(token)
	f, used, reason, err := r.current(ctx, h)
	switch {
	case err != nil:
		return Family{}, "", fmt.Errorf("oauth: rotate refresh token: %w", err)
	case used != nil:
		return Family{}, "", r.reused(ctx, *used)
	case reason != "":
		return Family{}, "", invalid(reason)
	case clientID != f.ClientID:
		return Family{}, "", invalid("refresh token issued to another client")
	}
	if check != nil {
		if err := check(f); err != nil {
			return Family{}, "", err
		}
	}

	data, err := json.Marshal(tokenRecord{Family: f.ID, Generation: f.Generation})
	if err != nil {
		return Family{}, "", fmt.Errorf("oauth: rotate refresh token: %w", err)
	}
	won, err := r.Store.Claim(ctx, usedTokenKey(h), store.Entry{Value: f.Generation, Expires: f.Until, Data: data})
	if err != nil {
		return Family{}, "", fmt.Errorf("oauth: rotate refresh token: %w", err)
	}
	if !won {
		e, ok, err := r.Store.Get(ctx, usedTokenKey(h))
		if err != nil {
			return Family{}, "", fmt.Errorf("oauth: rotate refresh token: %w", err)
		}
		if !ok {
			return Family{}, "", invalid("refresh token already used")
		}
		return Family{}, "", r.reused(ctx, e)
	}

	last := f // what the family had issued before this rotation
	now := r.now()
	f.Generation++
	f.IdleUntil = earlier(now.Add(r.lifetimes().Idle), f.Until)
	f.TokenID, f.TokenExpires = newTokenID, tokenExpires
	fdata, err := json.Marshal(f)
	if err != nil {
		return Family{}, "", fmt.Errorf("oauth: rotate refresh token: %w", err)
	}
	if err := r.Store.Put(ctx, familyKey(f.ID), store.Entry{Value: f.Generation, Expires: f.Until, Data: fdata}); err != nil {
		return Family{}, "", fmt.Errorf("oauth: rotate refresh token: %w", err)
	}
	next, err := r.issue(ctx, f)
	if errors.Is(err, ErrInvalidGrant) {
		// A reuse revoked the family while this rotation ran; it may have
		// read the family before the write above, and named the access
		// token before this one: name that one too. newTokenID is never
		// issued.
		return Family{}, "", &ReuseError{Family: f.ID, TokenID: last.TokenID, TokenExpires: last.TokenExpires}
	}
	if err != nil {
		return Family{}, "", fmt.Errorf("oauth: rotate refresh token: %w", err)
	}
	return f, next, nil
}

// reused revokes the family of a used token and says so.
func (r Refresh) reused(ctx context.Context, used store.Entry) error {
	var t tokenRecord
	if err := json.Unmarshal(used.Data, &t); err != nil {
		return fmt.Errorf("oauth: refresh token reused: its record: %w", err)
	}
	f, _, err := r.Revoke(ctx, t.Family)
	if err != nil {
		return fmt.Errorf("oauth: refresh token reused, family %s: %w", t.Family, err)
	}
	return &ReuseError{Family: t.Family, TokenID: f.TokenID, TokenExpires: f.TokenExpires}
}

// Lookup returns the family of a refresh token that could be rotated now
// (for /revoke, which checks the client itself), and false for any other:
// unknown, used, expired or revoked. It changes nothing: a used token
// looked up is not reuse.
func (r Refresh) Lookup(ctx context.Context, token string) (Family, bool, error) {
	if !wellFormed(token) {
		return Family{}, false, nil
	}
	f, used, reason, err := r.current(ctx, digest(token))
	if err != nil {
		return Family{}, false, fmt.Errorf("oauth: look up refresh token: %w", err)
	}
	if used != nil || reason != "" {
		return Family{}, false, nil
	}
	return f, true, nil
}

// Revoke ends the family id: none of its refresh tokens works again. It
// returns the family as it stood, so that the caller revokes its last
// access token too, and false when there is no such family (never
// started, or ended). A family revoked before it starts never starts:
// a code replay may revoke it while the first redemption is starting it.
func (r Refresh) Revoke(ctx context.Context, id string) (Family, bool, error) {
	if id == "" {
		return Family{}, false, errors.New("oauth: revoke refresh family: no id")
	}
	// The mark outlives any family started by now; a family that ends
	// later (a longer Absolute before a configuration change) extends it.
	mark := store.Entry{Value: 1, Expires: r.now().Add(r.lifetimes().Absolute)}
	if err := r.Store.Put(ctx, revokedKey(id), mark); err != nil {
		return Family{}, false, fmt.Errorf("oauth: revoke refresh family: %w", err)
	}
	e, ok, err := r.Store.Get(ctx, familyKey(id))
	if err != nil {
		return Family{}, false, fmt.Errorf("oauth: revoke refresh family: %w", err)
	}
	if !ok {
		return Family{}, false, nil
	}
	f, err := decodeFamily(e)
	if err != nil {
		return Family{}, false, fmt.Errorf("oauth: revoke refresh family: %w", err)
	}
	if f.Until.After(mark.Expires) {
		mark.Expires = f.Until
		if err := r.Store.Put(ctx, revokedKey(id), mark); err != nil {
			return Family{}, false, fmt.Errorf("oauth: revoke refresh family: %w", err)
		}
	}
	return f, true, nil
}

func decodeFamily(e store.Entry) (Family, error) {
	var f Family
	if err := json.Unmarshal(e.Data, &f); err != nil {
		return Family{}, fmt.Errorf("family record: %w", err)
	}
	f.ID = f.Authorization.Family
	return f, nil
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
