package bearer

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/session"
)

func TestToken(t *testing.T) {
	tests := []struct {
		name, auth, cookieHeader, cookieName, want string
	}{
		{"bearer", "Bearer abc", "", "", "abc"},
		{"scheme is case-insensitive", "bearer abc", "", "", "abc"},
		{"basic is not a bearer", "Basic abc", "", "", ""},
		{"cookie when configured", "", "impo_session=xyz", "impo_session", "xyz"},
		{"cookie ignored when not configured", "", "impo_session=xyz", "", ""},
		{"header wins over cookie", "Bearer abc", "impo_session=xyz", "impo_session", "abc"},
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
			if got := Token(r, tt.cookieName); got != tt.want {
				t.Errorf("Token = %q, want %q", got, tt.want)
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
		{"keys unavailable", "Bearer eyJhbGciOiJFZERTQSIsImtpZCI6ImsiLCJ0eXAiOiJhdCtqd3QifQ.e30.AAAA", outage, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &session.Verifier{Keys: func(context.Context) (session.PublicKeys, error) { return nil, tt.keysErr }}
			r := httptest.NewRequest("GET", "/", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			_, err := Authenticate(r, v, "")
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
