package bearer

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/session"
)

func TestToken(t *testing.T) {
	tests := []struct {
		name, auth, cookieHeader, cookieName, want string
		fromCookie                                 bool
	}{
		{"bearer", "Bearer abc", "", "", "abc", false},
		{"scheme is case-insensitive", "bearer abc", "", "", "abc", false},
		{"basic is not a bearer", "Basic abc", "", "", "", false},
		{"cookie when configured", "", "impo_session=xyz", "impo_session", "xyz", true},
		{"cookie ignored when not configured", "", "impo_session=xyz", "", "", false},
		{"header wins over cookie", "Bearer abc", "impo_session=xyz", "impo_session", "abc", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if tt.cookieHeader != "" {
				r.Header.Set("Cookie", tt.cookieHeader)
			}
			if got, fromCookie := Token(r, tt.cookieName); got != tt.want || fromCookie != tt.fromCookie {
				t.Errorf("Token = %q, %v; want %q, %v", got, fromCookie, tt.want, tt.fromCookie)
			}
		})
	}
}

func TestAuthenticate_Statuses(t *testing.T) {
	outage := errors.New("store down")
	tests := []struct {
		name       string
		auth       string
		keysErr    error
		wantStatus int
	}{
		{"no token", "", nil, 401},
		{"garbage token", "Bearer x.y.z", nil, 401},
		// Well formed, down to a signature of 64 bytes: only the keys
		// can tell it is bad, and they cannot be had.
		{"keys unavailable", "Bearer eyJhbGciOiJFZERTQSIsImtpZCI6ImsiLCJ0eXAiOiJhdCtqd3QifQ.e30." + strings.Repeat("A", 86), outage, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &session.Verifier{Keys: func(context.Context) (session.PublicKeys, error) { return nil, tt.keysErr }}
			r := httptest.NewRequest("GET", "/", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			_, err := Authenticate(r, v, Cookie{})
			var he *httpapi.Error
			if !errors.As(err, &he) || he.Status != tt.wantStatus {
				t.Fatalf("Authenticate error = %v, want status %d", err, tt.wantStatus)
			}
			if tt.wantStatus == 401 && he.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// TestAuthenticate_CookieNeedsATrustedOrigin: the browser attaches the
// session cookie to whatever any page sends, so a cookie alone proves
// nothing about who sent the request (CSRF). Each attack below carries a
// valid cookie and must be refused before the token is even verified.
func TestAuthenticate_CookieNeedsATrustedOrigin(t *testing.T) {
	const portal = "https://portal.impo.test"
	cookie := Cookie{Name: "impo_session", Origins: []string{portal}}
	tests := []struct {
		name       string
		header     []string
		wantStatus int // 0: verified (here, a 401 from the test verifier)
	}{
		{"cross-site form post", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"sibling subdomain, which SameSite=Strict lets through", []string{"Origin", "https://evil.impo.test", "Sec-Fetch-Site", "same-site"}, 403},
		{"sandboxed frame", []string{"Origin", "null", "Sec-Fetch-Site", "cross-site"}, 403},
		{"no origin at all", nil, 403},
		{"listed origin", []string{"Origin", portal, "Sec-Fetch-Site", "same-site"}, 0},
		{"listed origin, older browser without Fetch Metadata", []string{"Origin", portal}, 0},
		{"same-origin page", []string{"Origin", "https://api.impo.test", "Sec-Fetch-Site", "same-origin"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verified := false
			v := &session.Verifier{Keys: func(context.Context) (session.PublicKeys, error) {
				verified = true
				return nil, nil
			}}
			r := httptest.NewRequest("POST", "/", nil)
			r.Header.Set("Cookie", "impo_session=eyJhbGciOiJFZERTQSIsImtpZCI6ImsiLCJ0eXAiOiJhdCtqd3QifQ.e30.AAAA")
			for i := 0; i+1 < len(tt.header); i += 2 {
				r.Header.Set(tt.header[i], tt.header[i+1])
			}
			_, err := Authenticate(r, v, cookie)
			var he *httpapi.Error
			if !errors.As(err, &he) {
				t.Fatalf("Authenticate error = %v, want an *httpapi.Error", err)
			}
			if tt.wantStatus == 403 {
				if he.Status != 403 || verified {
					t.Fatalf("Authenticate = %d (verified: %v), want 403 before verifying", he.Status, verified)
				}
				return
			}
			if he.Status != 401 {
				t.Fatalf("Authenticate = %d %s, want the token verified (401 for this test token)", he.Status, he.Detail)
			}
		})
	}

	// The same request with the token in the header needs no origin: no
	// page can make a browser add an Authorization header.
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Origin", "https://evil.example")
	r.Header.Set("Authorization", "Bearer x.y.z")
	r.Header.Set("Cookie", "impo_session=x.y.z")
	var he *httpapi.Error
	v := &session.Verifier{Keys: func(context.Context) (session.PublicKeys, error) { return nil, nil }}
	if _, err := Authenticate(r, v, cookie); !errors.As(err, &he) || he.Status != 401 {
		t.Fatalf("bearer header from any origin: %v, want the token verified (401)", err)
	}
}
