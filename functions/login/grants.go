package login

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/oauth"
	"impo.com.uy/copetes/backend/shared/session"
)

// The errors of RFC 6749 §5.2 the code and refresh grants answer with.
func invalidGrant(detail string) *httpapi.Error {
	return &httpapi.Error{Status: http.StatusBadRequest, OAuthCode: "invalid_grant", Detail: detail}
}

func invalidRequest(detail string) *httpapi.Error {
	return &httpapi.Error{Status: http.StatusBadRequest, OAuthCode: "invalid_request", Detail: detail}
}

func unauthorizedClient(detail string) *httpapi.Error {
	return &httpapi.Error{Status: http.StatusBadRequest, OAuthCode: "unauthorized_client", Detail: detail}
}

// publicClient returns the registered client a browser application's
// request names with client_id, allowed grant g. A public client proves
// nothing but its id (RFC 6749 §2.1), so a secret is refused rather than
// ignored: a client that sends one believes it is confidential. From a
// browser, the page must be one of the client's origins (or
// CORS_ALLOWED_ORIGINS): another page holding a stolen code or refresh
// token gets nothing it could read, and burns nothing.
func (s *server) publicClient(r *http.Request, form httpapi.Form, g clients.Grant) (clients.Client, error) {
	if r.Header.Get("Authorization") != "" || form.Get("client_secret") != "" {
		return clients.Client{}, &httpapi.Error{Status: http.StatusUnauthorized, OAuthCode: "invalid_client",
			Detail: "a browser application is a public client: send client_id in the form, and no secret"}
	}
	c, err := s.client(r.Context(), form.Get("client_id"))
	if err != nil {
		return clients.Client{}, err
	}
	if !c.Allows(g) {
		return clients.Client{}, unauthorizedClient("client " + c.ID + " is not registered with the grant " + string(g))
	}
	if err := s.checkClientOrigin(r, c); err != nil {
		return clients.Client{}, err
	}
	return c, nil
}

// checkClientOrigin refuses a browser request from a page that is neither
// one of client's origins nor in CORS_ALLOWED_ORIGINS.
func (s *server) checkClientOrigin(r *http.Request, c clients.Client) error {
	if !httpapi.FromBrowser(r) {
		return nil
	}
	return httpapi.CheckOrigin(r, append(slices.Clone(c.AllowedOrigins), s.cfg.CORSOrigins...), "use client "+c.ID)
}

