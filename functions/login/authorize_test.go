package login

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"impo.com.uy/copetes/backend/internal/logtest"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/oauth"
	"impo.com.uy/copetes/backend/shared/password"
	"impo.com.uy/copetes/backend/shared/session"
	"impo.com.uy/copetes/backend/shared/store"
)

// The registered clients of the authorization endpoint's tests.
var authzClients = []clients.Client{
	{ID: "portal", Name: "Portal de prueba", Kind: clients.Public,
		RedirectURIs:   []string{"https://portal.impo.test/callback", "https://portal.impo.test/cb?tenant=a"},
		AllowedOrigins: []string{"https://portal.impo.test"},
		GrantTypes:     []clients.Grant{clients.AuthorizationCode, clients.RefreshToken}},
	{ID: "local-app", Kind: clients.Public,
		RedirectURIs: []string{"http://127.0.0.1:5173/callback"},
		GrantTypes:   []clients.Grant{clients.AuthorizationCode}},
	// A client that collects passwords itself has no redirect URI: the
	// endpoint never sends it anything.
	{ID: "legacy", Kind: clients.Public, GrantTypes: []clients.Grant{clients.Password}},
}

const (
	authzRedirect = "https://portal.impo.test/callback"
	authzVerifier = "the-verifier-of-this-test-is-long-enough-for-rfc-7636-0123456789"
	authzState    = "st-123 with spaces & ampersands"
	authzNonce    = "n-0S6_WzA2Mj"
)

// newAuthzServer is newTestServer with the clients secret.
func newAuthzServer(t *testing.T, edit func(*config, *session.Config)) *testServer {
	t.Helper()
	ts := newTestServer(t, func(c *config, sc *session.Config) {
		c.ClientsSecret = "clients"
		if edit != nil {
			edit(c, sc)
		}
	})
	data, err := clients.Marshal(authzClients)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts.dir, "clients"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return ts
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authzParams is a good authorization request for portal, changed by
// name, value pairs: an empty value removes the parameter.
func authzParams(kv ...string) url.Values {
	p := url.Values{
		"response_type": {"code"}, "client_id": {"portal"}, "redirect_uri": {authzRedirect},
		"scope": {"openid"}, "state": {authzState}, "nonce": {authzNonce},
		"code_challenge": {s256(authzVerifier)}, "code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			p.Del(kv[i])
		} else {
			p.Set(kv[i], kv[i+1])
		}
	}
	return p
}

func (ts *testServer) authorizeGet(p url.Values, header ...string) response {
	return ts.do("GET", "/authorize?"+p.Encode(), "", "", header...)
}

// pageForm is what a test reads from a page, as a browser would.
type pageForm struct {
	action  string
	fields  url.Values // every input's name and value
	alert   string     // the text of the role="alert" element
	style   string     // the <style> element's text
	labels  map[string]string
	inputs  map[string]map[string]string // by id: attributes
	hasForm bool
}

// parsePage parses body with an HTML5 parser and reads the form.
func parsePage(t *testing.T, body string) pageForm {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the page is not HTML: %v", err)
	}
	f := pageForm{fields: url.Values{}, labels: map[string]string{}, inputs: map[string]map[string]string{}}
	var walk func(*html.Node)
	text := func(n *html.Node) string {
		var b strings.Builder
		var collect func(*html.Node)
		collect = func(n *html.Node) {
			if n.Type == html.TextNode {
				b.WriteString(n.Data)
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				collect(c)
			}
		}
		collect(n)
		return b.String()
	}
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
			}
			switch n.Data {
			case "form":
				f.hasForm, f.action = true, attrs["action"]
			case "input":
				f.fields.Set(attrs["name"], attrs["value"])
				if id := attrs["id"]; id != "" {
					f.inputs[id] = attrs
				}
			case "label":
				f.labels[attrs["for"]] = text(n)
			case "style":
				f.style = text(n)
			}
			if attrs["role"] == "alert" {
				f.alert = text(n)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return f
}

