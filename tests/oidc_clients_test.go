package tests

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"impo.com.uy/copetes/backend/internal/devcreds"
)

// Independent clients against login, as other teams' applications would
// use it: golang.org/x/oauth2 configured from the RFC 8414 metadata, and
// go-oidc from the issuer URL alone. Neither knows anything of login but
// what the metadata says.

// fetchJSON GETs url and decodes its JSON object, failing on anything but
// a 200.
func fetchJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
	return m
}

// endpoint returns the metadata's field as a string.
func endpoint(t *testing.T, md map[string]any, field string) string {
	t.Helper()
	s, ok := md[field].(string)
	if !ok || s == "" {
		t.Fatalf("metadata has no %s: %v", field, md)
	}
	return s
}

// authorizeAsBrowser does what a person's browser does with authURL:
// GET login's page, fill its form (the hidden fields as served, the
// anti-CSRF cookie in the jar), POST it, and stop at the 303 to the
// client: it returns the redirect's address, which carries the code.
func authorizeAsBrowser(t *testing.T, authURL, user, password string) *url.URL {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s: %d %s %s", authURL, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	for name, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Get(name); !strings.EqualFold(got, want) {
			t.Errorf("login page %s = %q, want %q", name, got, want)
		}
	}
	csrfCookie := slices.ContainsFunc(jar.Cookies(resp.Request.URL), func(c *http.Cookie) bool { return strings.Contains(c.Name, "csrf") })
	if !csrfCookie {
		t.Errorf("login page set no anti-CSRF cookie: %v", resp.Header.Values("Set-Cookie"))
	}

	doc, err := html.Parse(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	form := loginForm(doc)
	if form == nil {
		t.Fatalf("login page has no form with a current-password field:\n%s", body)
	}
	if m := attr(form, "method"); !strings.EqualFold(m, "post") {
		t.Errorf("login form method %q, want post", m)
	}
	action, err := resp.Request.URL.Parse(attr(form, "action")) // "" is the page itself
	if err != nil {
		t.Fatal(err)
	}
	fields := url.Values{}
	var userField, passwordField string
	csrfField := false
	for n := range form.Descendants() {
		if n.Type != html.ElementNode || n.Data != "input" || attr(n, "name") == "" {
			continue
		}
		switch name := attr(n, "name"); {
		case attr(n, "autocomplete") == "username":
			userField = name
		case attr(n, "autocomplete") == "current-password":
			passwordField = name
		case attr(n, "type") == "hidden":
			fields.Add(name, attr(n, "value"))
			csrfField = csrfField || strings.Contains(name, "csrf")
		}
	}
	if userField == "" || passwordField == "" || !csrfField {
		t.Fatalf("login form: user field %q, password field %q, anti-CSRF field %t:\n%s", userField, passwordField, csrfField, body)
	}
	fields.Set(userField, user)
	fields.Set(passwordField, password)

	resp, err = c.PostForm(action.String(), fields)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST %s: %d, want 303 to the client:\n%s", action, resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// loginForm finds the form that asks for the password.
func loginForm(doc *html.Node) *html.Node {
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "form" {
			for d := range n.Descendants() {
				if d.Type == html.ElementNode && d.Data == "input" && attr(d, "autocomplete") == "current-password" {
					return n
				}
			}
		}
	}
	return nil
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// codeFrom checks the authorization response (RFC 6749 §4.1.2, RFC 9207)
// and returns its code.
func codeFrom(t *testing.T, loc *url.URL, redirectURI, state, issuer string) string {
	t.Helper()
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Errorf("redirected to %s, want %s", got, redirectURI)
	}
	if q.Get("state") != state || q.Get("iss") != issuer || q.Get("code") == "" || q.Get("error") != "" {
		t.Fatalf("authorization response %s: want a code, state %q and iss %q", loc, state, issuer)
	}
	return q.Get("code")
}