// codeGrant redeems an authorization code (RFC 6749 §4.1.3, RFC 7636
// §4.5): a public client, the code, the redirect URI it was sent to and
// the PKCE verifier.
func (s *server) codeGrant(w http.ResponseWriter, r *http.Request, form httpapi.Form) error {
	ctx := r.Context()
	client, err := s.publicClient(r, form, clients.AuthorizationCode)
	if err != nil {
		return err
	}
	code, redirectURI, verifier := form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier")
	switch {
	case code == "":
		return invalidRequest("code is required")
	case redirectURI == "":
		return invalidRequest("redirect_uri is required: the one the authorization request named")
	case verifier == "":
		return invalidRequest("code_verifier is required: every code is bound to a PKCE challenge (S256)")
	}
	if err := oauth.CheckVerifier(verifier); err != nil {
		return invalidRequest("code_verifier: " + err.Error())
	}
	// The registration as it stands rules: a code sent to a redirect URI
	// that the operator has since removed (an application moved, or one
	// of its deployments was compromised) issues nothing.
	if !client.RedirectAllowed(redirectURI) {
		return invalidGrant("redirect_uri is not one of the client's registered redirect URIs")
	}
	if err := s.grantReady(ctx); err != nil {
		return err
	}
	ttl := s.auth.Config.TTL
	// The person's account and ended sessions are checked before the
	// code is used up: a check that fails in an outage leaves the code
	// for the client's retry.
	var acct accounts.Account
	a, jti, err := s.codes.RedeemIf(ctx, code, client.ID, redirectURI, verifier, ttl, func(a oauth.Authorization) error {
		var err error
		acct, err = s.loginStands(r, a)
		return err
	})
	var replay *oauth.ReplayError
	var refused *httpapi.Error
	switch {
	case errors.As(err, &refused):
		return refused
	case errors.As(err, &replay):
		// RFC 6749 §4.1.2 and §10.5: a code used twice was stolen, or its
		// first redemption was; what that one issued is revoked.
		s.revokeFamily(ctx, replay.Family, "authorization code replayed")
		s.revokeTokenID(ctx, replay.TokenID, replay.TokenExpires)
		slog.WarnContext(ctx, "authorization code replayed: its session revoked", "client_id", client.ID,
			"sid", replay.Family, "jti", replay.TokenID)
		return invalidGrant("the authorization code was already used; what it issued is revoked")
	case errors.Is(err, oauth.ErrInvalidGrant):
		return invalidGrant("the authorization code is invalid, expired, used, or was issued for another client, redirect URI or code_challenge")
	case err != nil:
		return unavailable("cannot redeem authorization codes right now", err)
	}
	expires := s.now().Add(ttl)
	var refresh string
	if client.Allows(clients.RefreshToken) {
		refresh, err = s.refresh.Start(ctx, a, jti, expires)
		switch {
		case errors.Is(err, oauth.ErrInvalidGrant):
			// A replay of the code revoked the login while this
			// redemption ran: retrying could only be refused too.
			return invalidGrant("the authorization code was used twice; what it issued is revoked")
		case err != nil:
			return unavailable("cannot start a refresh token right now", err)
		}
	}
	return s.issueGrant(w, r, acct, a, jti, refresh, a.Nonce, "code")
}

// refreshGrant renews a session (RFC 6749 §6) by rotation (RFC 9700
// §4.14.2): the refresh token is used up and a new one returned. Its
// person must still have an enabled account whose sessions were not
// ended since the login; otherwise the family ends.
func (s *server) refreshGrant(w http.ResponseWriter, r *http.Request, form httpapi.Form) error {
	ctx := r.Context()
	client, err := s.publicClient(r, form, clients.RefreshToken)
	if err != nil {
		return err
	}
	token := form.Get("refresh_token")
	if token == "" {
		return invalidRequest("refresh_token is required")
	}
	if err := s.grantReady(ctx); err != nil {
		return err
	}
	// Everything that can refuse the renewal, or fail in an outage, is
	// checked before the refresh token is used up (RotateIf): a token
	// spent on an answer the client never got makes its retry reuse,
	// and reuse ends the family.
	var scope []string
	if requested := form.Get("scope"); requested != "" {
		scope = strings.Fields(requested)
	}
	var acct accounts.Account
	var ended, endedID string // why the family must end, when it must, and its id
	jti := session.NewTokenID()
	fam, next, err := s.refresh.RotateIf(ctx, token, client.ID, jti, s.now().Add(s.auth.Config.TTL), func(f oauth.Family) error {
		// A scope may narrow the grant (RFC 6749 §6), never widen it.
		for _, sc := range scope {
			if !slices.Contains(f.Scope, sc) {
				return &httpapi.Error{Status: http.StatusBadRequest, OAuthCode: "invalid_scope",
					Detail: "scope may only narrow what the person granted: " + strings.Join(f.Scope, " ")}
			}
		}
		// A family begun through a redirect URI that the client's
		// registration no longer has is refused while it lacks it, as a
		// code sent there would be (not revoked: an operator who puts
		// the URI back gets the sessions back).
		if f.RedirectURI != "" && !client.RedirectAllowed(f.RedirectURI) {
			return invalidGrant("the session began through a redirect URI the client is no longer registered with")
		}
		var err error
		acct, err = s.loginStands(r, f.Authorization)
		var he *httpapi.Error
		if errors.As(err, &he) && he.OAuthCode == "invalid_grant" {
			ended, endedID = he.Detail, f.ID
		}
		return err
	})
	var reuse *oauth.ReuseError
	var refused *httpapi.Error
	switch {
	case errors.As(err, &refused):
		if ended != "" {
			s.revokeFamily(ctx, endedID, ended)
		}
		return refused
	case errors.As(err, &reuse):
		// RFC 9700 §4.14.2: an invalidated refresh token used again means
		// two parties hold the family; Rotate ended it, and every access
		// token it issued goes too (its last, named, and the earlier ones,
		// by their sid).
		s.revokeTokenID(ctx, reuse.TokenID, reuse.TokenExpires)
		if err := s.auth.Revocations.RevokeSession(ctx, reuse.Family, s.now()); err != nil {
			slog.WarnContext(ctx, "could not revoke the access tokens of a refresh family", "sid", reuse.Family, "error", err.Error())
		}
		slog.WarnContext(ctx, "refresh token reused: its family revoked", "client_id", client.ID,
			"sid", reuse.Family, "jti", reuse.TokenID)
		return invalidGrant("the refresh token was already used; its session is revoked")
	case errors.Is(err, oauth.ErrInvalidGrant):
		return invalidGrant("the refresh token is invalid, expired, used or revoked, or was issued to another client")
	case err != nil:
		return unavailable("cannot rotate refresh tokens right now", err)
	}
	a := fam.Authorization
	if scope != nil {
		a.Scope = scope
	}
	// OpenID Connect Core §12.2 (and its errata): a refreshed ID token
	// keeps auth_time and carries no nonce, which belongs to the
	// authentication request.
	return s.issueGrant(w, r, acct, a, jti, next, "", "refresh")
}

