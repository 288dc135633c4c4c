package login

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"impo.com.uy/copetes/backend/shared/bearer"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/httpapi"
)

// metadata is both discovery documents: OpenID Connect Discovery §3 and
// RFC 8414 §2 name the same fields the same way, so one struct answers
// at both well-known paths. It lists what login does, nothing more.
type metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	ScopesSupported                            []string `json:"scopes_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	// OpenID Connect Discovery §3 makes request_uri support the default:
	// it must be denied out loud.
	RequestURIParameterSupported bool `json:"request_uri_parameter_supported"`
	RequestParameterSupported    bool `json:"request_parameter_supported"`
}

// The endpoints' paths under the issuer, as routes serves them.
const (
	pathAuthorize  = "/authorize"
	pathToken      = "/token"
	pathJWKS       = "/jwks"
	pathUserinfo   = "/userinfo"
	pathLogout     = "/logout"
	pathIntrospect = "/introspect"
	pathRevoke     = "/revoke"
)

// discoveryMaxAge is how long a client may cache the metadata. Short: the
// ID token algorithm in it changes when an ES256 key starts signing.
const discoveryMaxAge = 5 * time.Minute

// discovery serves the metadata at both well-known paths.
func (s *server) discovery(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.CheckMethod(w, r, http.MethodGet, http.MethodHead); err != nil {
		return err
	}
	ks, err := s.auth.Keys.Get(r.Context())
	if err != nil {
		return unavailable("cannot read the signing keys", err)
	}
	iss := s.auth.Config.Issuer
	secretAuth := []string{"client_secret_basic", "client_secret_post"}
	m := metadata{
		Issuer:                 iss,
		AuthorizationEndpoint:  iss + pathAuthorize,
		TokenEndpoint:          iss + pathToken,
		JWKSURI:                iss + pathJWKS,
		UserinfoEndpoint:       iss + pathUserinfo,
		EndSessionEndpoint:     iss + pathLogout,
		IntrospectionEndpoint:  iss + pathIntrospect,
		RevocationEndpoint:     iss + pathRevoke,
		ResponseTypesSupported: []string{"code"},
		ResponseModesSupported: []string{"query"},
		// password: it exists, for the clients registered with it.
		GrantTypesSupported: []string{string(clients.AuthorizationCode), string(clients.RefreshToken),
			"client_credentials", string(clients.Password)},
		CodeChallengeMethodsSupported: []string{"S256"},
		// none: browser applications (public clients); the secrets:
		// services, with client credentials.
		TokenEndpointAuthMethodsSupported:         append([]string{"none"}, secretAuth...),
		RevocationEndpointAuthMethodsSupported:    append([]string{"none"}, secretAuth...),
		IntrospectionEndpointAuthMethodsSupported: secretAuth,
		ScopesSupported:                           []string{"openid"},
		SubjectTypesSupported:                     []string{"public"},
		IDTokenSigningAlgValuesSupported:          []string{string(idTokenAlg(ks))},
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "sid", "azp",
			"name", "roles"},
		AuthorizationResponseIssParameterSupported: true,
	}
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(discoveryMaxAge/time.Second)))
	httpapi.WriteJSON(w, m)
	return nil
}

// userinfoResponse is OpenID Connect Core §5.3.2's answer: sub, and what
// a page shows of the person. Accounts have no display name, so name is
// the account name.
type userinfoResponse struct {
	Subject string   `json:"sub"`
	Name    string   `json:"name"`
	Roles   []string `json:"roles"`
}

// userinfo answers who holds a session token (OpenID Connect Core §5.3),
// while its account is enabled.
func (s *server) userinfo(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.CheckMethod(w, r, http.MethodGet, http.MethodPost); err != nil {
		return err
	}
	c, err := bearer.Authenticate(r, s.auth.Verifier, bearer.Cookie{Name: s.auth.Config.Cookie, Origins: s.trustedOrigins(r.Context())})
	if err == nil {
		err = s.checkEnabled(r, c)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, userinfoResponse{Subject: c.Subject, Name: c.Subject, Roles: c.Roles})
	return nil
}

// endSession is the end-session endpoint (OpenID Connect RP-Initiated
// Logout 1.0), GET or a POSTed form: it ends the session an id_token_hint
// names (sid: its refresh family and every access token it issued) and
// sends the browser to the client's registered
// post_logout_redirect_uri, or shows that the session is closed. A
// browser navigates here, so every answer is a page, in Spanish; a
// redirect URI not registered for the client is never followed.
func (s *server) endSession(w http.ResponseWriter, r *http.Request) error {
	target, err := s.logout(w, r)
	if err != nil {
		he := &httpapi.Error{Status: http.StatusInternalServerError, Err: err}
		errors.As(err, &he)
		for k, vs := range he.Header {
			w.Header()[k] = vs
		}
		if he.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(httpapi.RetryAfterSeconds(he.RetryAfter)))
		}
		httpapi.LogFailure(r, he)
		securityHeaders(w.Header())
		writePage(w, he.Status, page{Title: "No se pudo cerrar la sesión", Message: logoutMessage(he)}, "")
		return nil
	}
	if target != "" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusSeeOther)
		return nil
	}
	securityHeaders(w.Header())
	writePage(w, http.StatusOK, page{Title: "Sesión cerrada", Notice: "Su sesión se cerró. Puede cerrar esta ventana."}, "")
	return nil
}

// logout does endSession's work and returns where to send the browser ("":
// nowhere, show the page).
func (s *server) logout(w http.ResponseWriter, r *http.Request) (string, error) {
	if err := httpapi.CheckMethod(w, r, http.MethodGet, http.MethodPost); err != nil {
		return "", err
	}
	params, err := logoutParams(w, r)
	if err != nil {
		return "", err
	}
	ctx := r.Context()
	hint, clientID, redirect := params.Get("id_token_hint"), params.Get("client_id"), params.Get("post_logout_redirect_uri")
	var claims idTokenClaims
	if hint != "" {
		if claims, err = s.verifyIDTokenHint(ctx, hint); errors.Is(err, errHint) {
			return "", &httpapi.Error{Status: http.StatusBadRequest, Detail: "id_token_hint", Err: err}
		} else if err != nil {
			return "", unavailable("cannot read the signing keys", err)
		}
		if clientID != "" && clientID != claims.Audience {
			return "", &httpapi.Error{Status: http.StatusBadRequest, Detail: "client_id"}
		}
		clientID = claims.Audience
	}
	var client clients.Client
	if clientID != "" {
		if client, err = s.client(ctx, clientID); err != nil {
			var he *httpapi.Error
			if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
				return "", &httpapi.Error{Status: http.StatusBadRequest, Detail: "client_id", Err: err}
			}
			return "", err
		}
	}
	// Checked before anything is revoked: a request that names a
	// redirect it may not have changes nothing.
	if redirect != "" && (client.ID == "" || !client.PostLogoutRedirectAllowed(redirect)) {
		return "", &httpapi.Error{Status: http.StatusBadRequest, Detail: "post_logout_redirect_uri"}
	}
	if claims.SessionID != "" {
		if err := s.endFamily(ctx, claims.SessionID, "logout"); err != nil {
			return "", unavailable("cannot end the session right now", err)
		}
		slog.InfoContext(ctx, "session ended by logout", "sub", claims.Subject, "client_id", client.ID, "sid", claims.SessionID)
	}
	if redirect == "" {
		return "", nil
	}
	u, err := url.Parse(redirect) // registered, so it parses
	if err != nil {
		return "", &httpapi.Error{Status: http.StatusBadRequest, Detail: "post_logout_redirect_uri", Err: err}
	}
	if state := params.Get("state"); state != "" {
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// logoutParams reads the end-session request's parameters from the query
// (GET) or the form (POST), each at most once.
func logoutParams(w http.ResponseWriter, r *http.Request) (httpapi.Form, error) {
	if r.Method == http.MethodPost {
		return httpapi.ParseForm(w, r, maxBody)
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, httpapi.Errorf(http.StatusBadRequest, "malformed query: %v", err)
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return nil, httpapi.Errorf(http.StatusBadRequest, "parameter %q appears more than once", k)
		}
	}
	return httpapi.Form(q), nil
}

// logoutMessage tells a person, in Spanish, what went wrong; the detail
// names the parameter at fault, for the developer of the client.
func logoutMessage(he *httpapi.Error) string {
	switch {
	case he.Status == http.StatusMethodNotAllowed:
		return "Esta dirección solo admite GET o POST."
	case he.Status == http.StatusServiceUnavailable:
		return "El servicio no está disponible en este momento; vuelva a intentarlo en unos minutos."
	case he.Status >= 500:
		// What only an operator can fix (a secret missing or broken): a
		// retry would not help.
		return "No se pudo cerrar la sesión: falta configurar el servicio. Avise a quien administra el sistema."
	case he.Detail == "id_token_hint":
		return "La aplicación pidió cerrar una sesión que este servicio no reconoce (id_token_hint)."
	case he.Detail == "client_id":
		return "La aplicación que pidió cerrar la sesión no está registrada (client_id)."
	case he.Detail == "post_logout_redirect_uri":
		return "La dirección a la que la aplicación pidió volver no está registrada para ella (post_logout_redirect_uri); la sesión no se cerró."
	}
	return "La solicitud para cerrar la sesión no es válida."
}
