package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"impo.com.uy/copetes/backend/shared/store"
)

// CodeTTL is how long an authorization code can be redeemed. The client
// redeems it at once, from the page the redirect loaded; RFC 6749 §4.1.2
// recommends at most ten minutes, and a minute leaves a leaked code
// little time.
const CodeTTL = 60 * time.Second

// Codes issues and redeems authorization codes.
//
// A code's record is at authz-code:<sha256>, for CodeTTL. Redeeming it
// claims authz-code-used:<sha256>, whose Data names what the redemption
// issued: of two instances redeeming one code at once, one wins, and the
// other (or any later replay, for as long as the access token lives)
// learns what to revoke.
type Codes struct {
	Store store.Store
	Now   func() time.Time // nil: time.Now
}

// codeRecord is a code's record: what was granted and the PKCE challenge
// that the redeemer must answer.
type codeRecord struct {
	Authorization Authorization `json:"authorization"`
	Challenge     string        `json:"code_challenge"`
}

// redemption is what a code's first redemption issued.
type redemption struct {
	Family       string    `json:"family"`
	TokenID      string    `json:"jti"`
	TokenExpires time.Time `json:"token_expires"`
}

func codeKey(h string) string     { return "authz-code:" + h }
func usedCodeKey(h string) string { return "authz-code-used:" + h }

// Issue stores a for CodeTTL, bound to the PKCE S256 challenge, and
// returns the code to send to a.RedirectURI.
func (c Codes) Issue(ctx context.Context, a Authorization, challenge string) (string, error) {
	if err := CheckChallenge(challenge); err != nil {
		return "", fmt.Errorf("oauth: issue code: %w", err)
	}
	if a.ClientID == "" || a.RedirectURI == "" || a.Subject == "" || a.Family == "" {
		return "", errors.New("oauth: issue code: the authorization needs a client, a redirect URI, a subject and a family")
	}
	data, err := json.Marshal(codeRecord{Authorization: a, Challenge: challenge})
	if err != nil {
		return "", fmt.Errorf("oauth: issue code: %w", err)
	}
	code := newSecret()
	e := store.Entry{Value: 1, Expires: clock(c.Now).Add(CodeTTL), Data: data}
	if err := c.Store.Put(ctx, codeKey(digest(code)), e); err != nil {
		return "", fmt.Errorf("oauth: issue code: %w", err)
	}
	return code, nil
}

// Redeem checks the client, the redirect URI and the PKCE verifier against
// what the code was issued for, and consumes the code. It returns the
// authorization and a fresh access token id (jti): the caller must put
// that id in the access token it issues, valid for tokenTTL, so that a
// replay (*ReplayError) can name it for revocation.
//
// A second redemption, by anyone, is *ReplayError. A mismatch (wrong
// client, redirect URI or verifier) is ErrInvalidGrant and leaves the code
// for its rightful redeemer: whoever sends it without the verifier cannot
// use it, and should not be able to spoil it.
func (c Codes) Redeem(ctx context.Context, code, clientID, redirectURI, verifier string, tokenTTL time.Duration) (Authorization, string, error) {
	return c.RedeemIf(ctx, code, clientID, redirectURI, verifier, tokenTTL, nil)
}

// RedeemIf is Redeem with check, which runs on the code's authorization
// once the client, redirect URI and verifier match, before the code is
// used up. An error from check is returned as it is and leaves the code
// as it was: whatever the caller must still verify (the account, its
// ended sessions), and may fail to verify in an outage, costs the client
// nothing that its retry would need.
func (c Codes) RedeemIf(ctx context.Context, code, clientID, redirectURI, verifier string, tokenTTL time.Duration, check func(Authorization) error) (Authorization, string, error) {
	if tokenTTL <= 0 {
		return Authorization{}, "", fmt.Errorf("oauth: redeem code: token lifetime %v", tokenTTL)
	}
	if !wellFormed(code) {
		return Authorization{}, "", invalid("malformed authorization code")
	}
	h := digest(code)
	entries, found, err := c.Store.GetMany(ctx, codeKey(h), usedCodeKey(h))
	if err != nil {
		return Authorization{}, "", fmt.Errorf("oauth: redeem code: %w", err)
	}
	if found[1] {
		return Authorization{}, "", replayed(entries[1])
	}
	now := clock(c.Now)
	if !found[0] || !now.Before(entries[0].Expires) {
		return Authorization{}, "", invalid("unknown or expired authorization code")
	}
	var rec codeRecord
	if err := json.Unmarshal(entries[0].Data, &rec); err != nil {
		return Authorization{}, "", fmt.Errorf("oauth: redeem code: its record: %w", err)
	}
	a := rec.Authorization
	switch {
	case clientID != a.ClientID:
		return Authorization{}, "", invalid("authorization code issued to another client")
	case redirectURI != a.RedirectURI:
		return Authorization{}, "", invalid("redirect_uri differs from the authorization request's")
	case CheckVerifier(verifier) != nil:
		return Authorization{}, "", invalid("malformed code_verifier")
	case subtle.ConstantTimeCompare([]byte(S256(verifier)), []byte(rec.Challenge)) != 1:
		return Authorization{}, "", invalid("code_verifier does not match the code_challenge")
	}
	if check != nil {
		if err := check(a); err != nil {
			return Authorization{}, "", err
		}
	}

	first := redemption{Family: a.Family, TokenID: NewTokenID(), TokenExpires: now.Add(tokenTTL)}
	data, err := json.Marshal(first)
	if err != nil {
		return Authorization{}, "", fmt.Errorf("oauth: redeem code: %w", err)
	}
	// The mark outlives the code (so the code is never redeemable without
	// it) and the access token (so a replay can still revoke that).
	used := store.Entry{Value: 1, Expires: later(entries[0].Expires, first.TokenExpires), Data: data}
	won, err := c.Store.Claim(ctx, usedCodeKey(h), used)
	if err != nil {
		return Authorization{}, "", fmt.Errorf("oauth: redeem code: %w", err)
	}
	if !won {
		// Another redemption of this code won the race just now.
		e, ok, err := c.Store.Get(ctx, usedCodeKey(h))
		if err != nil {
			return Authorization{}, "", fmt.Errorf("oauth: redeem code: %w", err)
		}
		if !ok {
			return Authorization{}, "", invalid("authorization code already redeemed")
		}
		return Authorization{}, "", replayed(e)
	}
	return a, first.TokenID, nil
}

// replayed is the *ReplayError that a code's used mark describes.
func replayed(used store.Entry) error {
	var r redemption
	if err := json.Unmarshal(used.Data, &r); err != nil {
		return fmt.Errorf("oauth: redeem code: its used mark: %w", err)
	}
	return &ReplayError{Family: r.Family, TokenID: r.TokenID, TokenExpires: r.TokenExpires}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
