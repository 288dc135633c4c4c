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
	"impo.com.uy/copetes/backend/shared/httpapi"
)

// tokenResponse is RFC 6749 §5.1's successful response. A browser login in
// cookie mode leaves out access_token: the page gets the session only as
// the HttpOnly cookie, and learns from expires_in how long it lasts.
type tokenResponse struct {
	AccessToken string `json:"access_token,omitempty"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// token is the token endpoint: JSON {"username","password"} for people, or
// an RFC 6749 form with grant_type password or client_credentials.
func (s *server) token(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.CheckMethod(w, r, http.MethodPost); err != nil {
		return err
	}
	// A browser logs in only from a page we trust: any other page could
	// log its visitor in as an account of its choosing (login CSRF), or
	// use its visitors' browsers to guess passwords. Refused before any
	// credential is read, it costs no hash and counts no failure.
	browser := httpapi.FromBrowser(r)
	if browser {
		if err := httpapi.CheckOrigin(r, s.cfg.CORSOrigins, "log in"); err != nil {
			return err
		}
	}
	var (
		name, secret string
		kind         accounts.Kind
		basic        bool
	)
	switch httpapi.MediaType(r) {
	case "application/json":
		var body struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := httpapi.DecodeJSON(w, r, maxBody, &body); err != nil {
			return err
		}
		name, secret, kind = body.Username, body.Password, accounts.User
	case "application/x-www-form-urlencoded":
		form, err := httpapi.ParseForm(w, r, maxBody)
		if err != nil {
			return err
		}
		switch gt := form.Get("grant_type"); gt {
		case "password":
			name, secret, kind = form.Get("username"), form.Get("password"), accounts.User
		case "client_credentials":
			name, secret, basic, err = clientCredentials(r, form)
			if err != nil {
				return err
			}
			kind = accounts.Service
		case "":
			return &httpapi.Error{Status: http.StatusBadRequest, Detail: "grant_type is required: password or client_credentials"}
		default:
			return &httpapi.Error{Status: http.StatusBadRequest, OAuthCode: "unsupported_grant_type",
				Detail: "grant_type must be password or client_credentials"}
		}
	default:
		return httpapi.UnsupportedMediaType(r, "application/json", "application/x-www-form-urlencoded")
	}
	if name == "" || secret == "" {
		what := "username and password are required"
		if kind == accounts.Service {
			what = "client_id and client_secret are required"
		}
		return &httpapi.Error{Status: http.StatusBadRequest, Detail: what}
	}

	acct, err := s.authenticate(r, name, secret, kind)
	if err != nil {
		if errors.Is(err, authn.ErrBadCredentials) {
			return refused(kind, basic)
		}
		return authnError(err)
	}
	if kind == accounts.User {
		s.rememberDevice(w, r, acct.Name)
	}
	token, claims, err := s.auth.Issuer.Issue(r.Context(), acct.Name, string(acct.Kind), acct.Roles)
	if err != nil {
		return unavailable("cannot sign session tokens right now", err)
	}
	slog.InfoContext(r.Context(), "session issued", "sub", acct.Name, "kind", acct.Kind,
		"roles", acct.Roles, "jti", claims.ID, "expires", claims.ExpiresAt().UTC().Format(time.RFC3339))
	ttl := claims.Expiry - claims.IssuedAt
	resp := tokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: ttl}
	// Cookie mode serves a person's browser, from a trusted page (checked
	// above); a service, or a person's script, gets the token in the body.
	if c := s.auth.Config.Cookie; c != "" && kind == accounts.User && browser {
		http.SetCookie(w, &http.Cookie{
			Name: c, Value: token, Path: "/", MaxAge: int(ttl),
			HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
		})
		// A token in the body would be readable by any script on the
		// page, which is what HttpOnly keeps it from.
		resp.AccessToken = ""
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	httpapi.WriteJSON(w, resp)
	return nil
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