// issueGrant answers a code or refresh grant: the access token with the
// chosen jti, the refresh token when there is one, an ID token when the
// person granted openid.
func (s *server) issueGrant(w http.ResponseWriter, r *http.Request, acct accounts.Account, a oauth.Authorization, jti, refresh, nonce, how string) error {
	ctx := r.Context()
	// sid names the login: ending it (endFamily) refuses every access
	// token it issued, however many renewals ago.
	token, claims, err := s.auth.Issuer.IssueFor(ctx, session.Grant{
		Subject: acct.Name, Kind: string(acct.Kind), Roles: acct.Roles, ClientID: a.ClientID, ID: jti,
		SessionID: a.Family,
	})
	if err != nil {
		return unavailable("cannot sign session tokens right now", err)
	}
	resp := tokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: claims.Expiry - claims.IssuedAt,
		RefreshToken: refresh, Scope: strings.Join(a.Scope, " ")}
	if slices.Contains(a.Scope, "openid") {
		if resp.IDToken, err = s.idToken(ctx, a, nonce, claims); err != nil {
			return unavailable("cannot sign ID tokens right now", err)
		}
	}
	slog.InfoContext(ctx, "session issued", "sub", acct.Name, "kind", acct.Kind, "roles", acct.Roles,
		"client_id", a.ClientID, "grant", how, "sid", a.Family, "jti", claims.ID,
		"expires", claims.ExpiresAt().UTC().Format(time.RFC3339))
	writeToken(w, resp)
	return nil
}

// grantReady makes sure that the secrets a code or refresh grant needs
// after it has used up its code or token can be read: the clients (read
// by publicClient a moment ago; this is the cached value) and the
// signing keys. A grant that failed on one of them afterwards would have
// spent the person's login for nothing.
func (s *server) grantReady(ctx context.Context) error {
	if _, err := s.clients.Get(ctx); err != nil {
		return unavailable("cannot read the registered clients right now", err)
	}
	if _, err := s.auth.Keys.Get(ctx); err != nil {
		return unavailable("cannot sign session tokens right now", err)
	}
	return nil
}

