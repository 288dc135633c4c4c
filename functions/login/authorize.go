package login

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/authn"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/oauth"
)

// authorize is the authorization endpoint (RFC 6749 §4.1 with PKCE, RFC
// 7636) and the hosted login page. GET (or HEAD) validates the request and
// shows the page; the page's form POSTs the same parameters back with the
// CSRF token and what the person typed; a right password ends in a 303 to
// the client's redirect URI with a single-use code.
//
// Its answers are pages for a person, never problem JSON: every failure is
// rendered here, and the handler returns nil.
func (s *server) authorize(w http.ResponseWriter, r *http.Request) error {
	securityHeaders(w.Header())
	var params url.Values
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			s.failurePage(w, r, "", badRequest("the query string is malformed", err))
			return nil
		}
		params = q
	case http.MethodPost:
		f, err := httpapi.ParseForm(w, r, maxBody)
		if err != nil {
			s.failurePage(w, r, "", err)
			return nil
		}
		params = url.Values(f)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.failurePage(w, r, "", &httpapi.Error{Status: http.StatusMethodNotAllowed,
			Detail: "method " + r.Method + " is not allowed here; use GET or POST"})
		return nil
	}
	req, err := s.authorizationRequest(r.Context(), params)
	var back *authzError
	switch {
	case errors.As(err, &back):
		s.redirectError(w, r, req, back)
		return nil
	case err != nil:
		s.failurePage(w, r, "", err)
		return nil
	}
	if r.Method == http.MethodPost {
		s.logIn(w, r, req, params)
		return nil
	}
	token := newCSRFToken()
	s.setCSRFCookie(w, token, false)
	s.loginPage(w, req, http.StatusOK, "", "", token)
	return nil
}

// authzRequest is an authorization request whose client and redirect URI
// are known good, and, once authorizationRequest returns no error, all of
// it.
type authzRequest struct {
	client      clients.Client
	redirectURI string
	state       string
	nonce       string
	challenge   string
	scope       []string // the granted scopes: the requested ones, all of them known
	// hidden are the parameters the page's form sends back, validated,
	// in a fixed order.
	hidden []field
}

// authzError is an error response the client gets at its redirect URI
// (RFC 6749 §4.1.2.1): only once the client and the redirect URI are
// known good, so that nothing is ever sent to an address no client
// registered.
type authzError struct {
	code string // RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6
	// description is for the client's developer: fixed text, never an
	// echo of the request, within the ASCII RFC 6749 §4.1.2.1 allows (no
	// quote, no backslash).
	description string
}

func (e *authzError) Error() string { return e.code + ": " + e.description }

// Limits on what a request may carry into a page and a stored code. state
// and nonce are the client's opaque values: generous bounds, far above
// what any client library makes, and far below the form's body limit.
const (
	maxState = 1024
	maxNonce = 512
)

