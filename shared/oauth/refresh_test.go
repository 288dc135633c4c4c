package oauth_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/shared/oauth"
	"impo.com.uy/copetes/backend/shared/store"
)

// start begins a family for a, as the code grant does, and returns its
// first refresh token and access token id.
func start(t *testing.T, e *env, a oauth.Authorization) (token, tokenID string) {
	t.Helper()
	tokenID = oauth.NewTokenID()
	token, err := e.refresh.Start(ctx, a, tokenID, e.clock.Now().Add(tokenTTL))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return token, tokenID
}

// rotate rotates token for a's client, as the refresh grant does.
func rotate(e *env, a oauth.Authorization, token string) (oauth.Family, string, error) {
	return e.refresh.Rotate(ctx, token, a.ClientID, oauth.NewTokenID(), e.clock.Now().Add(tokenTTL))
}

func mustRotate(t *testing.T, e *env, a oauth.Authorization, token string) (oauth.Family, string) {
	t.Helper()
	f, next, err := rotate(e, a, token)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return f, next
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	var reuse *oauth.ReuseError
	if !errors.Is(err, oauth.ErrInvalidGrant) || errors.As(err, &reuse) {
		t.Fatalf("%s: %v; want a plain invalid grant", what, err)
	}
}

func wantReuse(t *testing.T, what string, err error) *oauth.ReuseError {
	t.Helper()
	var reuse *oauth.ReuseError
	if !errors.As(err, &reuse) || !errors.Is(err, oauth.ErrInvalidGrant) {
		t.Fatalf("%s: %v; want *ReuseError, an invalid grant", what, err)
	}
	return reuse
}

func TestRefresh_StartLookupRotate(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	t0 := e.clock.Now()
	first, firstID := start(t, e, a)
	if b, err := base64.RawURLEncoding.Strict().DecodeString(first); err != nil || len(b) != 32 {
		t.Fatalf("refresh token %q: want 32 bytes (256 bits) in base64url: %v", first, err)
	}

	f, ok, err := e.refresh.Lookup(ctx, first)
	if err != nil || !ok {
		t.Fatalf("Lookup of a new token = %v, %v", ok, err)
	}
	want := oauth.Family{
		ID: a.Family, Authorization: a, Started: t0, IdleUntil: t0.Add(8 * time.Hour), Until: t0.Add(12 * time.Hour),
		TokenID: firstID, TokenExpires: t0.Add(tokenTTL), Generation: 1,
	}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Fatalf("Lookup (-want +got):\n%s", diff)
	}

	e.clock.Advance(time.Hour)
	newID := oauth.NewTokenID()
	f, second, err := e.refresh.Rotate(ctx, first, a.ClientID, newID, e.clock.Now().Add(tokenTTL))
	if err != nil {
		t.Fatal(err)
	}
	want.Generation, want.TokenID, want.TokenExpires = 2, newID, e.clock.Now().Add(tokenTTL)
	want.IdleUntil = e.clock.Now().Add(8 * time.Hour) // the idle end slides with use
	if diff := cmp.Diff(want, f); diff != "" {
		t.Fatalf("Rotate (-want +got):\n%s", diff)
	}
	if second == first || len(second) != len(first) {
		t.Fatalf("rotation returned %q after %q; want a new token", second, first)
	}
	if _, ok, err := e.refresh.Lookup(ctx, first); ok || err != nil {
		t.Errorf("Lookup of the used token = %v, %v; want not found", ok, err)
	}
	// Looking a used token up is not reuse: the family lives on.
	if got, ok, err := e.refresh.Lookup(ctx, second); !ok || err != nil || got.Generation != 2 {
		t.Errorf("Lookup of the new token = %+v, %v, %v", got, ok, err)
	}
	mustRotate(t, e, a, second)
}