// grantError is the OAuth error code of a failed token request.
func grantError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// getToken calls GetToken through an HTTP client that adds the access
// token, and returns the status.
func getToken(t *testing.T, base string, c *http.Client) int {
	t.Helper()
	resp, err := c.Post(base+"/GetToken", "application/json", strings.NewReader(`{"scopes":["https://www.googleapis.com/auth/cloud-platform"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestOAuth2_CodeFlowFromMetadata(t *testing.T) {
	s, _, pw := freshCheckout(t)
	issuer := s.URL + "/Login"
	ctx := context.Background()

	// RFC 8414 §3: an issuer with a path has its metadata at the host's
	// root, with the path appended.
	md := fetchJSON(t, s.URL+"/.well-known/oauth-authorization-server/Login")
	conf := oauth2.Config{
		ClientID: devcreds.DevClient, // a public client: no secret
		Endpoint: oauth2.Endpoint{
			AuthURL: endpoint(t, md, "authorization_endpoint"), TokenURL: endpoint(t, md, "token_endpoint"),
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: s.URL + "/example/callback",
		Scopes:      []string{"openid"},
	}
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	code := codeFrom(t, authorizeAsBrowser(t, authURL, devcreds.DevAccount, pw), conf.RedirectURL, state, issuer)

	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Extra("id_token") == nil || !tok.Expiry.After(time.Now()) {
		t.Fatalf("token: access %t, refresh %t, id_token %t, expiry %v", tok.AccessToken != "", tok.RefreshToken != "", tok.Extra("id_token") != nil, tok.Expiry)
	}
	if status := getToken(t, s.URL, conf.Client(ctx, tok)); status != http.StatusOK {
		t.Errorf("GetToken with the code flow's access token: %d, want 200", status)
	}

	// Automatic refresh: a token source over an expired token refreshes
	// it once, and hands out the new one until it expires.
	expired := &oauth2.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
	ts := conf.TokenSource(ctx, expired)
	fresh, err := ts.Token()
	if err != nil {
		t.Fatalf("automatic refresh: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken || fresh.RefreshToken == "" || !fresh.Expiry.After(time.Now()) {
		t.Fatalf("refresh gave access changed %t, refresh changed %t, expiry %v", fresh.AccessToken != tok.AccessToken, fresh.RefreshToken != tok.RefreshToken, fresh.Expiry)
	}
	if again, err := ts.Token(); err != nil || again.AccessToken != fresh.AccessToken {
		t.Errorf("second Token(): %v; want the refreshed token again, not another refresh", err)
	}
	if status := getToken(t, s.URL, oauth2.NewClient(ctx, ts)); status != http.StatusOK {
		t.Errorf("GetToken with the refreshed token: %d, want 200", status)
	}

	// The used refresh token again: refused, and the whole family with
	// it (RFC 9700 §4.14.2), the refreshed access token too.
	if _, err := conf.TokenSource(ctx, expired).Token(); grantError(err) != "invalid_grant" {
		t.Errorf("reuse of a used refresh token: %v, want invalid_grant", err)
	}
	stale := &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
	if _, err := conf.TokenSource(ctx, stale).Token(); grantError(err) != "invalid_grant" {
		t.Errorf("the family's newest refresh token after a reuse: %v, want invalid_grant", err)
	}
	if status := getToken(t, s.URL, conf.Client(ctx, fresh)); status != http.StatusUnauthorized {
		t.Errorf("GetToken with the family's last access token after a reuse: %d, want 401", status)
	}
}

func TestOIDC_GoOIDCFromTheIssuerAlone(t *testing.T) {
	s, _, pw := freshCheckout(t)
	issuer := s.URL + "/Login"
	ctx := context.Background()

	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery from %s: %v", issuer, err)
	}
	conf := oauth2.Config{
		ClientID: devcreds.DevClient, RedirectURL: s.URL + "/example/callback", Scopes: []string{oidc.ScopeOpenID},
		Endpoint: provider.Endpoint(),
	}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client
	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	code := codeFrom(t, authorizeAsBrowser(t, authURL, devcreds.DevAccount, pw), conf.RedirectURL, state, issuer)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)

	// go-oidc's default verifier: the algorithms the metadata lists, the
	// keys of the JWKS it names, this client as the audience.
	idt, err := provider.Verifier(&oidc.Config{ClientID: devcreds.DevClient}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc refused the ID token: %v", err)
	}
	if idt.Issuer != issuer || idt.Subject != devcreds.DevAccount || !slices.Equal(idt.Audience, []string{devcreds.DevClient}) || idt.Nonce != nonce {
		t.Errorf("ID token iss %q sub %q aud %v nonce %q; want %q, %q, [%s], the request's nonce", idt.Issuer, idt.Subject, idt.Audience, idt.Nonce, issuer, devcreds.DevAccount, devcreds.DevClient)
	}
	var claims struct {
		AuthTime int64    `json:"auth_time"`
		AMR      []string `json:"amr"`
		SID      string   `json:"sid"`
		AZP      string   `json:"azp"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.AuthTime == 0 || !slices.Equal(claims.AMR, []string{"pwd"}) || claims.SID == "" || claims.AZP != devcreds.DevClient {
		t.Errorf("ID token claims %+v; want auth_time, amr [pwd], a sid and azp %s", claims, devcreds.DevClient)
	}
	// ES256, which go-oidc and most verifiers take by default: the dev
	// key set has a P-256 key that signs.
	if _, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256}); err != nil {
		t.Errorf("ID token is not ES256: %v", err)
	}

	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != devcreds.DevAccount {
		t.Errorf("userinfo sub %q, want %q", info.Subject, devcreds.DevAccount)
	}

	// The code again: refused, and what it bought is revoked.
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); grantError(err) != "invalid_grant" {
		t.Errorf("second exchange of a code: %v, want invalid_grant", err)
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("userinfo took the access token of a replayed code")
	}
}

