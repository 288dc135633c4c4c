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

// Cookie is cookie mode: the name of the session cookie, and the origins
// whose pages may send requests it authenticates.
type Cookie struct {
	Name string // SESSION_COOKIE; "" turns cookie mode off
	// Origins are the pages' origins (CORS_ALLOWED_ORIGINS); a page of the
	// function's own origin (Sec-Fetch-Site: same-origin) needs no entry.
	Origins []string
}

// Token returns the request's session token: from "Authorization: Bearer",
// else from the session cookie when one is configured (fromCookie), else
// "".
func Token(r *http.Request, cookie string) (token string, fromCookie bool) {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok), false
	}
	if cookie != "" {
		if c, err := r.Cookie(cookie); err == nil {
			return c.Value, true
		}
	}
	return "", false
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
//
// A token from the cookie counts only when a browser vouches for the page
// that sent the request (httpapi.CheckOrigin against cookie.Origins), else
// 403: the browser attaches the cookie to whatever any page sends, and
// SameSite=Strict still lets a sibling subdomain's page through. A header
// token needs no such check: no page can make a browser add it.
func Authenticate(r *http.Request, v *session.Verifier, cookie Cookie) (session.Claims, error) {
	tok, fromCookie := Token(r, cookie.Name)
	if tok == "" {
		return session.Claims{}, Challenge("a session token is required: Authorization: Bearer <token>", "")
	}
	if fromCookie {
		if err := httpapi.CheckOrigin(r, cookie.Origins, "use the session cookie"); err != nil {
			return session.Claims{}, err
		}
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
