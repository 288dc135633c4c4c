package login

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/authn"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/session"
)

// tokenResponse is RFC 6749 §5.1's successful response. A browser login in
// cookie mode leaves out access_token: the page gets the session only as
// the HttpOnly cookie, and learns from expires_in how long it lasts. The
// code and refresh grants add refresh_token, id_token (OpenID Connect
// Core §3.1.3.3) and scope.
type tokenResponse struct {
	AccessToken  string `json:"access_token,omitempty"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// token is the token endpoint: JSON {"username","password","client_id"}
// for people, or an RFC 6749 form with grant_type password,
// client_credentials, authorization_code or refresh_token.
func (s *server) token(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.CheckMethod(w, r, http.MethodPost); err != nil {
		return err
	}
	switch httpapi.MediaType(r) {
	case "application/json":
		var body struct {
			Username string `json:"username"`
			Password string `json:"password"`
			ClientID string `json:"client_id"`
		}
		if err := httpapi.DecodeJSON(w, r, maxBody, &body); err != nil {
			return err
		}
		return s.passwordGrant(w, r, body.ClientID, body.Username, body.Password)
	case "application/x-www-form-urlencoded":
		form, err := httpapi.ParseForm(w, r, maxBody)
		if err != nil {
			return err
		}
		switch gt := form.Get("grant_type"); gt {
		case "password":
			return s.passwordGrant(w, r, form.Get("client_id"), form.Get("username"), form.Get("password"))
		case "client_credentials":
			return s.clientCredentialsGrant(w, r, form)
		case "authorization_code":
			return s.codeGrant(w, r, form)
		case "refresh_token":
			return s.refreshGrant(w, r, form)
		case "":
			return &httpapi.Error{Status: http.StatusBadRequest, Detail: "grant_type is required: " + grantTypes}
		default:
			return &httpapi.Error{Status: http.StatusBadRequest, OAuthCode: "unsupported_grant_type",
				Detail: "grant_type must be " + grantTypes}
		}
	default:
		return httpapi.UnsupportedMediaType(r, "application/json", "application/x-www-form-urlencoded")
	}
}

const grantTypes = "authorization_code, refresh_token, client_credentials or password"

// passwordGrant logs a person in with a password their client collected:
// the JSON login and RFC 6749 §4.3. RFC 9700 §2.4 says a client must not
// do that, so it is an opt-in: client_id must name a client registered
// with the password grant, and a browser's page must be one of that
// client's origins (or CORS_ALLOWED_ORIGINS). Any other page could log
// its visitor in as an account of its choosing (login CSRF), or use its
// visitors' browsers to guess passwords. All of it is refused before any
// hash or failure count.
func (s *server) passwordGrant(w http.ResponseWriter, r *http.Request, clientID, name, secret string) error {
	if name == "" || secret == "" {
		return &httpapi.Error{Status: http.StatusBadRequest, Detail: "username and password are required"}
	}
	if clientID == "" {
		return &httpapi.Error{Status: http.StatusBadRequest, OAuthCode: "unauthorized_client",
			Detail: "a password login needs client_id naming a client registered with the password grant; browser applications use the authorization code flow"}
	}
	client, err := s.client(r.Context(), clientID)
	if err != nil {
		return err
	}
	if !client.Allows(clients.Password) {
		return &httpapi.Error{Status: http.StatusBadRequest, OAuthCode: "unauthorized_client",
			Detail: "client " + client.ID + " is not registered with the password grant; use the authorization code flow"}
	}
	browser := httpapi.FromBrowser(r)
	if err := s.checkClientOrigin(r, client); err != nil {
		return err
	}
	acct, err := s.authenticate(r, name, secret, accounts.User)
	if err != nil {
		if errors.Is(err, authn.ErrBadCredentials) {
			return refused(accounts.User, false)
		}
		return authnError(err)
	}
	s.rememberDevice(w, r, acct.Name)
	return s.issue(w, r, acct, client.ID, browser)
}

// clientCredentialsGrant is a service's login (RFC 6749 §4.4), with the
// secret it holds in the accounts secret. No browser page may send it
// but those in CORS_ALLOWED_ORIGINS: refused before the secret is checked.
func (s *server) clientCredentialsGrant(w http.ResponseWriter, r *http.Request, form httpapi.Form) error {
	if httpapi.FromBrowser(r) {
		if err := httpapi.CheckOrigin(r, s.cfg.CORSOrigins, "log in"); err != nil {
			return err
		}
	}
	name, secret, basic, err := clientCredentials(r, form)
	if err != nil {
		return err
	}
	if name == "" || secret == "" {
		return &httpapi.Error{Status: http.StatusBadRequest, Detail: "client_id and client_secret are required"}
	}
	acct, err := s.authenticate(r, name, secret, accounts.Service)
	if err != nil {
		if errors.Is(err, authn.ErrBadCredentials) {
			return refused(accounts.Service, basic)
		}
		return authnError(err)
	}
	return s.issue(w, r, acct, "", false)
}

// issue answers a password or client credentials login with a session
// token for acct, asked for through clientID ("" for the account itself).
func (s *server) issue(w http.ResponseWriter, r *http.Request, acct accounts.Account, clientID string, browser bool) error {
	token, claims, err := s.auth.Issuer.IssueFor(r.Context(), session.Grant{
		Subject: acct.Name, Kind: string(acct.Kind), Roles: acct.Roles, ClientID: clientID,
	})
	if err != nil {
		return unavailable("cannot sign session tokens right now", err)
	}
	slog.InfoContext(r.Context(), "session issued", "sub", acct.Name, "kind", acct.Kind,
		"roles", acct.Roles, "client_id", claims.ClientID, "jti", claims.ID, "expires", claims.ExpiresAt().UTC().Format(time.RFC3339))
	ttl := claims.Expiry - claims.IssuedAt
	resp := tokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: ttl}
	// Cookie mode serves a person's browser, from a trusted page (checked
	// by the caller); a service, or a person's script, gets the token in
	// the body.
	if c := s.auth.Config.Cookie; c != "" && acct.Kind == accounts.User && browser {
		http.SetCookie(w, &http.Cookie{
			Name: c, Value: token, Path: "/", MaxAge: int(ttl),
			HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
		})
		// A token in the body would be readable by any script on the
		// page, which is what HttpOnly keeps it from.
		resp.AccessToken = ""
	}
	writeToken(w, resp)
	return nil
}

// writeToken sends a token response, which no cache may keep (RFC 6749
// §5.1).
func writeToken(w http.ResponseWriter, resp tokenResponse) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	httpapi.WriteJSON(w, resp)
}

// clientCredentials reads the client's id and secret from HTTP Basic (RFC
// 6749 §2.3.1: each form-urlencoded, then joined by ":") or from the
// client_id and client_secret form fields, never both.
func clientCredentials(r *http.Request, form httpapi.Form) (id, secret string, basic bool, err error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, b64, _ := strings.Cut(auth, " ")
		raw, decErr := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		rawID, rawSecret, ok := strings.Cut(string(raw), ":")
		if !strings.EqualFold(scheme, "Basic") || decErr != nil || !ok {
			return "", "", true, basicChallenge("Authorization must be HTTP Basic with client_id:client_secret")
		}
		if form.Get("client_id") != "" || form.Get("client_secret") != "" {
			return "", "", true, &httpapi.Error{Status: http.StatusBadRequest,
				Detail: "send client credentials either by HTTP Basic or in the form, not both"}
		}
		id, err1 := url.QueryUnescape(rawID)
		secret, err2 := url.QueryUnescape(rawSecret)
		if err1 != nil || err2 != nil {
			return "", "", true, basicChallenge("HTTP Basic credentials are not form-urlencoded")
		}
		return id, secret, true, nil
	}
	return form.Get("client_id"), form.Get("client_secret"), false, nil
}

func basicChallenge(detail string) *httpapi.Error {
	return &httpapi.Error{Status: http.StatusUnauthorized, OAuthCode: "invalid_client", Detail: detail,
		Header: httpapi.Header("WWW-Authenticate", `Basic realm="impo-login"`)}
}

// refused is the one answer to every bad credential: wrong password,
// unknown account, disabled account, wrong kind. Nothing in it tells them
// apart.
func refused(kind accounts.Kind, basic bool) error {
	if kind == accounts.Service {
		// RFC 6749 §5.2: a failed client authentication is invalid_client,
		// 401, with a challenge when the client used HTTP Basic.
		e := &httpapi.Error{Status: http.StatusUnauthorized, OAuthCode: "invalid_client", Detail: "client authentication failed"}
		if basic {
			e.Header = httpapi.Header("WWW-Authenticate", `Basic realm="impo-login"`)
		}
		return e
	}
	return &httpapi.Error{Status: http.StatusBadRequest, OAuthCode: "invalid_grant", Detail: "wrong username or password"}
}

// authenticate checks name and secret for an account of kind, from the
// request's client address.
func (s *server) authenticate(r *http.Request, name, secret string, kind accounts.Kind) (accounts.Account, error) {
	at := authn.Attempt{Name: name, Secret: secret, Kind: kind, Address: httpapi.ClientIP(r, s.cfg.TrustedHops)}
	if kind == accounts.User {
		at.Device = s.knownDevice(r, name)
	}
	return s.authn.Authenticate(r.Context(), at)
}