// loginStands returns the person account of a login (a code, a refresh
// family) if the login still stands: the account exists and is enabled,
// and its sessions were not ended after the password was typed (a stolen
// password, say). Otherwise invalid_grant; a failure to tell, 500 or 503.
func (s *server) loginStands(r *http.Request, a oauth.Authorization) (accounts.Account, error) {
	acct, err := s.person(r, a.Subject)
	if err != nil {
		return accounts.Account{}, err
	}
	if err := s.sessionsOpen(r.Context(), a); err != nil {
		return accounts.Account{}, err
	}
	return acct, nil
}

// person returns the enabled person account name, or invalid_grant: a
// code or refresh token of an account since disabled or removed issues
// nothing (RFC 6749 §5.2: the grant was revoked).
func (s *server) person(r *http.Request, name string) (accounts.Account, error) {
	list, err := s.authn.Accounts(r.Context())
	if err != nil {
		return accounts.Account{}, unavailable("cannot read the accounts right now", err)
	}
	a, _, found := list.Lookup(name)
	if !found || a.Disabled || a.Kind != accounts.User {
		return accounts.Account{}, invalidGrant("the account of this session is disabled or removed")
	}
	return a, nil
}

// sessionsOpen refuses a login (a code, a refresh family) whose person's
// sessions were ended (cmd/admin account update|disable, /revoke subject=…) after
// the password was typed: the end covers codes and refresh tokens too, or
// a browser would carry on past it.
func (s *server) sessionsOpen(ctx context.Context, a oauth.Authorization) error {
	ended, err := s.auth.Revocations.EndedAfter(ctx, a.Subject, a.AuthTime)
	if err != nil {
		return unavailable("cannot check ended sessions right now", err)
	}
	if ended {
		return invalidGrant("the sessions of this account were ended")
	}
	return nil
}

// revokeFamily ends a login (endFamily): its refresh family and its access
// tokens. It runs on the way to an error the client gets anyway, so a
// failure is logged rather than answered: the family's lifetimes still
// bound it.
func (s *server) revokeFamily(ctx context.Context, id, why string) {
	if err := s.endFamily(ctx, id, why); err != nil {
		slog.WarnContext(ctx, "could not revoke a refresh family", "sid", id, "why", why, "error", err.Error())
	}
}

// endFamily ends the login id: its refresh family, if it has one, and
// every access token it issued. The family records only its last access
// token, but a thief who renewed a stolen refresh token a few times holds
// the earlier ones too, and a client without refresh tokens has no
// family at all: every token carries the login's id (sid), and one mark
// refuses them all.
func (s *server) endFamily(ctx context.Context, id, why string) error {
	if id == "" {
		return nil
	}
	fam, found, err := s.refresh.Revoke(ctx, id)
	if err != nil {
		return err
	}
	// After the family's mark: a renewal that slipped past it signs a
	// token this mark still refuses.
	if err := s.auth.Revocations.RevokeSession(ctx, id, s.now()); err != nil {
		return err
	}
	if !found {
		return nil
	}
	if err := s.revokeToken(ctx, fam.TokenID, fam.TokenExpires); err != nil {
		return err
	}
	slog.InfoContext(ctx, "refresh family revoked", "sid", id, "sub", fam.Subject, "client_id", fam.ClientID, "why", why)
	return nil
}

// revokeTokenID revokes the access token with id jti, which expires at
// expires, in every verifier; a failure is logged (see revokeFamily).
func (s *server) revokeTokenID(ctx context.Context, jti string, expires time.Time) {
	if err := s.revokeToken(ctx, jti, expires); err != nil {
		slog.WarnContext(ctx, "could not revoke an access token", "jti", jti, "error", err.Error())
	}
}

func (s *server) revokeToken(ctx context.Context, jti string, expires time.Time) error {
	if jti == "" || !s.now().Before(expires.Add(session.MaxLeeway)) {
		return nil // nothing to revoke, or it has expired everywhere
	}
	// A second past expires: the token's own exp, in whole seconds, was
	// taken a moment after expires was.
	return s.auth.Revocations.Revoke(ctx, session.Claims{ID: jti, Expiry: expires.Add(time.Second).Unix()})
}
