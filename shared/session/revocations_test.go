package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/store"
)

// countingStore counts the reads a verifier makes, and can fail them.
type countingStore struct {
	store.Store
	gets, batches atomic.Int64
	fail          error
}

func (s *countingStore) Get(ctx context.Context, key string) (store.Entry, bool, error) {
	s.gets.Add(1)
	if s.fail != nil {
		return store.Entry{}, false, s.fail
	}
	return s.Store.Get(ctx, key)
}

func (s *countingStore) GetMany(ctx context.Context, keys ...string) ([]store.Entry, []bool, error) {
	s.batches.Add(1)
	if s.fail != nil {
		return nil, nil, s.fail
	}
	return s.Store.GetMany(ctx, keys...)
}

func refusedFor(t *testing.T, err error, reason string) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), reason) {
		t.Fatalf("Verify = %v, want ErrInvalid (%s)", err, reason)
	}
}

func TestEndSessions_RefusesTheSubjectsEarlierTokensOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	other, _, _ := f.issuer.Issue(ctx, "bea", "user", nil)
	if _, err := f.verifier.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(400 * time.Millisecond)
	if err := f.verifier.Revocations.EndSessions(ctx, "ana", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	refusedFor(t, verifyErr(f, old), ReasonEnded)
	if err := verifyErr(f, other); err != nil {
		t.Fatalf("ending ana's sessions refused bea's token: %v", err)
	}
	// iat is in whole seconds: a token of the same second as the end may
	// precede it, and is refused too.
	sameSecond, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	refusedFor(t, verifyErr(f, sameSecond), ReasonEnded)
	f.clock.Advance(time.Second)
	fresh, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	if err := verifyErr(f, fresh); err != nil {
		t.Fatalf("a token issued after the sessions were ended is refused: %v", err)
	}
}

func verifyErr(f *fixture, token string) error {
	_, err := f.verifier.Verify(context.Background(), token)
	return err
}

