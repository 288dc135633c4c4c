// Package bearer authenticates HTTP requests by the session token they
// carry (RFC 6750), answering 401 or 503 as the failure deserves.
package bearer

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/session"
)

// Token returns the request's session token: from "Authorization: Bearer",
// else from the session cookie when one is configured, else "".
func Token(r *http.Request, cookie string) string {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok)
	}
	if cookie != "" {
		if c, err := r.Cookie(cookie); err == nil {
			return c.Value
		}
	}
	return ""
}

// Challenge is the 401 for a request without a usable token (RFC 6750 §3).
func Challenge(detail, errCode string) *httpapi.Error {
	h := `Bearer realm="impo"`
	if errCode != "" {
		h += `, error="` + errCode + `"`
	}
	return &httpapi.Error{Status: http.StatusUnauthorized, Detail: detail, Header: httpapi.Header("WWW-Authenticate", h)}
}

// Authenticate verifies the request's session token. A missing or invalid
// token is a 401 with WWW-Authenticate; a check that could not be made
// (keys or store unavailable) is a 503, never a pass.
func Authenticate(r *http.Request, v *session.Verifier, cookie string) (session.Claims, error) {
	tok := Token(r, cookie)
	if tok == "" {
		return session.Claims{}, Challenge("a session token is required: Authorization: Bearer <token>", "")
	}
	c, err := v.Verify(r.Context(), tok)
	switch {
	case errors.Is(err, session.ErrInvalid):
		return session.Claims{}, Challenge("the session token is invalid, expired or revoked", "invalid_token")
	case err != nil:
		return session.Claims{}, &httpapi.Error{Status: http.StatusServiceUnavailable, Detail: "cannot verify session tokens right now", Err: err, RetryAfter: 5 * time.Second}
	}
	return c, nil
}