func cookieOf(r response, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// loginForm is the hosted page's form as a browser holds it: its fields
// and the CSRF cookie.
type loginForm struct {
	fields url.Values
	cookie string // "name=value"
}

// openLoginPage GETs the page for p and returns its form.
func (ts *testServer) openLoginPage(t *testing.T, p url.Values) loginForm {
	t.Helper()
	r := ts.authorizeGet(p)
	if r.Status != 200 {
		t.Fatalf("GET /authorize: %d %s", r.Status, r.Body)
	}
	c := cookieOf(r, ts.csrfCookieName())
	if c == nil {
		t.Fatalf("no CSRF cookie: %v", r.Header)
	}
	return loginForm{fields: parsePage(t, r.Body).fields, cookie: c.Name + "=" + c.Value}
}

// submit posts the form with the username and password typed in.
func (ts *testServer) submit(f loginForm, user, pw string, header ...string) response {
	v := url.Values{}
	for k, vs := range f.fields {
		v[k] = vs
	}
	v.Set("username", user)
	v.Set("password", pw)
	if f.cookie != "" {
		header = append(header, "Cookie", f.cookie)
	}
	return ts.do("POST", "/authorize", ctForm, v.Encode(), header...)
}

// redirectedTo parses a 303's Location and checks it goes to want.
func redirectedTo(t *testing.T, r response, want string) url.Values {
	t.Helper()
	loc := r.Header.Get("Location")
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(loc, want+"?") && !strings.HasPrefix(loc, want+"&") {
		t.Fatalf("got %d Location %q, want a 303 to %s: %s", r.Status, loc, want, r.Body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestAuthorize_RequestValidation(t *testing.T) {
	ts := newAuthzServer(t, nil)
	tests := []struct {
		name   string
		params url.Values
		// A page (no redirect) with this status, or a redirect with this
		// error.
		page    int
		error   string
		noState bool
	}{
		{name: "good request", params: authzParams(), page: 200},
		{name: "no scope", params: authzParams("scope", ""), page: 200},
		{name: "no state, no nonce", params: authzParams("state", "", "nonce", ""), page: 200, noState: true},
		{name: "openid twice", params: authzParams("scope", "openid  openid"), page: 200},
		{name: "prompt=login and max_age are met", params: authzParams("prompt", "login", "max_age", "0"), page: 200},
		{name: "registered redirect with a query", params: authzParams("redirect_uri", "https://portal.impo.test/cb?tenant=a"), page: 200},

		// The client and its redirect URI first: never a redirect.
		{name: "no client_id", params: authzParams("client_id", ""), page: 400},
		{name: "unknown client", params: authzParams("client_id", "nobody"), page: 400},
		{name: "client id differing in case", params: authzParams("client_id", "Portal"), page: 400},
		{name: "client_id twice", params: func() url.Values { p := authzParams(); p.Add("client_id", "portal"); return p }(), page: 400},
		{name: "no redirect_uri", params: authzParams("redirect_uri", ""), page: 400},
		{name: "unregistered redirect_uri", params: authzParams("redirect_uri", "https://evil.test/callback"), page: 400},
		{name: "redirect_uri with a trailing slash", params: authzParams("redirect_uri", authzRedirect+"/"), page: 400},
		{name: "redirect_uri with an extra query", params: authzParams("redirect_uri", authzRedirect+"?x=1"), page: 400},
		{name: "another client's redirect_uri", params: authzParams("redirect_uri", "http://127.0.0.1:5173/callback"), page: 400},
		{name: "redirect_uri twice", params: func() url.Values { p := authzParams(); p.Add("redirect_uri", authzRedirect); return p }(), page: 400},
		// Registered without authorization_code, it has no redirect URI
		// (clients.Validate): the redirect URI check refuses it, on the page.
		{name: "client without the authorization_code grant", params: authzParams("client_id", "legacy"), page: 400},

		// Then errors go back to the client (RFC 6749 §4.1.2.1).
		{name: "no response_type", params: authzParams("response_type", ""), error: "invalid_request"},
		{name: "implicit flow", params: authzParams("response_type", "token"), error: "unsupported_response_type"},
		{name: "hybrid flow", params: authzParams("response_type", "code id_token"), error: "unsupported_response_type"},
		{name: "no code_challenge", params: authzParams("code_challenge", ""), error: "invalid_request"},
		{name: "no code_challenge_method", params: authzParams("code_challenge_method", ""), error: "invalid_request"},
		{name: "plain method", params: authzParams("code_challenge_method", "plain", "code_challenge", authzVerifier), error: "invalid_request"},
		{name: "lower-case s256", params: authzParams("code_challenge_method", "s256"), error: "invalid_request"},
		{name: "malformed challenge", params: authzParams("code_challenge", "too-short"), error: "invalid_request"},
		{name: "unknown scope", params: authzParams("scope", "openid profile"), error: "invalid_scope"},
		{name: "prompt=none", params: authzParams("prompt", "none"), error: "login_required"},
		{name: "prompt=none among others", params: authzParams("prompt", "login none"), error: "login_required"},
		{name: "fragment response mode", params: authzParams("response_mode", "fragment"), error: "invalid_request"},
		{name: "request object", params: authzParams("request", "eyJhbGciOiJub25lIn0.e30."), error: "request_not_supported"},
		{name: "request_uri", params: authzParams("request_uri", "https://portal.impo.test/req"), error: "request_uri_not_supported"},
		{name: "state twice", params: func() url.Values { p := authzParams(); p.Add("state", "other"); return p }(), error: "invalid_request", noState: true},
		{name: "scope twice", params: func() url.Values { p := authzParams(); p.Add("scope", "openid"); return p }(), error: "invalid_request"},
		{name: "state too long", params: authzParams("state", strings.Repeat("s", maxState+1)), error: "invalid_request", noState: true},
		{name: "state with a newline", params: authzParams("state", "a\nb"), error: "invalid_request", noState: true},
		{name: "state with a NUL", params: authzParams("state", "a\x00b"), error: "invalid_request", noState: true},
		{name: "state not ASCII", params: authzParams("state", "estado-ñ"), error: "invalid_request", noState: true},
		{name: "nonce with a control character", params: authzParams("nonce", "n\tonce"), error: "invalid_request"},
		{name: "nonce too long", params: authzParams("nonce", strings.Repeat("n", maxNonce+1)), error: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hashes := ts.hashes.Load()
			r := ts.authorizeGet(tt.params)
			if ts.hashes.Load() != hashes {
				t.Error("a GET checked a password")
			}
			if tt.page != 0 {
				if r.Status != tt.page || r.Header.Get("Location") != "" {
					t.Fatalf("got %d Location %q, want a %d page: %s", r.Status, r.Header.Get("Location"), tt.page, r.Body)
				}
				if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type %q, want HTML", ct)
				}
				f := parsePage(t, r.Body)
				if tt.page == 200 {
					if !f.hasForm || f.alert != "" {
						t.Errorf("the login page has form %v, alert %q", f.hasForm, f.alert)
					}
					if f.fields.Get("state") != tt.params.Get("state") || f.fields.Get("redirect_uri") != tt.params.Get("redirect_uri") {
						t.Errorf("the form does not carry the request: %v", f.fields)
					}
				} else if f.hasForm || f.alert == "" {
					t.Errorf("an error page has form %v, alert %q", f.hasForm, f.alert)
				}
				return
			}
			redirect := tt.params.Get("redirect_uri")
			q := redirectedTo(t, r, redirect)
			if q.Get("error") != tt.error || q.Get("error_description") == "" {
				t.Errorf("error=%q error_description=%q, want %s", q.Get("error"), q.Get("error_description"), tt.error)
			}
			// RFC 6749 §4.1.2.1: %x20-21 / %x23-5B / %x5D-7E.
			for _, c := range []byte(q.Get("error_description")) {
				if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
					t.Errorf("error_description %q has %q, which RFC 6749 does not allow", q.Get("error_description"), c)
				}
			}
			wantState := tt.params.Get("state")
			if tt.noState {
				wantState = ""
			}
			if _, sent := q["state"]; q.Get("state") != wantState || sent != (wantState != "") {
				t.Errorf("state = %q, want %q", q.Get("state"), wantState)
			}
			if q.Get("iss") != "https://login.test" {
				t.Errorf("iss = %q, want the issuer", q.Get("iss"))
			}
			if q.Has("code") {
				t.Error("an error carries a code")
			}
		})
	}
}

func TestAuthorize_ErrorKeepsTheRegisteredQuery(t *testing.T) {
	ts := newAuthzServer(t, nil)
	r := ts.authorizeGet(authzParams("redirect_uri", "https://portal.impo.test/cb?tenant=a", "prompt", "none"))
	q := redirectedTo(t, r, "https://portal.impo.test/cb?tenant=a")
	if q.Get("tenant") != "a" || q.Get("error") != "login_required" {
		t.Fatalf("Location %q", r.Header.Get("Location"))
	}
}

func TestAuthorize_PageIsAccessibleAndLocked(t *testing.T) {
	ts := newAuthzServer(t, nil)
	r := ts.authorizeGet(authzParams())
	f := parsePage(t, r.Body)
	if !strings.Contains(r.Body, `<html lang="es">`) || !strings.Contains(r.Body, "Portal de prueba") {
		t.Errorf("the page is not Spanish or does not name the client:\n%s", r.Body)
	}
	for id, want := range map[string]struct{ label, autocomplete, typ string }{
		"username": {"Usuario", "username", "text"},
		"password": {"Contraseña", "current-password", "password"},
	} {
		in := f.inputs[id]
		if f.labels[id] != want.label || in["autocomplete"] != want.autocomplete || in["type"] != want.typ || in["name"] != id {
			t.Errorf("input %s: label %q, attributes %v; want label %q, autocomplete %q", id, f.labels[id], in, want.label, want.autocomplete)
		}
	}
	if f.action != "/authorize" {
		t.Errorf("the form posts to %q, want /authorize", f.action)
	}
	if len(f.fields.Get("csrf")) != 43 {
		t.Errorf("CSRF field %q, want 256 bits in base64url", f.fields.Get("csrf"))
	}
	for _, bad := range []string{"<script", "src=", "href=", " on"} {
		if strings.Contains(strings.ToLower(r.Body), bad) {
			t.Errorf("the page has %q: no script, no asset", bad)
		}
	}

	sum := sha256.Sum256([]byte(f.style))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src " + hash +
			"; form-action 'self' https://portal.impo.test; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":        "DENY",
		"Cache-Control":          "no-store",
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
		"Content-Type":           "text/html; charset=utf-8",
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if f.style == "" {
		t.Error("the page has no style")
	}
	// The CSRF cookie: host-only, Secure, HttpOnly, Strict on an https issuer.
	c := cookieOf(r, "__Host-impo_csrf")
	if c == nil || c.Value != f.fields.Get("csrf") || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("CSRF cookie %+v", c)
	}

	// An error page: no form, so no form may be sent anywhere.
	bad := ts.authorizeGet(authzParams("client_id", "nobody"))
	if csp := bad.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'none'") || bad.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("error page headers: %v", bad.Header)
	}
	if cookieOf(bad, "__Host-impo_csrf") != nil {
		t.Error("an error page set a CSRF cookie")
	}
	// A redirect also stays out of caches and Referer headers.
	back := ts.authorizeGet(authzParams("prompt", "none"))
	if back.Header.Get("Cache-Control") != "no-store" || back.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("redirect headers: %v", back.Header)
	}
}