// With FUNCTION_TARGET=Login, login is the whole server: the issuer has
// no path, and the metadata is at the root.
func TestOIDC_FunctionTargetLoginIsTheIssuer(t *testing.T) {
	base := startTarget(t, "Login", "CREDENTIALS_DIR="+t.TempDir())
	if _, err := oidc.NewProvider(context.Background(), base); err != nil {
		t.Fatalf("discovery from %s: %v", base, err)
	}
	if md := fetchJSON(t, base+"/.well-known/oauth-authorization-server"); md["issuer"] != base {
		t.Errorf("RFC 8414 metadata issuer %v, want %s", md["issuer"], base)
	}
}

// Discovery against what login serves: the documents agree, every
// endpoint they name answers on its method, and every endpoint login
// serves is named.
func TestDiscovery_MatchesWhatIsServed(t *testing.T) {
	s, _, _ := freshCheckout(t)
	issuer := s.URL + "/Login"
	oidcDoc := fetchJSON(t, issuer+"/.well-known/openid-configuration")
	for _, at := range []string{
		s.URL + "/.well-known/oauth-authorization-server/Login", // RFC 8414 §3
		issuer + "/.well-known/oauth-authorization-server",
	} {
		if diff := cmp.Diff(oidcDoc, fetchJSON(t, at)); diff != "" {
			t.Errorf("%s differs from the OpenID configuration (-oidc +rfc8414):\n%s", at, diff)
		}
	}
	if oidcDoc["issuer"] != issuer {
		t.Errorf("issuer %v, want %s", oidcDoc["issuer"], issuer)
	}

	// What login serves (functions/login routes), each on the method a
	// client uses first.
	served := map[string]struct{ path, method string }{
		"authorization_endpoint": {"/authorize", "GET"},
		"token_endpoint":         {"/token", "POST"},
		"jwks_uri":               {"/jwks", "GET"},
		"userinfo_endpoint":      {"/userinfo", "GET"},
		"end_session_endpoint":   {"/logout", "GET"},
		"introspection_endpoint": {"/introspect", "POST"},
		"revocation_endpoint":    {"/revoke", "POST"},
	}
	for field, e := range served {
		if got := oidcDoc[field]; got != issuer+e.path {
			t.Errorf("%s = %v, want %s", field, got, issuer+e.path)
		}
	}
	for field, v := range oidcDoc {
		if !strings.HasSuffix(field, "_endpoint") && !strings.HasSuffix(field, "_uri") {
			continue
		}
		u, _ := v.(string)
		e, ok := served[field]
		if !ok {
			t.Errorf("%s %q is advertised but not among login's routes", field, u)
			continue
		}
		req, _ := http.NewRequest(e.method, u, nil)
		if e.method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// Any answer of the endpoint: an error for the empty request is
		// fine; no route, a wrong method or a stub is not.
		if slices.Contains([]int{http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented}, resp.StatusCode) {
			t.Errorf("%s %s (%s): %d %s", e.method, u, field, resp.StatusCode, body)
		}
	}

	has := func(field string, want ...any) {
		t.Helper()
		got, _ := oidcDoc[field].([]any)
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("%s = %v, lacks %v", field, oidcDoc[field], w)
			}
		}
	}
	for field, want := range map[string][]any{
		"response_types_supported":         {"code"},
		"code_challenge_methods_supported": {"S256"},
	} {
		if diff := cmp.Diff(want, oidcDoc[field]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", field, diff)
		}
	}
	has("grant_types_supported", "authorization_code", "refresh_token", "client_credentials")
	has("token_endpoint_auth_methods_supported", "none")
	has("scopes_supported", "openid")
	has("id_token_signing_alg_values_supported", "ES256")
	if oidcDoc["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("authorization_response_iss_parameter_supported = %v, want true (RFC 9207)", oidcDoc["authorization_response_iss_parameter_supported"])
	}
}
