package oauth_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/shared/oauth"
	"impo.com.uy/copetes/backend/shared/store"
)

const tokenTTL = time.Hour

func issue(t *testing.T, e *env, a oauth.Authorization) string {
	t.Helper()
	code, err := e.codes.Issue(ctx, a, challenge)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return code
}

func TestCodes_Redeem(t *testing.T) {
	for _, c := range []struct {
		name                            string
		clientID, redirectURI, verifier string
		noVerifier                      bool
		wait                            time.Duration
		reason                          string // "" for success
	}{
		{name: "right", wait: oauth.CodeTTL - time.Millisecond},
		{name: "expired", wait: oauth.CodeTTL, reason: "expired"},
		{name: "another client", clientID: "intruso", reason: "another client"},
		{name: "another redirect URI", redirectURI: "https://portal.example/callback/", reason: "redirect_uri"},
		{name: "wrong verifier", verifier: strings.Repeat("b", 43), reason: "does not match"},
		{name: "the challenge as verifier", verifier: challenge, reason: "does not match"},
		{name: "short verifier", verifier: verifier[:42], reason: "malformed code_verifier"},
		{name: "no verifier", noVerifier: true, reason: "malformed code_verifier"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			a := grant(e)
			code := issue(t, e, a)
			clientID, redirectURI, v := a.ClientID, a.RedirectURI, verifier
			if c.clientID != "" {
				clientID = c.clientID
			}
			if c.redirectURI != "" {
				redirectURI = c.redirectURI
			}
			if c.verifier != "" || c.noVerifier {
				v = c.verifier
			}
			e.clock.Advance(c.wait)
			got, tokenID, err := e.codes.Redeem(ctx, code, clientID, redirectURI, v, tokenTTL)
			if c.reason != "" {
				if !errors.Is(err, oauth.ErrInvalidGrant) || !strings.Contains(err.Error(), c.reason) {
					t.Fatalf("Redeem = %v; want invalid grant (%s)", err, c.reason)
				}
				var replay *oauth.ReplayError
				if errors.As(err, &replay) {
					t.Fatalf("Redeem = %v; a refused redemption is no replay", err)
				}
				if c.wait == 0 {
					// A mismatch leaves the code to its rightful redeemer.
					if _, _, err := e.codes.Redeem(ctx, code, a.ClientID, a.RedirectURI, verifier, tokenTTL); err != nil {
						t.Fatalf("the right redemption after a refused one: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Redeem: %v", err)
			}
			if diff := cmp.Diff(a, got); diff != "" {
				t.Errorf("Redeem returned another authorization (-issued +redeemed):\n%s", diff)
			}
			if len(tokenID) != 22 {
				t.Errorf("token id %q: want 22 base64url characters (128 bits)", tokenID)
			}
		})
	}
}

func TestCodes_ReplayNamesWhatTheFirstIssued(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	code := issue(t, e, a)
	_, tokenID, err := e.codes.Redeem(ctx, code, a.ClientID, a.RedirectURI, verifier, tokenTTL)
	if err != nil {
		t.Fatal(err)
	}
	firstExpires := e.clock.Now().Add(tokenTTL)

	// Replays are caught while the code lives and after, for as long as
	// the access token the first redemption issued; whoever replays, with
	// whatever verifier (a thief may have the code without it).
	for _, c := range []struct {
		name     string
		wait     time.Duration
		verifier string
	}{
		{"at once", 0, verifier},
		{"without the verifier", 0, strings.Repeat("x", 43)},
		{"after the code's expiry", oauth.CodeTTL, verifier},
		{"just before the access token's expiry", tokenTTL - oauth.CodeTTL - time.Millisecond, verifier},
	} {
		e.clock.Advance(c.wait)
		_, _, err := e.codes.Redeem(ctx, code, a.ClientID, a.RedirectURI, c.verifier, tokenTTL)
		var replay *oauth.ReplayError
		if !errors.As(err, &replay) || !errors.Is(err, oauth.ErrInvalidGrant) {
			t.Fatalf("%s: second Redeem = %v; want *ReplayError, an invalid grant", c.name, err)
		}
		want := oauth.ReplayError{Family: a.Family, TokenID: tokenID, TokenExpires: firstExpires}
		if !replay.TokenExpires.Equal(want.TokenExpires) || replay.Family != want.Family || replay.TokenID != want.TokenID {
			t.Fatalf("%s: replay names %+v; want %+v", c.name, *replay, want)
		}
		if strings.Contains(err.Error(), code) {
			t.Fatalf("the error text holds the code: %q", err)
		}
	}
	// Once the first access token has expired there is nothing to revoke.
	e.clock.Advance(time.Millisecond)
	_, _, err = e.codes.Redeem(ctx, code, a.ClientID, a.RedirectURI, verifier, tokenTTL)
	var replay *oauth.ReplayError
	if !errors.Is(err, oauth.ErrInvalidGrant) || errors.As(err, &replay) {
		t.Fatalf("Redeem after the first token expired = %v; want a plain invalid grant", err)
	}
}

func TestCodes_ConcurrentRedemptionsOneWins(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := grant(e)
		code := issue(t, e, a)
		const n = 8
		ids := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, ids[i], errs[i] = e.codes.Redeem(ctx, code, a.ClientID, a.RedirectURI, verifier, tokenTTL)
			})
		}
		wg.Wait()
		winner := ""
		for i, err := range errs {
			if err == nil {
				if winner != "" {
					t.Fatalf("two redemptions of one code won")
				}
				winner = ids[i]
			}
		}
		if winner == "" {
			t.Fatalf("no redemption won: %v", errs)
		}
		for _, err := range errs {
			var replay *oauth.ReplayError
			if err != nil && (!errors.As(err, &replay) || replay.TokenID != winner || replay.Family != a.Family) {
				t.Errorf("a losing redemption: %v; want *ReplayError naming the winner's token %s", err, winner)
			}
		}
	})
}