func TestAuthorize_LoopbackIssuer(t *testing.T) {
	ts := newAuthzServer(t, func(_ *config, sc *session.Config) { sc.Issuer = "http://127.0.0.1:8080/Login" })
	p := authzParams("client_id", "local-app", "redirect_uri", "http://127.0.0.1:5173/callback")
	r := ts.authorizeGet(p)
	c := cookieOf(r, "impo_csrf")
	if r.Status != 200 || c == nil || c.Secure || !c.HttpOnly || cookieOf(r, "__Host-impo_csrf") != nil {
		t.Fatalf("%d, CSRF cookie %+v: want impo_csrf, not Secure, on http", r.Status, c)
	}
	if f := parsePage(t, r.Body); f.action != "/Login/authorize" {
		t.Errorf("the form posts to %q, want the issuer's path /Login/authorize", f.action)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' http://127.0.0.1:5173;") {
		t.Errorf("CSP %q", csp)
	}
	form := ts.openLoginPage(t, p)
	q := redirectedTo(t, ts.submit(form, "ana", "ana-secret-pw"), "http://127.0.0.1:5173/callback")
	if q.Get("iss") != "http://127.0.0.1:8080/Login" || q.Get("code") == "" {
		t.Errorf("redirect %v", q)
	}
}

func TestAuthorize_LogInIssuesACode(t *testing.T) {
	log := logtest.Capture(t)
	ts := newAuthzServer(t, nil)
	form := ts.openLoginPage(t, authzParams())
	r := ts.submit(form, "Ana", "ana-secret-pw")
	q := redirectedTo(t, r, authzRedirect)
	code := q.Get("code")
	if code == "" || q.Get("state") != authzState || q.Get("iss") != "https://login.test" || q.Has("error") {
		t.Fatalf("redirect %v", q)
	}
	if c := cookieOf(r, "impo_device"); c == nil || !c.HttpOnly {
		t.Error("no device cookie: the page should count as the person's device like /token")
	}
	if c := cookieOf(r, "__Host-impo_csrf"); c == nil || c.MaxAge >= 0 {
		t.Errorf("the CSRF cookie stays after the login: %+v", c)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Error("the redirect with a code may be cached")
	}
	// The code is what shared/oauth redeems, bound to the verifier.
	ctx := context.Background()
	if _, _, err := ts.codes.Redeem(ctx, code, "portal", authzRedirect, "another-verifier-another-verifier-another-verifier", time.Hour); !errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("redeemed with the wrong verifier: %v", err)
	}
	form = ts.openLoginPage(t, authzParams())
	code = redirectedTo(t, ts.submit(form, "ana", "ana-secret-pw"), authzRedirect).Get("code")
	a, jti, err := ts.codes.Redeem(ctx, code, "portal", authzRedirect, authzVerifier, time.Hour)
	if err != nil {
		t.Fatalf("Redeem: %v", err)
	}
	if a.Subject != "ana" || a.ClientID != "portal" || a.RedirectURI != authzRedirect || a.Nonce != authzNonce ||
		strings.Join(a.Scope, " ") != "openid" || strings.Join(a.AMR, " ") != "pwd" || a.Family == "" || jti == "" ||
		!a.AuthTime.Equal(ts.clock.Now()) {
		t.Errorf("authorization %+v, jti %q", a, jti)
	}
	if len(log.Messages("authorization code issued")) != 2 {
		t.Errorf("want one log line per code:\n%s", log.String())
	}
}