// authorizationRequest validates the request's parameters in the order
// RFC 6749 §4.1.2.1 requires: first the client and its redirect URI, whose
// failures are shown to the person (a *httpapi.Error); then everything
// else, whose failures go back to the client (an *authzError).
func (s *server) authorizationRequest(ctx context.Context, p url.Values) (authzRequest, error) {
	// A parameter sent twice is refused (RFC 6749 §3.1): which of the two
	// a server reads is where parsers disagree.
	single := func(name string) (string, bool) {
		vs := p[name]
		if len(vs) > 1 {
			return "", false
		}
		return p.Get(name), true
	}
	id, ok := single("client_id")
	if !ok || id == "" {
		return authzRequest{}, &pageError{status: http.StatusBadRequest,
			message: "La aplicación que lo envió aquí no dijo quién es, así que no se puede iniciar sesión.",
			detail:  "client_id is required, once"}
	}
	list, err := s.clients.Get(ctx)
	if err != nil {
		return authzRequest{}, unavailable("cannot read the registered clients right now", err)
	}
	c, ok := list.Lookup(id)
	if !ok {
		return authzRequest{}, &pageError{status: http.StatusBadRequest,
			message: "La aplicación que lo envió aquí no está registrada, así que no se puede iniciar sesión.",
			detail:  "client_id names no registered client"}
	}
	uri, ok := single("redirect_uri")
	if !ok || uri == "" || !c.RedirectAllowed(uri) {
		return authzRequest{}, &pageError{status: http.StatusBadRequest, client: clientName(c),
			message: "La dirección a la que habría que volver no está registrada para esta aplicación, así que no se puede iniciar sesión.",
			detail:  "redirect_uri is required, once, and must be exactly one of the client's registered redirect URIs"}
	}
	req := authzRequest{client: c, redirectURI: uri}

	// From here on, errors go back to the client. state first, so that
	// they carry it.
	invalid := func(format string, a ...any) error {
		return &authzError{"invalid_request", fmt.Sprintf(format, a...)}
	}
	state, ok := single("state")
	switch {
	case !ok:
		return req, invalid("state appears more than once")
	case len(state) > maxState:
		return req, invalid("state is longer than %d bytes", maxState)
	case !printable(state):
		// RFC 6749 Appendix A.5: state is VSCHARs. Anything else would not
		// come back byte for byte through the page's hidden field.
		return req, invalid("state must be printable ASCII (RFC 6749 Appendix A.5)")
	}
	req.state = state
	for _, name := range requestParams {
		if len(p[name]) > 1 {
			return req, invalid("%s appears more than once", name)
		}
	}
	switch rt := p.Get("response_type"); rt {
	case "code":
	case "":
		return req, invalid("response_type is required: code")
	default:
		return req, &authzError{"unsupported_response_type", "response_type must be code"}
	}
	if !c.Allows(clients.AuthorizationCode) {
		return req, &authzError{"unauthorized_client", "the client is not registered for the authorization_code grant"}
	}
	// Only the query response mode (the default for code) is served; a
	// client that asked for another would wait for an answer elsewhere.
	if m := p.Get("response_mode"); m != "" && m != "query" {
		return req, invalid("response_mode must be query")
	}
	// Request objects (OpenID Connect Core §6) are not supported: refused,
	// not ignored, since they would override the parameters checked here.
	if p.Get("request") != "" {
		return req, &authzError{"request_not_supported", "request objects are not supported"}
	}
	if p.Get("request_uri") != "" {
		return req, &authzError{"request_uri_not_supported", "request_uri is not supported"}
	}
	// PKCE with S256 only (RFC 9700 §2.1.1, OAuth 2.1 §4.1.1): plain
	// would put the verifier itself in the browser's history. A missing
	// method means plain (RFC 7636 §4.3), so it is refused too.
	req.challenge = p.Get("code_challenge")
	switch method := p.Get("code_challenge_method"); {
	case req.challenge == "":
		return req, invalid("code_challenge is required (PKCE, S256)")
	case method == "":
		return req, invalid("code_challenge_method is required and must be S256")
	case method != "S256":
		return req, invalid("code_challenge_method must be S256; no other is supported")
	}
	if oauth.CheckChallenge(req.challenge) != nil {
		return req, invalid("code_challenge must be the S256 of the verifier: 43 base64url characters")
	}
	scope := p.Get("scope")
	for tok := range strings.SplitSeq(scope, " ") {
		switch {
		case tok == "" || slices.Contains(req.scope, tok):
		case tok == "openid":
			req.scope = append(req.scope, tok)
		default:
			return req, &authzError{"invalid_scope", "the only scope is openid"}
		}
	}
	req.nonce = p.Get("nonce")
	if len(req.nonce) > maxNonce {
		return req, invalid("nonce is longer than %d bytes", maxNonce)
	}
	if !printable(req.nonce) {
		return req, invalid("nonce must be printable ASCII")
	}
	// Every login asks for the password (there is no single sign-on
	// session to reuse), so prompt=none can never be satisfied (OpenID
	// Connect Core §3.1.2.6); prompt=login and max_age are met as they
	// are.
	if slices.Contains(strings.Split(p.Get("prompt"), " "), "none") {
		return req, &authzError{"login_required", "the person must log in: prompt=none cannot be satisfied"}
	}
	for _, name := range requestParams {
		v := p.Get(name)
		if name == "scope" {
			// As granted, not as sent: the one parameter with no bound
			// of its own would otherwise ride back in the form, past its
			// body limit.
			v = strings.Join(req.scope, " ")
		}
		if v != "" {
			req.hidden = append(req.hidden, field{name, v})
		}
	}
	return req, nil
}

// requestParams are the authorization request's parameters that the page
// carries from the GET to the POST; prompt and max_age need not come back.
var requestParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "response_mode"}

