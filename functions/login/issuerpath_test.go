package login

import (
	"net/url"
	"strings"
	"testing"

	"impo.com.uy/copetes/backend/shared/session"
)

// deploy.sh accepts LOGIN_URL with a path (https://www.impo.com.uy/login:
// login behind a load balancer or Firebase Hosting, which forward the
// path as it is). Every endpoint then lives under that path, and the
// hosted page's form posts there, but login only answered at the bare
// paths (/token, /authorize): each request under the issuer was a 404,
// discovery included. Now it answers under its issuer's path as well as
// at the bare paths (a proxy that strips the path, cmd/local), and the
// RFC 8414 §3 document at the host's root with the path appended.
func TestRoutes_AnIssuerWithAPathIsServedUnderIt(t *testing.T) {
	const issuer = "https://www.impo.test/login"
	ts := newAuthzServer(t, func(_ *config, s *session.Config) { s.Issuer = issuer })
	for _, path := range []string{
		"/login/.well-known/openid-configuration",
		"/login/.well-known/oauth-authorization-server",
		"/.well-known/oauth-authorization-server/login", // RFC 8414 §3
		"/.well-known/openid-configuration",             // a proxy that strips /login
	} {
		r := ts.do("GET", path, "", "")
		if r.Status != 200 || r.json(t)["issuer"] != issuer {
			t.Errorf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	if r := ts.do("GET", "/login/jwks", "", ""); r.Status != 200 {
		t.Errorf("GET /login/jwks: %d", r.Status)
	}

	// The browser flow, as a browser follows it: the page at the
	// authorization endpoint, its form to the action it names.
	r := ts.do("GET", "/login/authorize?"+authzParams().Encode(), "", "")
	page := parsePage(t, r.Body)
	c := cookieOf(r, ts.csrfCookieName())
	if r.Status != 200 || c == nil || page.action != "/login/authorize" {
		t.Fatalf("GET /login/authorize: %d, form action %q", r.Status, page.action)
	}
	page.fields.Set("username", "ana")
	page.fields.Set("password", "ana-secret-pw")
	r = ts.do("POST", page.action, ctForm, page.fields.Encode(), "Cookie", c.Name+"="+c.Value)
	code := redirectedTo(t, r, authzRedirect).Get("code")
	tok := okTokens(t, ts.do("POST", "/login/token", ctForm, url.Values{"grant_type": {"authorization_code"},
		"client_id": {"portal"}, "code": {code}, "redirect_uri": {authzRedirect}, "code_verifier": {authzVerifier}}.Encode()))
	if r := ts.do("GET", "/login/userinfo", "", "", "Authorization", "Bearer "+tok.Access); r.Status != 200 {
		t.Errorf("GET /login/userinfo: %d %s", r.Status, r.Body)
	}

	// Only the issuer's own path: /loginx is not under /login.
	if r := ts.do("GET", "/loginx/jwks", "", ""); r.Status != 404 {
		t.Errorf("GET /loginx/jwks: %d, want 404", r.Status)
	}
	if r := ts.do("GET", "/.well-known/oauth-authorization-server/other", "", ""); r.Status != 404 || strings.Contains(r.Body, `"issuer"`) {
		t.Errorf("another issuer's RFC 8414 path: %d", r.Status)
	}
}