func TestAuthorize_WrongCredentialsAllLookAlike(t *testing.T) {
	ts := newAuthzServer(t, nil)
	form := ts.openLoginPage(t, authzParams())
	const typed = "NAME-TYPED"
	page := func(user, pw string) response {
		r := ts.submit(form, user, pw)
		r.Body = strings.ReplaceAll(r.Body, user, typed)
		r.Header.Del("Date")
		return r
	}
	reference := page("ana", "wrong-password")
	f := parsePage(t, reference.Body)
	if reference.Status != 400 || f.alert != "Usuario o contraseña incorrectos." || f.fields.Get("username") != typed || f.fields.Get("password") != "" {
		t.Fatalf("wrong password: %d alert %q fields %v", reference.Status, f.alert, f.fields)
	}
	if strings.Contains(reference.Body, "wrong-password") {
		t.Error("the page shows the password")
	}
	for _, tt := range []struct{ name, user, pw string }{
		{"unknown account", "zoe", "wrong-password"},
		{"disabled account, right password", "bea", "bea-secret-pw"},
		{"service account, right secret", "pipeline", "pipeline-client-secret"},
		{"another person, wrong password", "ops", "wrong-password"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := page(tt.user, tt.pw)
			if got.Status != reference.Status || got.Body != reference.Body {
				t.Errorf("got %d, want the same page as a wrong password:\n%s\nwant:\n%s", got.Status, got.Body, reference.Body)
			}
			if len(got.Header) != len(reference.Header) {
				t.Errorf("headers %v, want %v", got.Header, reference.Header)
			}
			for k := range reference.Header {
				if got.Header.Get(k) != reference.Header.Get(k) {
					t.Errorf("%s: %q, want %q", k, got.Header.Get(k), reference.Header.Get(k))
				}
			}
		})
	}
}