func TestRefresh_ReuseRevokesTheFamily(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	first, _ := start(t, e, a)
	_, second := mustRotate(t, e, a, first)
	f, third := mustRotate(t, e, a, second)

	// The first token again: a thief's copy, or the client's own
	// after the thief rotated; either way the family ends.
	for range 2 {
		_, _, err := rotate(e, a, first)
		if strings.Contains(err.Error(), first) {
			t.Fatalf("the error text holds the token: %q", err)
		}
		reuse := wantReuse(t, "reuse of the first token", err)
		if reuse.Family != a.Family || reuse.TokenID != f.TokenID || !reuse.TokenExpires.Equal(f.TokenExpires) {
			t.Fatalf("reuse names %+v; want family %s and the last access token %s", *reuse, a.Family, f.TokenID)
		}
	}
	_, _, err := rotate(e, a, third)
	wantInvalid(t, "the newest token after a reuse", err)
	if _, ok, err := e.refresh.Lookup(ctx, third); ok || err != nil {
		t.Errorf("Lookup of the newest token after a reuse = %v, %v; want not found", ok, err)
	}
}

func TestRefresh_Lifetimes(t *testing.T) {
	// lifetimes: idle 8h, absolute 12h. Each step waits, then rotates.
	for _, c := range []struct {
		name  string
		waits []time.Duration
		fails int // the step that fails, -1 for none
	}{
		{"used within the idle time", []time.Duration{8*time.Hour - time.Millisecond}, -1},
		{"idle too long", []time.Duration{8 * time.Hour}, 0},
		{"use slides the idle end", []time.Duration{5 * time.Hour, 5 * time.Hour}, -1},
		{"idle after a rotation", []time.Duration{time.Hour, 8 * time.Hour}, 1},
		{"up to the absolute end", []time.Duration{4 * time.Hour, 4 * time.Hour, 4*time.Hour - time.Millisecond}, -1},
		{"absolute end, however used", []time.Duration{4 * time.Hour, 4 * time.Hour, 4 * time.Hour}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			a := grant(e)
			token, _ := start(t, e, a)
			for i, wait := range c.waits {
				e.clock.Advance(wait)
				f, next, err := rotate(e, a, token)
				if i == c.fails {
					wantInvalid(t, fmt.Sprintf("rotation %d", i+1), err)
					return
				}
				if err != nil {
					t.Fatalf("rotation %d: %v", i+1, err)
				}
				if f.IdleUntil.After(f.Until) {
					t.Fatalf("idle end %v past the absolute end %v", f.IdleUntil, f.Until)
				}
				token = next
			}
		})
	}
}

func TestRefresh_BoundToItsClient(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	token, _ := start(t, e, a)
	_, _, err := e.refresh.Rotate(ctx, token, "intruso", oauth.NewTokenID(), e.clock.Now().Add(tokenTTL))
	wantInvalid(t, "rotation by another client", err)
	mustRotate(t, e, a, token) // still its own client's to use
}

func TestRefresh_Revoke(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	first, _ := start(t, e, a)
	last, second := mustRotate(t, e, a, first)
	for range 2 { // revoking twice names the same
		f, ok, err := e.refresh.Revoke(ctx, a.Family)
		if err != nil || !ok || f.ID != a.Family || f.TokenID != last.TokenID {
			t.Fatalf("Revoke = %+v, %v, %v; want the family with its last token %s", f, ok, err, last.TokenID)
		}
	}
	_, _, err := rotate(e, a, second)
	wantInvalid(t, "rotation after Revoke", err)
	if _, ok, err := e.refresh.Lookup(ctx, second); ok || err != nil {
		t.Errorf("Lookup after Revoke = %v, %v; want not found", ok, err)
	}
	// The revocation lasts as long as the family would have.
	e.clock.Advance(12*time.Hour - time.Millisecond)
	_, _, err = rotate(e, a, second)
	wantInvalid(t, "rotation just before the family's end", err)

	if _, ok, err := e.refresh.Revoke(ctx, oauth.NewFamilyID()); ok || err != nil {
		t.Errorf("Revoke of an unknown family = %v, %v; want false, nil", ok, err)
	}
}

