package login

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/shared/session"
)

// Every way a session (a login through the hosted page, its refresh
// family) ends revokes every access token it issued, not only the last:
// a thief who rotated a stolen refresh token a few times, or who copied
// the access token beside it, keeps none of them once the family ends.
func TestFamilyEnd_RevokesEveryAccessTokenOfTheSession(t *testing.T) {
	tests := []struct {
		name   string
		client string
		// end ends the session that began with first and was renewed
		// into renewed (nil when the client has no refresh grant).
		end func(t *testing.T, ts *testServer, code string, first tokens, renewed []tokens)
	}{
		{"refresh token reuse", webClient, func(t *testing.T, ts *testServer, _ string, first tokens, _ []tokens) {
			oauthError(t, ts.refreshWith(webClient, first.Refresh), 400, "invalid_grant")
		}},
		{"authorization code replay", webClient, func(t *testing.T, ts *testServer, code string, _ tokens, _ []tokens) {
			oauthError(t, ts.exchange(webClient, code), 400, "invalid_grant")
		}},
		{"logout with the first ID token", webClient, func(t *testing.T, ts *testServer, _ string, first tokens, _ []tokens) {
			if r := ts.do("GET", "/logout?"+url.Values{"id_token_hint": {first.ID}}.Encode(), "", ""); r.Status != 200 {
				t.Fatalf("logout: %d %s", r.Status, r.Body)
			}
		}},
		{"the client revokes its refresh token", webClient, func(t *testing.T, ts *testServer, _ string, _ tokens, renewed []tokens) {
			last := renewed[len(renewed)-1]
			if r := ts.post("/revoke", url.Values{"client_id": {webClient}, "token": {last.Refresh}}); r.Status != 200 {
				t.Fatalf("revoke: %d %s", r.Status, r.Body)
			}
		}},
		{"logout from a client without refresh tokens", codeOnly, func(t *testing.T, ts *testServer, _ string, first tokens, _ []tokens) {
			if r := ts.do("GET", "/logout?"+url.Values{"id_token_hint": {first.ID}}.Encode(), "", ""); r.Status != 200 {
				t.Fatalf("logout: %d %s", r.Status, r.Body)
			}
		}},
		{"code replay at a client without refresh tokens", codeOnly, func(t *testing.T, ts *testServer, code string, _ tokens, _ []tokens) {
			oauthError(t, ts.exchange(codeOnly, code), 400, "invalid_grant")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			code := ts.code(t, ts.grant(tt.client, "ana"))
			first := okTokens(t, ts.exchange(tt.client, code))
			issued := []string{first.Access}
			var renewed []tokens
			if first.Refresh != "" {
				// Renewed twice, within the access tokens' hour: the
				// first two access tokens are still live.
				tok := first
				for range 2 {
					ts.clock.Advance(5 * time.Minute)
					tok = okTokens(t, ts.refreshWith(tt.client, tok.Refresh))
					renewed = append(renewed, tok)
					issued = append(issued, tok.Access)
				}
			}
			// Another session of the same person, which must live on.
			other := ts.codeFlow(t, tt.client)
			for i, a := range issued {
				if err := ts.verify(a); err != nil {
					t.Fatalf("access token %d before the end: %v", i, err)
				}
			}

			tt.end(t, ts, code, first, renewed)

			for i, a := range issued {
				if err := ts.verify(a); !errors.Is(err, session.ErrInvalid) {
					t.Errorf("access token %d of %d outlived its session's end: %v", i+1, len(issued), err)
				}
			}
			if err := ts.verify(other.Access); err != nil {
				t.Errorf("another session of the same person ended too: %v", err)
			}
		})
	}
}

// A person's sessions ended (cmd/admin sessions end, /revoke subject=…:
// a stolen password, say) while a code from before sat unredeemed: the
// code issues nothing. Its login precedes the end, as a refresh family's
// would, and without this check the thief who typed the password a
// moment before the end got a full hour of access token, issued after
// the end and so not refused by its mark.
func TestCodeGrant_RefusedAfterTheSessionsEnded(t *testing.T) {
	ts := newTestServer(t, nil)
	code := ts.code(t, ts.grant(webClient, "ana"))
	ops := ts.login(t, "ops", "ops-secret-pw")
	ts.clock.Advance(time.Second)
	if r := ts.do("POST", "/revoke", ctForm, form("subject", "ana"), "Authorization", "Bearer "+ops); r.Status != 200 {
		t.Fatalf("end ana's sessions: %d %s", r.Status, r.Body)
	}
	ts.clock.Advance(30 * time.Second) // still within the code's minute
	r := ts.exchange(webClient, code)
	oauthError(t, r, 400, "invalid_grant")
	// A login after the end is not affected.
	okTokens(t, ts.exchange(webClient, ts.code(t, ts.grant(webClient, "ana"))))
}

// A replay of the code that races with its first redemption revokes the
// login while the first is starting its refresh family: the first gets
// invalid_grant (start again), not a 503 that tells it to retry what can
// only be refused, and no token.
func TestCodeGrant_ALoginRevokedWhileRedeemedIsInvalidGrant(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.grant(webClient, "ana")
	code := ts.code(t, a)
	// What the racing replay does between Redeem and Start.
	if _, _, err := ts.refresh.Revoke(context.Background(), a.Family); err != nil {
		t.Fatal(err)
	}
	r := ts.exchange(webClient, code)
	oauthError(t, r, 400, "invalid_grant")
	if r.Header.Get("Retry-After") != "" {
		t.Errorf("Retry-After %q on a grant that can only be refused", r.Header.Get("Retry-After"))
	}
}