func TestAuthorize_CSRF(t *testing.T) {
	ts := newAuthzServer(t, nil)
	good := ts.openLoginPage(t, authzParams())
	other := ts.openLoginPage(t, authzParams())
	tests := []struct {
		name string
		form func() loginForm
	}{
		{"no cookie", func() loginForm { f := good; f.cookie = ""; return f }},
		{"no field", func() loginForm {
			f := loginForm{fields: url.Values{}, cookie: good.cookie}
			for k, v := range good.fields {
				if k != "csrf" {
					f.fields[k] = v
				}
			}
			return f
		}},
		{"another page's cookie", func() loginForm { f := good; f.cookie = other.cookie; return f }},
		{"cookie without the __Host- prefix", func() loginForm {
			f := good
			f.cookie = "impo_csrf=" + good.fields.Get("csrf")
			return f
		}},
		{"empty field and cookie", func() loginForm {
			f := loginForm{fields: url.Values{}, cookie: "__Host-impo_csrf="}
			for k, v := range good.fields {
				f.fields[k] = v
			}
			f.fields.Set("csrf", "")
			return f
		}},
	}
	// More refusals than LOGIN_MAX_FAILURES, with the right password: none
	// is checked, none counts.
	for range 2 {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := ts.submit(tt.form(), "ana", "ana-secret-pw")
				f := parsePage(t, r.Body)
				fresh := cookieOf(r, "__Host-impo_csrf")
				if r.Status != 403 || f.alert != "La página caducó; vuelva a intentarlo." || !f.hasForm || f.fields.Get("username") != "ana" {
					t.Fatalf("got %d alert %q: %s", r.Status, f.alert, r.Body)
				}
				if fresh == nil || fresh.Value != f.fields.Get("csrf") || fresh.Value == good.fields.Get("csrf") {
					t.Errorf("want a fresh CSRF token in the cookie and the form: cookie %+v, field %q", fresh, f.fields.Get("csrf"))
				}
			})
		}
	}
	if h := ts.hashes.Load(); h != 0 {
		t.Errorf("CSRF refusals computed %d hashes, want none", h)
	}
	// The fresh form that a refusal shows works.
	r := ts.submit(good, "ana", "ana-secret-pw")
	redirectedTo(t, r, authzRedirect)
}

