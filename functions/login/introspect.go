package login

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/authn"
	"impo.com.uy/copetes/backend/shared/bearer"
	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/session"
)

// RevokeAnyRole lets an account revoke tokens of other accounts; without
// it, a caller revokes only its own tokens (RFC 7009 §2.1).
const RevokeAnyRole = "session-admin"

// caller is who made an introspection or revocation request.
type caller struct {
	Name  string
	Roles []string
}

// authenticateCaller accepts a session token (Bearer, or the session
// cookie from a trusted origin) or a service's client credentials (HTTP
// Basic or form fields).
func (s *server) authenticateCaller(r *http.Request, form httpapi.Form) (caller, error) {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if strings.EqualFold(scheme, "Basic") || form.Get("client_id") != "" {
		id, secret, basic, err := clientCredentials(r, form)
		if err != nil {
			return caller{}, err
		}
		acct, err := s.authenticate(r, id, secret, accounts.Service)
		if errors.Is(err, authn.ErrBadCredentials) {
			return caller{}, refused(accounts.Service, basic)
		}
		if err != nil {
			return caller{}, authnError(err)
		}
		return caller{acct.Name, acct.Roles}, nil
	}
	c, err := bearer.Authenticate(r, s.auth.Verifier, bearer.Cookie{Name: s.auth.Config.Cookie, Origins: s.cfg.CORSOrigins})
	if err != nil {
		var he *httpapi.Error
		if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
			he.Header.Add("WWW-Authenticate", `Basic realm="impo-login"`)
		}
		return caller{}, err
	}
	return caller{c.Subject, c.Roles}, nil
}

// introspection is RFC 7662 §2.2's response.
type introspection struct {
	Active    bool     `json:"active"`
	Subject   string   `json:"sub,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	Audience  string   `json:"aud,omitempty"`
	Expiry    int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	ID        string   `json:"jti,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Kind      string   `json:"kind,omitempty"`
	Roles     []string `json:"roles,omitempty"`
}

// introspect tells a caller that is not written in Go whether a token is
// active, and what it says (RFC 7662).
func (s *server) introspect(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.CheckMethod(w, r, http.MethodPost); err != nil {
		return err
	}
	form, err := httpapi.ParseForm(w, r, maxBody)
	if err != nil {
		return err
	}
	if _, err := s.authenticateCaller(r, form); err != nil {
		return err
	}
	token := form.Get("token")
	if token == "" {
		return httpapi.Errorf(http.StatusBadRequest, "the form parameter token is required")
	}
	resp := introspection{}
	c, err := s.auth.Verifier.Verify(r.Context(), token)
	switch {
	case errors.Is(err, session.ErrInvalid):
		// RFC 7662 §2.2: any token that is not active is just inactive.
	case err != nil:
		return unavailable("cannot verify tokens right now", err)
	default:
		resp = introspection{
			Active: true, Subject: c.Subject, ClientID: c.ClientID, Issuer: c.Issuer, Audience: c.Audience,
			Expiry: c.Expiry, IssuedAt: c.IssuedAt, ID: c.ID, TokenType: "Bearer", Kind: c.Kind, Roles: c.Roles,
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, resp)
	return nil
}

// revoke revokes a token until it expires (RFC 7009). An invalid token is
// not an error (§2.2): there is nothing left to revoke.
func (s *server) revoke(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.CheckMethod(w, r, http.MethodPost); err != nil {
		return err
	}
	form, err := httpapi.ParseForm(w, r, maxBody)
	if err != nil {
		return err
	}
	who, err := s.authenticateCaller(r, form)
	if err != nil {
		return err
	}
	token := form.Get("token")
	if token == "" {
		return httpapi.Errorf(http.StatusBadRequest, "the form parameter token is required")
	}
	c, err := s.auth.Verifier.Verify(r.Context(), token)
	switch {
	case errors.Is(err, session.ErrInvalid):
	case err != nil:
		return unavailable("cannot verify tokens right now", err)
	case c.Subject != who.Name && !slices.Contains(who.Roles, RevokeAnyRole):
		return &httpapi.Error{Status: http.StatusForbidden, OAuthCode: "unauthorized_client",
			Detail: "a caller may revoke only its own tokens unless it has the role " + RevokeAnyRole}
	default:
		if err := s.auth.Revocations.Revoke(r.Context(), c); err != nil {
			return unavailable("cannot record the revocation right now", err)
		}
		slog.InfoContext(r.Context(), "session revoked", "sub", c.Subject, "jti", c.ID, "by", who.Name)
	}
	if cookie := s.auth.Config.Cookie; cookie != "" {
		if v, err := r.Cookie(cookie); err == nil && v.Value == token {
			http.SetCookie(w, &http.Cookie{Name: cookie, Value: "", Path: "/", MaxAge: -1,
				HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}
