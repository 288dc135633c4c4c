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
	"impo.com.uy/copetes/backend/shared/clients"
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
	if err == nil {
		err = s.checkEnabled(r, c)
	}
	if err != nil {
		var he *httpapi.Error
		if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
			he.Header.Add("WWW-Authenticate", `Basic realm="impo-login"`)
		}
		return caller{}, err
	}
	return caller{c.Subject, c.Roles}, nil
}

// enabled reports whether the account a token was issued to is still in
// the accounts list, enabled. login reads that list anyway (cached), so
// it need not wait for a session mark to stop vouching for the tokens of
// an account disabled or removed since.
func (s *server) enabled(r *http.Request, c session.Claims) (bool, error) {
	list, err := s.authn.Accounts(r.Context())
	if err != nil {
		return false, unavailable("cannot read the accounts right now", err)
	}
	a, _, found := list.Lookup(c.Subject)
	return found && !a.Disabled, nil
}

// checkEnabled refuses a caller whose account is no longer enabled as it
// would an invalid token.
func (s *server) checkEnabled(r *http.Request, c session.Claims) error {
	ok, err := s.enabled(r, c)
	if err != nil {
		return err
	}
	if !ok {
		return bearer.Challenge("the session token is invalid, expired or revoked", "invalid_token")
	}
	return nil
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
		enabled, err := s.enabled(r, c)
		if err != nil {
			return err
		}
		if !enabled {
			break // its account was disabled or removed since: inactive too
		}
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
// not an error (§2.2): there is nothing left to revoke. A session-admin
// may instead send subject (see endSessions).
func (s *server) revoke(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.CheckMethod(w, r, http.MethodPost); err != nil {
		return err
	}
	form, err := httpapi.ParseForm(w, r, maxBody)
	if err != nil {
		return err
	}
	if client, ok, err := s.publicCaller(r, form); err != nil {
		return err
	} else if ok {
		return s.revokeForClient(w, r, form, client)
	}
	who, err := s.authenticateCaller(r, form)
	if err != nil {
		return err
	}
	token, subject := form.Get("token"), form.Get("subject")
	switch {
	case token != "" && subject != "":
		return httpapi.Errorf(http.StatusBadRequest, "send either token (one session) or subject (every session of an account), not both")
	case subject != "":
		return s.endSessions(w, r, who, subject)
	case token == "":
		// A page in cookie mode cannot read its own token: a logout sends
		// the cookie alone, which authenticateCaller has checked (origin
		// included), and it ends the cookie's session.
		t, fromCookie := bearer.Token(r, s.auth.Config.Cookie)
		if !fromCookie {
			return httpapi.Errorf(http.StatusBadRequest, "the form parameter token is required (or subject, for a %s)", RevokeAnyRole)
		}
		token = t
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

// endSessions is /revoke's extension for a session-admin: the form field
// subject=<account name>, without token, ends every session of that
// account now. Every verifier refuses its tokens issued up to this second:
// this login instance at once, the others within REVOCATION_CACHE_TTL.
// The account need not exist any more: ending the sessions of a removed
// account is the point.
func (s *server) endSessions(w http.ResponseWriter, r *http.Request, who caller, subject string) error {
	if !slices.Contains(who.Roles, RevokeAnyRole) {
		return &httpapi.Error{Status: http.StatusForbidden, OAuthCode: "unauthorized_client",
			Detail: "ending every session of an account needs the role " + RevokeAnyRole}
	}
	name := accounts.NormalizeName(subject)
	if err := accounts.CheckName(name); err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "subject: %v", err)
	}
	if err := s.auth.Revocations.EndSessions(r.Context(), name, s.now()); err != nil {
		return unavailable("cannot record the end of the sessions right now", err)
	}
	slog.InfoContext(r.Context(), "sessions ended", "sub", name, "by", who.Name)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}

// publicCaller reports whether a revocation comes from a browser
// application: client_id names a registered client, with no secret and
// no Authorization header (RFC 7009 §2.1 with a public client, RFC 6749
// §2.1). A client_id that is not registered is a service's, checked with
// its secret as before.
func (s *server) publicCaller(r *http.Request, form httpapi.Form) (clients.Client, bool, error) {
	id := form.Get("client_id")
	if id == "" || form.Get("client_secret") != "" || r.Header.Get("Authorization") != "" {
		return clients.Client{}, false, nil
	}
	list, err := s.clients.Get(r.Context())
	if err != nil {
		return clients.Client{}, false, unavailable("cannot read the registered clients right now", err)
	}
	c, ok := list.Lookup(id)
	return c, ok, nil
}

// revokeForClient revokes a token that client was issued: a refresh token
// (its whole family, and every access token of it) or an access token.
// token_type_hint only says which to try first (RFC 7009 §2.1). A
// token the client was not issued, or none at all, is answered 200 and
// left alone (§2.2): the answer tells nothing about other clients' tokens.
func (s *server) revokeForClient(w http.ResponseWriter, r *http.Request, form httpapi.Form, client clients.Client) error {
	ctx := r.Context()
	if err := s.checkClientOrigin(r, client); err != nil {
		return err
	}
	token := form.Get("token")
	if token == "" {
		return httpapi.Errorf(http.StatusBadRequest, "the form parameter token is required")
	}
	refresh := func() (bool, error) {
		fam, found, err := s.refresh.Lookup(ctx, token)
		if err != nil {
			return false, unavailable("cannot read refresh tokens right now", err)
		}
		if !found || fam.ClientID != client.ID {
			return false, nil
		}
		if err := s.endFamily(ctx, fam.ID, "revoked by its client"); err != nil {
			return false, unavailable("cannot revoke refresh tokens right now", err)
		}
		return true, nil
	}
	access := func() (bool, error) {
		c, err := s.auth.Verifier.Verify(ctx, token)
		switch {
		case errors.Is(err, session.ErrInvalid):
			return false, nil
		case err != nil:
			return false, unavailable("cannot verify tokens right now", err)
		case c.ClientID != client.ID:
			return false, nil
		}
		if err := s.auth.Revocations.Revoke(ctx, c); err != nil {
			return false, unavailable("cannot record the revocation right now", err)
		}
		slog.InfoContext(ctx, "session revoked", "sub", c.Subject, "jti", c.ID, "by", client.ID)
		return true, nil
	}
	tries := []func() (bool, error){refresh, access}
	if form.Get("token_type_hint") == "access_token" {
		tries = []func() (bool, error){access, refresh}
	}
	for _, try := range tries {
		if done, err := try(); err != nil || done {
			if err != nil {
				return err
			}
			break
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}
