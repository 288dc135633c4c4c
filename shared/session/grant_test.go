package session

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestIssueFor_CarriesTheClientAndTheChosenID(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name         string
		g            Grant
		wantClientID string
		wantID       string // "" for any fresh id
	}{
		{"the account asked itself", Grant{Subject: "ana", Kind: "user"}, "ana", ""},
		{"through a registered client, with a chosen jti", Grant{Subject: "ana", Kind: "user", Roles: []string{"editor"}, ClientID: "impo-web", ID: "chosen-jti"}, "impo-web", "chosen-jti"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, issued, err := f.issuer.IssueFor(ctx, tt.g)
			if err != nil {
				t.Fatal(err)
			}
			c, err := f.verifier.Verify(ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			if c.ClientID != tt.wantClientID || c.Subject != "ana" || c.ID != issued.ID || c.Roles == nil {
				t.Errorf("claims = %+v", c)
			}
			if tt.wantID != "" && c.ID != tt.wantID || tt.wantID == "" && len(c.ID) != 22 {
				t.Errorf("jti = %q, want %q (or 22 random characters)", c.ID, tt.wantID)
			}
		})
	}
	a, b := NewTokenID(), NewTokenID()
	if a == b || len(a) != 22 {
		t.Errorf("NewTokenID: %q, %q", a, b)
	}
}

// An EdDSA ID token verifies with the published key, but no session
// verifier takes it: its typ is not at+jwt.
func TestSignEdDSA_IsNoSessionToken(t *testing.T) {
	f := newFixture(t)
	claims := map[string]any{"iss": "https://login.test", "sub": "ana", "aud": "backend", "exp": t0.Add(time.Hour).Unix(), "iat": t0.Unix(), "jti": "x"}
	token, err := f.keys.SignEdDSA("JWT", claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Header
	if h.KeyID != f.kid || h.ExtraHeaders["typ"] != "JWT" {
		t.Errorf("header = %+v", h)
	}
	payload, err := jws.Verify(f.priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(payload, &got)
	if got["sub"] != "ana" {
		t.Errorf("payload = %s", payload)
	}
	if _, err := f.verifier.Verify(context.Background(), token); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a session verifier took an ID token: %v", err)
	}
	// Verifiers compare typ without case and take the media type's
	// "application/" prefix (RFC 7515 §4.1.9), and device tokens are
	// EdDSA too: SignEdDSA refuses each spelling of both.
	for _, typ := range []string{TokenType, "AT+JWT", "application/at+jwt", "Application/At+Jwt", DeviceTokenType, "application/DEVICE+jwt"} {
		if token, err := f.keys.SignEdDSA(typ, claims); err == nil {
			_, verr := f.verifier.Verify(context.Background(), token)
			t.Errorf("SignEdDSA signed a token typed %q, a session or device token's (a session verifier says %v)", typ, verr)
		}
	}
	if _, err := f.keys.SignEdDSA("JWT", []string{"x"}); err == nil {
		t.Fatal("SignEdDSA signed claims that are not a JSON object")
	}
}

func TestEndedAfter(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rev := f.verifier.Revocations
	login := f.clock.Now()
	if ended, err := rev.EndedAfter(ctx, "ana", login); err != nil || ended {
		t.Fatalf("no mark: %v, %v", ended, err)
	}
	f.clock.Advance(time.Hour)
	if err := rev.EndSessions(ctx, "ana", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	later := f.clock.Now()
	for _, tt := range []struct {
		name    string
		subject string
		since   time.Time
		want    bool
	}{
		{"a login before the end", "ana", login, true},
		{"a login after the end", "ana", later, false},
		{"another account", "bea", login, false},
	} {
		if ended, err := rev.EndedAfter(ctx, tt.subject, tt.since); err != nil || ended != tt.want {
			t.Errorf("%s: %v, %v; want %v", tt.name, ended, err, tt.want)
		}
	}
	down := &countingStore{Store: f.store, fail: errors.New("down")}
	if _, err := (Revocations{Store: down}).EndedAfter(ctx, "ana", login); err == nil {
		t.Fatal("a store outage answered")
	}
}