func TestRefresh_RevokedBeforeItStarts(t *testing.T) {
	// A code replay may revoke the family while the first redemption is
	// about to start it: it must not start.
	e := newEnv(t)
	a := grant(e)
	if _, ok, err := e.refresh.Revoke(ctx, a.Family); ok || err != nil {
		t.Fatalf("Revoke before Start = %v, %v", ok, err)
	}
	_, err := e.refresh.Start(ctx, a, oauth.NewTokenID(), e.clock.Now().Add(tokenTTL))
	wantInvalid(t, "Start of a revoked family", err)
}

func TestRefresh_StoreHoldsOnlyTheDigest(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	first, _ := start(t, e, a)
	_, second := mustRotate(t, e, a, first)
	if _, _, err := rotate(e, a, first); err == nil {
		t.Fatal("reuse accepted")
	}
	for _, token := range []string{first, second} {
		if e.store.contains(token) {
			t.Fatalf("a store key or record holds the refresh token %q", token)
		}
	}
	keys := []string{"refresh:" + sha256hex(second), "refresh-used:" + sha256hex(first), "refresh-family:" + a.Family, "refresh-revoked:" + a.Family}
	_, found, err := e.store.GetMany(ctx, keys...)
	if err != nil || slices.Contains(found, false) {
		t.Fatalf("GetMany(%q) = %v, %v; want every key present", keys, found, err)
	}
}

func TestRefresh_Refusals(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	e.store.fail = store.ErrUnavailable // nothing below may reach the store
	for _, token := range []string{"", "x", first43('+'), first43('A') + "A"} {
		_, _, err := rotate(e, a, token)
		wantInvalid(t, fmt.Sprintf("Rotate(%q)", token), err)
		if _, ok, err := e.refresh.Lookup(ctx, token); ok || err != nil {
			t.Errorf("Lookup(%q) = %v, %v", token, ok, err)
		}
	}
	e.store.fail = nil
	start(t, e, a)
	if _, err := e.refresh.Start(ctx, a, oauth.NewTokenID(), e.clock.Now()); err == nil || errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("Start of an existing family: %v; want refused, not as a grant error", err)
	}
	bad := oauth.Refresh{Store: e.store, Now: e.clock.Now, Lifetimes: oauth.Lifetimes{Idle: 2 * time.Hour, Absolute: time.Hour}}
	if _, err := bad.Start(ctx, grant(e), "jti", e.clock.Now()); err == nil {
		t.Error("Start with an idle time past the absolute one: accepted")
	}
}

func first43(c byte) string { return string(slices.Repeat([]byte{c}, 43)) }

func TestRefresh_ZeroLifetimesAreTheDefaults(t *testing.T) {
	e := newEnv(t)
	e.refresh.Lifetimes = oauth.Lifetimes{}
	a := grant(e)
	token, _ := start(t, e, a)
	f, _, _ := e.refresh.Lookup(ctx, token)
	if got := f.Until.Sub(f.Started); got != oauth.DefaultLifetimes.Absolute {
		t.Errorf("absolute lifetime %v, want the default %v", got, oauth.DefaultLifetimes.Absolute)
	}
	if got := f.IdleUntil.Sub(f.Started); got != oauth.DefaultLifetimes.Idle {
		t.Errorf("idle lifetime %v, want the default %v", got, oauth.DefaultLifetimes.Idle)
	}
}

func TestRefresh_StoreOutageIsNotAGrantError(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	token, _ := start(t, e, a)
	e.store.fail = store.ErrUnavailable
	checks := map[string]error{}
	_, checks["Start"] = e.refresh.Start(ctx, grant(e), "jti", e.clock.Now())
	_, _, checks["Rotate"] = rotate(e, a, token)
	_, _, checks["Lookup"] = e.refresh.Lookup(ctx, token)
	_, _, checks["Revoke"] = e.refresh.Revoke(ctx, a.Family)
	for op, err := range checks {
		if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, oauth.ErrInvalidGrant) {
			t.Errorf("%s with the store down: %v; want ErrUnavailable, not invalid grant", op, err)
		}
	}
	e.store.fail = nil
	mustRotate(t, e, a, token) // nothing was used up
}