func TestAuthorize_LockOutOnThePage(t *testing.T) {
	ts := newAuthzServer(t, nil)
	form := ts.openLoginPage(t, authzParams())
	for i := range 5 { // LOGIN_MAX_FAILURES in testConfig
		if r := ts.submit(form, "ana", "guess"+strconv.Itoa(i)); r.Status != 400 {
			t.Fatalf("guess %d: %d", i, r.Status)
		}
	}
	hashes := ts.hashes.Load()
	r := ts.submit(form, "ana", "ana-secret-pw")
	f := parsePage(t, r.Body)
	if r.Status != 429 || f.alert != "Demasiados intentos; vuelva a intentar en 1 minuto." || !f.hasForm {
		t.Fatalf("locked: %d alert %q", r.Status, f.alert)
	}
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra < 1 || ra > 30 {
		t.Errorf("Retry-After %q, want 1..30 seconds", r.Header.Get("Retry-After"))
	}
	if ts.hashes.Load() != hashes {
		t.Error("a locked login reached the hash")
	}
	ts.clock.Advance(31 * time.Second)
	redirectedTo(t, ts.submit(form, "ana", "ana-secret-pw"), authzRedirect)
}

func TestLockedMessage(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "Demasiados intentos; vuelva a intentar en 1 minuto."},
		{time.Second, "Demasiados intentos; vuelva a intentar en 1 minuto."},
		{time.Minute, "Demasiados intentos; vuelva a intentar en 1 minuto."},
		{time.Minute + time.Second, "Demasiados intentos; vuelva a intentar en 2 minutos."},
		{15 * time.Minute, "Demasiados intentos; vuelva a intentar en 15 minutos."},
	} {
		if got := lockedMessage(tt.d); got != tt.want {
			t.Errorf("lockedMessage(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// unavailableStore fails every call, as the state store in an outage.
type unavailableStore struct{ store.Store }

func (unavailableStore) Put(context.Context, string, store.Entry) error {
	return store.ErrUnavailable
}

func (unavailableStore) Claim(context.Context, string, store.Entry) (bool, error) {
	return false, store.ErrUnavailable
}

func TestAuthorize_FailuresArePages(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*testServer)
		do      func(*testServer, loginForm) response
		status  int
		alert   string
		form    bool
		header  string // a header the answer must have
		noCheck bool   // no password may be checked
	}{
		{name: "busy hashing", setup: func(ts *testServer) {
			ts.authn.Matches = func(context.Context, password.Hashed, []byte) (bool, error) { return false, password.ErrBusy }
		}, do: func(ts *testServer, f loginForm) response { return ts.submit(f, "ana", "ana-secret-pw") },
			status: 503, alert: "Hay demasiados inicios de sesión en este momento; vuelva a intentarlo en unos segundos.", form: true, header: "Retry-After"},
		{name: "accounts secret missing", setup: func(ts *testServer) { os.Remove(filepath.Join(ts.dir, "accounts")) },
			do:     func(ts *testServer, f loginForm) response { return ts.submit(f, "ana", "ana-secret-pw") },
			status: 500, alert: misconfiguredMessage, noCheck: true},
		{name: "state store down when storing the code", setup: func(ts *testServer) {
			ts.codes.Store = unavailableStore{ts.codes.Store}
		}, do: func(ts *testServer, f loginForm) response { return ts.submit(f, "ana", "ana-secret-pw") },
			status: 503, alert: unavailableMessage, form: true, header: "Retry-After"},
		{name: "clients secret missing", setup: func(ts *testServer) { os.Remove(filepath.Join(ts.dir, "clients")) },
			do:     func(ts *testServer, f loginForm) response { return ts.authorizeGet(authzParams()) },
			status: 500, alert: misconfiguredMessage, noCheck: true},
		{name: "clients secret malformed", setup: func(ts *testServer) { os.WriteFile(filepath.Join(ts.dir, "clients"), []byte("{"), 0o600) },
			do:     func(ts *testServer, f loginForm) response { return ts.submit(f, "ana", "ana-secret-pw") },
			status: 500, alert: misconfiguredMessage, noCheck: true},
		{name: "clients secret over 64 KiB", setup: func(ts *testServer) {
			os.WriteFile(filepath.Join(ts.dir, "clients"), []byte("["+strings.Repeat(" ", 1<<20)+"]"), 0o600)
		}, do: func(ts *testServer, f loginForm) response { return ts.authorizeGet(authzParams()) },
			status: 500, alert: misconfiguredMessage, noCheck: true},
		{name: "PUT", do: func(ts *testServer, f loginForm) response { return ts.do("PUT", "/authorize", ctForm, "") },
			status: 405, alert: "Esta dirección se abre desde una aplicación, no de esta manera.", header: "Allow", noCheck: true},
		{name: "JSON body", do: func(ts *testServer, f loginForm) response {
			return ts.do("POST", "/authorize", ctJSON, `{"username":"ana"}`, "Cookie", f.cookie)
		}, status: 415, alert: "El pedido de inicio de sesión no es válido.", noCheck: true},
		{name: "body over the limit", do: func(ts *testServer, f loginForm) response {
			return ts.do("POST", "/authorize", ctForm, "x="+strings.Repeat("a", maxBody), "Cookie", f.cookie)
		}, status: 413, alert: "El pedido de inicio de sesión no es válido.", noCheck: true},
		{name: "form parameter twice", do: func(ts *testServer, f loginForm) response {
			return ts.do("POST", "/authorize", ctForm, f.fields.Encode()+"&username=ana&username=ops&password=x", "Cookie", f.cookie)
		}, status: 400, alert: "El pedido de inicio de sesión no es válido.", noCheck: true},
		{name: "a redirect_uri changed in the form", do: func(ts *testServer, f loginForm) response {
			f.fields.Set("redirect_uri", "https://evil.test/callback")
			return ts.submit(f, "ana", "ana-secret-pw")
		}, status: 400, noCheck: true},
		{name: "malformed query", do: func(ts *testServer, f loginForm) response { return ts.do("GET", "/authorize?a=%zz", "", "") },
			status: 400, alert: "El pedido de inicio de sesión no es válido.", noCheck: true},
		{name: "empty password", do: func(ts *testServer, f loginForm) response { return ts.submit(f, "ana", "") },
			status: 400, alert: "Escriba su usuario y su contraseña.", form: true, noCheck: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newAuthzServer(t, nil)
			form := ts.openLoginPage(t, authzParams())
			if tt.setup != nil {
				tt.setup(ts)
			}
			r := tt.do(ts, form)
			if r.Status != tt.status || r.Header.Get("Content-Type") != "text/html; charset=utf-8" || r.Header.Get("Location") != "" {
				t.Fatalf("got %d %q Location %q, want a %d page: %s", r.Status, r.Header.Get("Content-Type"), r.Header.Get("Location"), tt.status, r.Body)
			}
			f := parsePage(t, r.Body)
			if tt.alert != "" && f.alert != tt.alert || f.alert == "" {
				t.Errorf("alert %q, want %q", f.alert, tt.alert)
			}
			if f.hasForm != tt.form {
				t.Errorf("form shown: %v, want %v", f.hasForm, tt.form)
			}
			if tt.header != "" && r.Header.Get(tt.header) == "" {
				t.Errorf("no %s header", tt.header)
			}
			if r.Header.Get("X-Frame-Options") != "DENY" || r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", r.Header)
			}
			if tt.noCheck && ts.hashes.Load() != 0 {
				t.Errorf("%d passwords checked, want none", ts.hashes.Load())
			}
			if strings.Contains(r.Body, ts.dir) {
				t.Error("the page shows a server path")
			}
		})
	}
}