// logIn handles the page's form: the CSRF token, then the password, then
// the code.
func (s *server) logIn(w http.ResponseWriter, r *http.Request, req authzRequest, form url.Values) {
	name, pw := form.Get("username"), form.Get("password")
	// Double-submit: a page elsewhere can make the browser POST here, with
	// the cookie, but can read neither the cookie nor our page's hidden
	// field, so it cannot send the two equal. Refused before the password
	// is looked at: no hash, no failure counted (login CSRF, and guessing
	// through visitors' browsers). Not the Origin header, as /token does:
	// under our Referrer-Policy no-referrer, browsers send Origin: null
	// even for our own form (Fetch §3.1).
	if !s.csrfMatches(r, form.Get("csrf")) {
		token := newCSRFToken()
		s.setCSRFCookie(w, token, false)
		s.loginPage(w, req, http.StatusForbidden, "La página caducó; vuelva a intentarlo.", name, token)
		return
	}
	csrf := form.Get("csrf") // it stays valid: the page that failed shows the same
	if name == "" || pw == "" {
		s.loginPage(w, req, http.StatusBadRequest, "Escriba su usuario y su contraseña.", name, csrf)
		return
	}
	acct, err := s.authenticate(r, name, pw, accounts.User)
	if err != nil {
		var locked *authn.LockedError
		switch {
		case errors.Is(err, authn.ErrBadCredentials):
			s.loginPage(w, req, http.StatusBadRequest, "Usuario o contraseña incorrectos.", name, csrf)
		case errors.As(err, &locked):
			w.Header().Set("Retry-After", fmt.Sprint(httpapi.RetryAfterSeconds(locked.RetryAfter)))
			s.loginPage(w, req, http.StatusTooManyRequests, lockedMessage(locked.RetryAfter), name, csrf)
		case errors.Is(err, authn.ErrBusy):
			w.Header().Set("Retry-After", "1")
			s.loginPage(w, req, http.StatusServiceUnavailable,
				"Hay demasiados inicios de sesión en este momento; vuelva a intentarlo en unos segundos.", name, csrf)
		default:
			s.unavailablePage(w, r, req, authnError(err), name, csrf)
		}
		return
	}
	s.rememberDevice(w, r, acct.Name)
	a := oauth.Authorization{
		ClientID: req.client.ID, RedirectURI: req.redirectURI, Subject: acct.Name,
		Scope: req.scope, Nonce: req.nonce, AuthTime: s.now(), AMR: []string{"pwd"},
		Family: oauth.NewFamilyID(),
	}
	code, err := s.codes.Issue(r.Context(), a, req.challenge)
	if err != nil {
		s.unavailablePage(w, r, req, unavailable("cannot store the authorization code right now", err), name, csrf)
		return
	}
	slog.InfoContext(r.Context(), "authorization code issued", "sub", acct.Name, "client_id", req.client.ID,
		"sid", a.Family, "scope", strings.Join(req.scope, " "))
	s.setCSRFCookie(w, "", true) // its page is done with
	s.redirect(w, req, url.Values{"code": {code}})
}

// lockedMessage tells a person locked out how long to wait, in whole
// minutes rounded up: "in 0 minutes" would send them back too early.
func lockedMessage(d time.Duration) string {
	n := max(int((d+time.Minute-1)/time.Minute), 1)
	if n == 1 {
		return "Demasiados intentos; vuelva a intentar en 1 minuto."
	}
	return fmt.Sprintf("Demasiados intentos; vuelva a intentar en %d minutos.", n)
}

// redirectError sends an error response to the client's redirect URI.
func (s *server) redirectError(w http.ResponseWriter, r *http.Request, req authzRequest, e *authzError) {
	slog.InfoContext(r.Context(), "authorization request refused", "client_id", req.client.ID,
		"error", e.code, "error_description", e.description)
	s.redirect(w, req, url.Values{"error": {e.code}, "error_description": {e.description}})
}

// redirect answers 303 to the client's redirect URI with params, the
// request's state and our issuer (RFC 9207: a client that talks to more
// than one authorization server learns which one answered). 303, so that
// the browser follows a POST's answer with a GET.
func (s *server) redirect(w http.ResponseWriter, req authzRequest, params url.Values) {
	if req.state != "" {
		params.Set("state", req.state)
	}
	params.Set("iss", s.auth.Config.Issuer)
	// The registered URI may have a query of its own, which stays as
	// registered (RFC 6749 §3.1.2).
	sep := "?"
	if strings.Contains(req.redirectURI, "?") {
		sep = "&"
	}
	w.Header().Set("Location", req.redirectURI+sep+params.Encode())
	w.WriteHeader(http.StatusSeeOther)
}

// loginPage shows the login form for req, with message (if any) in an
// alert, the username kept (never the password) and the CSRF token.
func (s *server) loginPage(w http.ResponseWriter, req authzRequest, status int, message, username, csrf string) {
	writePage(w, status, page{
		Title: "Iniciar sesión", Client: clientName(req.client), Message: message,
		Form: true, Action: s.authorizePath(), Hidden: req.hidden, CSRF: csrf, Username: username,
	}, origin(req.redirectURI))
}

// unavailablePage answers an outage (503: the form again, to retry) or a
// misconfiguration (500: no form, nothing the person can do), logging the
// cause.
func (s *server) unavailablePage(w http.ResponseWriter, r *http.Request, req authzRequest, err error, username, csrf string) {
	he := asHTTPError(err)
	if he.Status != http.StatusServiceUnavailable {
		s.failurePage(w, r, clientName(req.client), he)
		return
	}
	httpapi.LogFailure(r, he)
	if he.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(httpapi.RetryAfterSeconds(he.RetryAfter)))
	}
	s.loginPage(w, req, he.Status, unavailableMessage, username, csrf)
}