// Two rotations of one token race (two tabs, or a thief and the client):
// at most one gets a new token, the others are reuse (or find the family
// that reuse revoked), and the family ends either way. If one won, the
// reuse names the access token it issued; if the revocation overtook it,
// it names the one before.
func TestRefresh_ConcurrentRotations(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		rounds, racers := 20, 2
		if testing.Short() {
			rounds = 3
		}
		winners := 0
		defer func() { t.Logf("%d of %d rounds had a winner", winners, rounds) }()
		for round := range rounds {
			if round == rounds-1 {
				racers = 8
			}
			a := grant(e)
			token, firstID := start(t, e, a)
			type result struct {
				id, next string
				err      error
			}
			results := make([]result, racers)
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() {
					id := oauth.NewTokenID()
					_, next, err := e.refresh.Rotate(ctx, token, a.ClientID, id, e.clock.Now().Add(tokenTTL))
					results[i] = result{id, next, err}
				})
			}
			wg.Wait()
			var won []result
			named := map[string]bool{}
			for _, r := range results {
				var reuse *oauth.ReuseError
				switch {
				case r.err == nil:
					won = append(won, r)
				case errors.As(r.err, &reuse):
					named[reuse.TokenID] = true
				default:
					// It read the family revoked by another racer's reuse.
					wantInvalid(t, "a racing rotation", r.err)
				}
			}
			switch {
			case len(named) == 0:
				t.Fatalf("round %d: no rotation saw the reuse: %+v", round, results)
			case len(won) > 1:
				t.Fatalf("round %d: %d of %d rotations of one token won", round, len(won), racers)
			case len(won) == 1 && (len(named) != 1 || !named[won[0].id]):
				t.Fatalf("round %d: the reuse errors name %v; want only the winner's access token %s", round, named, won[0].id)
			case len(won) == 0 && !named[firstID]:
				t.Fatalf("round %d: no winner, and the reuse errors name %v, not the last issued %s", round, named, firstID)
			}
			winners += len(won)
			for _, r := range won {
				if _, ok, err := e.refresh.Lookup(ctx, r.next); ok || err != nil {
					t.Fatalf("round %d: the winner's token after the reuse: %v, %v; want revoked", round, ok, err)
				}
			}
			if _, _, err := rotate(e, a, token); !errors.Is(err, oauth.ErrInvalidGrant) {
				t.Fatalf("round %d: the raced token once more: %v", round, err)
			}
		}
	})
}

// A check that fails leaves the refresh token as it was: the caller's
// own checks (the account, ended sessions), which an outage can fail,
// run before the token is spent, so that the client's retry is not reuse.
func TestRefresh_RotateIfChecksBeforeSpending(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	token, _ := start(t, e, a)
	outage := errors.New("accounts unreadable")
	var seen oauth.Family
	_, _, err := e.refresh.RotateIf(ctx, token, a.ClientID, oauth.NewTokenID(), e.clock.Now().Add(tokenTTL),
		func(f oauth.Family) error { seen = f; return outage })
	if err != outage {
		t.Fatalf("RotateIf with a failing check: %v, want the check's error as it is", err)
	}
	if seen.ID != a.Family || seen.Subject != a.Subject {
		t.Errorf("the check saw %+v", seen)
	}
	// Another client's token never reaches the check.
	_, _, err = e.refresh.RotateIf(ctx, token, "other", oauth.NewTokenID(), e.clock.Now().Add(tokenTTL),
		func(oauth.Family) error { t.Fatal("checked another client's token"); return nil })
	wantInvalid(t, "another client", err)
	mustRotate(t, e, a, token)
}