func TestEndSessions_AMarkAheadHoldsUntilReopened(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rev := f.verifier.Revocations
	// A disabled account: refused ahead, while login may not know yet.
	if err := rev.EndSessions(ctx, "ana", f.clock.Now().Add(12*time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	meanwhile, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	refusedFor(t, verifyErr(f, meanwhile), ReasonEnded)
	// A session-admin ending the sessions now does not shorten the mark.
	if err := rev.EndSessions(ctx, "ana", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	later, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	refusedFor(t, verifyErr(f, later), ReasonEnded)
	// Enabled again: what is issued from the next second on is accepted,
	// what was issued while disabled stays refused.
	if err := rev.ReopenSessions(ctx, "ana", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	refusedFor(t, verifyErr(f, later), ReasonEnded)
	f.clock.Advance(time.Second)
	again, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	if err := verifyErr(f, again); err != nil {
		t.Fatalf("a token issued after the account was reopened: %v", err)
	}
}

func TestEndSessions_TheMarkOutlivesEveryTokenItRefuses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.issuer.TTL = 12 * time.Hour // the longest SESSION_TTL
	f.verifier.Leeway = MaxLeeway
	token, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	if err := f.verifier.Revocations.EndSessions(ctx, "ana", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	// The last moment a verifier with the most leeway still takes the
	// token by its expiry: only the mark refuses it.
	f.clock.Advance(12*time.Hour + MaxLeeway - time.Second)
	refusedFor(t, verifyErr(f, token), ReasonEnded)
}

func TestRefused_ReadsRevocationAndMarkInOneRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	st := &countingStore{Store: f.store}
	f.verifier.Revocations.Store = st
	token, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	for range 2 { // the first full verification, then a seen token
		if err := verifyErr(f, token); err != nil {
			t.Fatal(err)
		}
	}
	if g, b := st.gets.Load(), st.batches.Load(); g != 0 || b != 2 {
		t.Fatalf("two verifications made %d Gets and %d GetManys; want one GetMany each", g, b)
	}
}

func TestRefused_StoreOutageIsNotARefusal(t *testing.T) {
	f := newFixture(t)
	token, _, _ := f.issuer.Issue(context.Background(), "ana", "user", nil)
	f.verifier.Revocations.Store = &countingStore{Store: f.store, fail: fmt.Errorf("%w: down", store.ErrUnavailable)}
	err := verifyErr(f, token)
	if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, ErrInvalid) {
		t.Fatalf("Verify with the store down = %v; want ErrUnavailable, not ErrInvalid, so the caller answers 503", err)
	}
}

// TestRevocations_CacheBoundsTheDelay: another instance's "accepted" cache
// delays a revocation or an ended session by less than CacheFor, never
// more; the instance that made it refuses at once, cache or not.
func TestRevocations_CacheBoundsTheDelay(t *testing.T) {
	ctx := context.Background()
	end := map[string]func(r Revocations, c Claims, now time.Time) error{
		"revoked": func(r Revocations, c Claims, _ time.Time) error { return r.Revoke(ctx, c) },
		"ended":   func(r Revocations, c Claims, now time.Time) error { return r.EndSessions(ctx, c.Subject, now) },
		"session": func(r Revocations, c Claims, now time.Time) error { return r.RevokeSession(ctx, c.SessionID, now) },
	}
	for name, end := range end {
		t.Run(name, func(t *testing.T) {
			clk := testclock.New(t0)
			st := store.NewMemory(clk.Now)
			here := NewRevocations(st, 10*time.Second, clk.Now)
			there := NewRevocations(st, 10*time.Second, clk.Now) // another instance
			c := Claims{ID: "j1", Subject: "ana", SessionID: "s1", IssuedAt: t0.Unix(), Expiry: t0.Add(time.Hour).Unix()}
			for _, r := range []Revocations{here, there} { // both have it cached
				if why, err := r.Refused(ctx, c); why != "" || err != nil {
					t.Fatalf("refused before anyone ended it: %q, %v", why, err)
				}
			}
			if err := end(here, c, clk.Now()); err != nil {
				t.Fatal(err)
			}
			if why, _ := here.Refused(ctx, c); why == "" {
				t.Fatal("the instance that ended it does not refuse it at once")
			}
			clk.Advance(9 * time.Second)
			if why, _ := there.Refused(ctx, c); why != "" {
				t.Fatal("the cache did not hold within its bound (the test would prove nothing)")
			}
			clk.Advance(time.Second)
			if why, _ := there.Refused(ctx, c); why == "" {
				t.Fatal("another instance still accepts the token past the cache bound")
			}
		})
	}
}

func TestReopenSessions_WithoutAMarkWritesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.verifier.Revocations.ReopenSessions(ctx, "ana", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := f.store.Get(ctx, notBeforeKey("ana")); found {
		t.Fatal("reopening an account that was never ended wrote a mark")
	}
}

// RevokeSession refuses every token that carries the session id (sid),
// whenever it was issued, and no other: a login's refresh family ends
// with every access token it issued, not only the last one login knows.
func TestRevokeSession_RefusesEveryTokenOfTheSessionOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	issue := func(sid string) string {
		t.Helper()
		tok, c, err := f.issuer.IssueFor(ctx, Grant{Subject: "ana", Kind: "user", ClientID: "web", SessionID: sid})
		if err != nil {
			t.Fatal(err)
		}
		if c.SessionID != sid {
			t.Fatalf("issued claims carry sid %q, want %q", c.SessionID, sid)
		}
		return tok
	}
	first := issue("s1")
	f.clock.Advance(10 * time.Minute)
	second := issue("s1")
	otherSession, noSession := issue("s2"), issue("")
	for _, tok := range []string{first, second, otherSession, noSession} {
		if err := verifyErr(f, tok); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := f.verifier.Verify(ctx, second); c.SessionID != "s1" {
		t.Errorf("verified claims carry sid %q, want s1", c.SessionID)
	}
	if err := f.verifier.Revocations.RevokeSession(ctx, "s1", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	refusedFor(t, verifyErr(f, first), ReasonRevoked)
	refusedFor(t, verifyErr(f, second), ReasonRevoked)
	// One a rotation racing with the revocation signs just after it.
	f.clock.Advance(time.Second)
	refusedFor(t, verifyErr(f, issue("s1")), ReasonRevoked)
	for _, tok := range []string{otherSession, noSession} {
		if err := verifyErr(f, tok); err != nil {
			t.Errorf("revoking session s1 refused a token of another: %v", err)
		}
	}
	// The mark outlives every token of the session it could refuse.
	e, found, _ := f.store.Get(ctx, revokedSessionKey("s1"))
	if !found || e.Expires.Before(t0.Add(10*time.Minute+MaxLifetime+MaxLeeway)) {
		t.Errorf("session mark %+v (found %v) ends before the session's tokens", e, found)
	}
	if err := f.verifier.Revocations.RevokeSession(ctx, "", f.clock.Now()); err == nil {
		t.Error("revoking the empty session id, which tokens without one have, succeeded")
	}
}