const (
	unavailableMessage   = "El inicio de sesión no está disponible en este momento; vuelva a intentarlo en unos minutos."
	misconfiguredMessage = "El inicio de sesión no está disponible: falta configurarlo. Avise a quien administra el sistema."
)

// pageError is a failure shown to the person only: the request cannot go
// back to the client.
type pageError struct {
	status  int
	client  string
	message string // Spanish, for the person
	detail  string // English, for the client's developer
}

func (e *pageError) Error() string { return fmt.Sprintf("%d %s", e.status, e.detail) }

// failurePage shows a page without a form: a request that cannot go back
// to any client, or a failure only an operator can fix.
func (s *server) failurePage(w http.ResponseWriter, r *http.Request, client string, err error) {
	var pe *pageError
	if !errors.As(err, &pe) {
		he := asHTTPError(err)
		httpapi.LogFailure(r, he)
		pe = &pageError{status: he.Status, message: "El pedido de inicio de sesión no es válido.", detail: he.Detail}
		switch {
		case he.Status == http.StatusServiceUnavailable:
			pe.message, pe.detail = unavailableMessage, ""
			if he.RetryAfter > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(httpapi.RetryAfterSeconds(he.RetryAfter)))
			}
		case he.Status >= 500:
			pe.message, pe.detail = misconfiguredMessage, ""
		case he.Status == http.StatusMethodNotAllowed:
			pe.message = "Esta dirección se abre desde una aplicación, no de esta manera."
		}
	}
	if pe.client == "" {
		pe.client = client
	}
	writePage(w, pe.status, page{Title: "No se puede iniciar sesión", Client: pe.client,
		Message: pe.message, Detail: pe.detail}, "")
}

func asHTTPError(err error) *httpapi.Error {
	var he *httpapi.Error
	if !errors.As(err, &he) {
		he = &httpapi.Error{Status: http.StatusInternalServerError, Detail: "internal error", Err: err}
	}
	return he
}

func badRequest(detail string, err error) *httpapi.Error {
	return &httpapi.Error{Status: http.StatusBadRequest, Detail: detail, Err: err}
}

// clientName is how the page names the client to the person.
func clientName(c clients.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// origin returns uri's origin, scheme://host[:port], for the CSP's
// form-action; a registered redirect URI is always absolute (clients
// checks it), so "" only for a bug.
func origin(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// authorizePath is where the page's form posts: the endpoint's path as the
// browser sees it, under the issuer's path ("/Login/authorize" when
// cmd/local serves login under /Login), on the origin that served the
// page, whichever name it had ('self' in the CSP).
func (s *server) authorizePath() string {
	p := ""
	if u, err := url.Parse(s.auth.Config.Issuer); err == nil && u.Host != "" {
		p = strings.TrimSuffix(u.Path, "/")
	}
	return p + "/authorize"
}

// The CSRF cookie. On an https issuer, the __Host- prefix makes browsers
// refuse it unless it is Secure, host-only and for Path=/ (RFC 6265bis
// §4.1.3.2), so that a sibling subdomain cannot plant one of its own and
// defeat the double submit. A loopback http issuer (cmd/local) cannot
// have a Secure cookie, and needs no such guard.
const (
	csrfCookie       = "impo_csrf"
	csrfCookieSecure = "__Host-impo_csrf"
)

func (s *server) httpsIssuer() bool { return strings.HasPrefix(s.auth.Config.Issuer, "https://") }

func (s *server) csrfCookieName() string {
	if s.httpsIssuer() {
		return csrfCookieSecure
	}
	return csrfCookie
}

// newCSRFToken returns 256 random bits, base64url.
func newCSRFToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// setCSRFCookie sets the token, or deletes the cookie. SameSite=Strict:
// only our own page's POST carries it back.
func (s *server) setCSRFCookie(w http.ResponseWriter, token string, remove bool) {
	c := &http.Cookie{Name: s.csrfCookieName(), Value: token, Path: "/",
		HttpOnly: true, Secure: s.httpsIssuer(), SameSite: http.SameSiteStrictMode}
	if remove {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// csrfMatches reports whether the form's token equals the cookie's.
func (s *server) csrfMatches(r *http.Request, token string) bool {
	c, err := r.Cookie(s.csrfCookieName())
	if err != nil || len(token) != 43 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(token)) == 1
}

// printable reports whether s is only VSCHARs (%x20-7E, RFC 6749
// Appendix A): what an HTML form sends back exactly as it received it.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