func TestAuthorize_LogsHoldNoSecrets(t *testing.T) {
	log := logtest.Capture(t)
	ts := newAuthzServer(t, nil)
	form := ts.openLoginPage(t, authzParams())
	ts.submit(form, "ana", "wrong-guess-pw")
	ts.submit(form, "ana-secret-pw", "typed-into-name") // the password typed in the name field
	ts.submit(loginForm{fields: form.fields}, "ana", "csrf-refused-pw")
	r := ts.submit(form, "ana", "ana-secret-pw")
	code := redirectedTo(t, r, authzRedirect).Get("code")
	logs := log.String()
	if !strings.Contains(logs, "login refused") || !strings.Contains(logs, "authorization code issued") {
		t.Fatalf("expected events missing from the log:\n%s", logs)
	}
	for _, secret := range []string{"ana-secret-pw", "wrong-guess-pw", "typed-into-name", "csrf-refused-pw", code,
		form.fields.Get("csrf"), authzVerifier} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains a secret %.12q…", secret)
		}
	}
}

// A scope is the one authorization parameter with no bound of its own:
// a client that repeated "openid" over 16 KiB got a page whose form
// carried it back as it came, over the form's body limit, so that no
// password could ever be submitted (413). The page now carries the
// scope as granted.
func TestAuthorize_ALongScopeStillLogsIn(t *testing.T) {
	ts := newAuthzServer(t, nil)
	long := strings.TrimSpace(strings.Repeat("openid ", 3000))
	form := ts.openLoginPage(t, authzParams("scope", long))
	if got := form.fields.Get("scope"); got != "openid" {
		t.Errorf("the page carries scope %.40q…, want openid", got)
	}
	r := ts.submit(form, "ana", "ana-secret-pw")
	redirectedTo(t, r, authzRedirect)
}