func TestCodes_StoreHoldsOnlyTheDigest(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	code := issue(t, e, a)
	if _, _, err := e.codes.Redeem(ctx, code, a.ClientID, a.RedirectURI, verifier, tokenTTL); err != nil {
		t.Fatal(err)
	}
	if e.store.contains(code) {
		t.Fatal("a store key or record holds the code")
	}
	if e.store.contains(verifier) {
		t.Fatal("a store key or record holds the verifier")
	}
	entries, found, err := e.store.GetMany(ctx, "authz-code:"+sha256hex(code), "authz-code-used:"+sha256hex(code))
	if err != nil || !found[0] || !found[1] {
		t.Fatalf("the code's record and used mark under its SHA-256: %v, %v", found, err)
	}
	if !strings.Contains(string(entries[0].Data), challenge) {
		t.Errorf("the code's record %s lacks its challenge", entries[0].Data)
	}
}

func TestCodes_Refusals(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	// Malformed codes are refused before the store is asked.
	e.store.fail = store.ErrUnavailable
	for _, code := range []string{"", "abc", strings.Repeat("A", 44), strings.Repeat("+", 43)} {
		if _, _, err := e.codes.Redeem(ctx, code, a.ClientID, a.RedirectURI, verifier, tokenTTL); !errors.Is(err, oauth.ErrInvalidGrant) {
			t.Errorf("Redeem(%q) = %v; want invalid grant", code, err)
		}
	}
	e.store.fail = nil
	if _, err := e.codes.Issue(ctx, a, "plain-challenge"); err == nil || errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("Issue with a non-S256 challenge: %v; want refused, not as a grant error", err)
	}
	noFamily := a
	noFamily.Family = ""
	if _, err := e.codes.Issue(ctx, noFamily, challenge); err == nil {
		t.Error("Issue of an authorization without a family: accepted")
	}
	code := issue(t, e, a)
	if _, _, err := e.codes.Redeem(ctx, code, a.ClientID, a.RedirectURI, verifier, 0); err == nil {
		t.Error("Redeem with no token lifetime: accepted")
	}
}

func TestCodes_StoreOutageIsNotAGrantError(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	code := issue(t, e, a)
	e.store.fail = store.ErrUnavailable
	if _, err := e.codes.Issue(ctx, a, challenge); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Issue with the store down: %v; want ErrUnavailable", err)
	}
	_, _, err := e.codes.Redeem(ctx, code, a.ClientID, a.RedirectURI, verifier, tokenTTL)
	if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, oauth.ErrInvalidGrant) {
		t.Fatalf("Redeem with the store down: %v; want ErrUnavailable, not invalid grant", err)
	}
	e.store.fail = nil
	if _, _, err := e.codes.Redeem(ctx, code, a.ClientID, a.RedirectURI, verifier, tokenTTL); err != nil {
		t.Fatalf("Redeem once the store is back: %v", err)
	}
}

// A check that fails leaves the code for the retry, within its minute;
// a code that does not match (client, redirect URI, verifier) never
// reaches the check.
func TestCodes_RedeemIfChecksBeforeSpending(t *testing.T) {
	e := newEnv(t)
	a := grant(e)
	code, err := e.codes.Issue(ctx, a, challenge)
	if err != nil {
		t.Fatal(err)
	}
	outage := errors.New("accounts unreadable")
	_, _, err = e.codes.RedeemIf(ctx, code, a.ClientID, a.RedirectURI, verifier, tokenTTL,
		func(got oauth.Authorization) error {
			if got.Subject != a.Subject || got.Family != a.Family {
				t.Errorf("the check saw %+v", got)
			}
			return outage
		})
	if err != outage {
		t.Fatalf("RedeemIf with a failing check: %v, want the check's error as it is", err)
	}
	_, _, err = e.codes.RedeemIf(ctx, code, a.ClientID, a.RedirectURI, strings.Repeat("a", 43), tokenTTL,
		func(oauth.Authorization) error { t.Fatal("checked a code whose verifier is wrong"); return nil })
	if !errors.Is(err, oauth.ErrInvalidGrant) {
		t.Fatalf("wrong verifier: %v", err)
	}
	if _, _, err := e.codes.Redeem(ctx, code, a.ClientID, a.RedirectURI, verifier, tokenTTL); err != nil {
		t.Fatalf("the retry: %v", err)
	}
}
