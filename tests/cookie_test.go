package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Cookie mode, end to end: cmd/local serves every function on one host,
// as a load balancer or Firebase Hosting does in production, so the
// cookie that /Login/token sets reaches /GetToken.

const (
	cookiePortal = "https://portal.impo.test"
	cookieName   = "impo_session"
)

// startCookieMode runs cmd/local in cookie mode, with the portal as the
// one allowed origin, and returns it with the dev password it printed.
func startCookieMode(t *testing.T) (*localServer, string) {
	t.Helper()
	s := startLocal(t, "CREDENTIALS_DIR="+t.TempDir(), "SESSION_COOKIE="+cookieName, "CORS_ALLOWED_ORIGINS="+cookiePortal)
	ctx, cancel := context.WithTimeout(context.Background(), startGuard)
	defer cancel()
	m, err := s.Stderr.Line(ctx, devPasswordRE)
	if err != nil {
		t.Fatalf("no dev password printed (%v):\n%s", err, s.Stderr)
	}
	return s, m[1]
}

// browserResponse is what a page's request got back.
type browserResponse struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// browserPost sends what a browser sends for a page: the body, and the
// header pairs (Origin, Sec-Fetch-Site, Cookie) the test gives.
func browserPost(t *testing.T, u, contentType, body string, header ...string) browserResponse {
	t.Helper()
	resp, raw := send(t, u, contentType, body, header...)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return browserResponse{resp.StatusCode, resp.Header, m, string(raw)}
}

func sessionCookie(r browserResponse) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == cookieName {
			return c
		}
	}
	return nil
}

// TestCookie_LoginCSRFRefused: a foreign page auto-submits a login form
// with the attacker's credentials; had it worked, the visitor would be
// working in the attacker's account (login CSRF). It is refused and sets
// no cookie.
func TestCookie_LoginCSRFRefused(t *testing.T) {
	s, pw := startCookieMode(t)
	attack := url.Values{"grant_type": {"password"}, "client_id": {"impo-web-dev"}, "username": {"dev"}, "password": {pw}}.Encode()
	r := browserPost(t, s.URL+"/Login/token", "application/x-www-form-urlencoded", attack,
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document")
	if r.Status != 403 || r.Body["error"] != "unauthorized_client" {
		t.Fatalf("cross-site login form: %d %s, want 403 unauthorized_client", r.Status, r.Raw)
	}
	if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Fatalf("a cross-site login set %v", c)
	}
	if strings.Contains(r.Raw, "eyJ") {
		t.Fatalf("a cross-site login answered a token: %s", r.Raw)
	}
}

// TestCookie_CSRFRefusedAndNoTokenInBody: the portal's login leaves the
// session only in the HttpOnly cookie (the body has no token for a script
// to read), the cookie works from the portal, and a foreign page that
// makes the browser send it to GetToken or /revoke is refused.
func TestCookie_CSRFRefusedAndNoTokenInBody(t *testing.T) {
	s, pw := startCookieMode(t)
	login := `{"client_id":"impo-web-dev","username":"dev","password":"` + pw + `"}`

	r := browserPost(t, s.URL+"/Login/token", "application/json", login,
		"Origin", cookiePortal, "Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "cors")
	c := sessionCookie(r)
	if r.Status != 200 || c == nil {
		t.Fatalf("portal login: %d %s %v", r.Status, r.Raw, r.Header.Values("Set-Cookie"))
	}
	if _, ok := r.Body["access_token"]; ok || strings.Contains(r.Raw, c.Value) {
		t.Fatalf("the browser login's body carries the token: %s", r.Raw)
	}
	if r.Body["token_type"] != "Bearer" || r.Body["expires_in"] != float64(3600) {
		t.Errorf("browser login body = %s, want token_type and expires_in", r.Raw)
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Errorf("cookie = %+v, want HttpOnly, Secure, SameSite=Strict, Path=/", c)
	}
	jar := cookieName + "=" + c.Value

	// A script (no Origin, no Fetch Metadata) still gets its token in the
	// body, and no cookie: the README's curl walkthrough works as written.
	script := browserPost(t, s.URL+"/Login/token", "application/json", login)
	other, _ := script.Body["access_token"].(string)
	if script.Status != 200 || other == "" || sessionCookie(script) != nil {
		t.Fatalf("script login in cookie mode: %d %s %v", script.Status, script.Raw, script.Header.Values("Set-Cookie"))
	}
	active := func() bool {
		_, body := post(t, s.URL+"/Login/introspect", "application/x-www-form-urlencoded", "token="+url.QueryEscape(other),
			"Authorization", "Bearer "+other)
		return body["active"] == true
	}

	scopes := `{"scopes":["https://www.googleapis.com/auth/cloud-platform"]}`
	foreign := [][]string{
		{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.impo.test", "Sec-Fetch-Site", "same-site"}, // SameSite=Strict lets it through
		{}, // no Origin: no browser posts without one
	}
	for _, h := range foreign {
		h := append([]string{"Cookie", jar}, h...)
		if r := browserPost(t, s.URL+"/GetToken", "application/json", scopes, h...); r.Status != 403 || r.Body["access_token"] != nil {
			t.Fatalf("GetToken by cookie with %v: %d %s, want 403", h[2:], r.Status, r.Raw)
		}
		// dev has session-admin: through its cookie, a foreign page could
		// end any session whose token it knows.
		if r := browserPost(t, s.URL+"/Login/revoke", "application/x-www-form-urlencoded", "token="+url.QueryEscape(other), h...); r.Status != 403 {
			t.Fatalf("revoke by cookie with %v: %d %s, want 403", h[2:], r.Status, r.Raw)
		}
		if !active() {
			t.Fatalf("a refused cross-site revoke (%v) ended the session", h[2:])
		}
	}

	// From the portal, over HTTPS as Google's front end reports it, the
	// cookie gets a Google token, and the answer pins the browser to HTTPS.
	r = browserPost(t, s.URL+"/GetToken", "application/json", scopes,
		"Cookie", jar, "Origin", cookiePortal, "Sec-Fetch-Site", "same-site", "X-Forwarded-Proto", "https")
	if r.Status != 200 || r.Body["access_token"] == nil {
		t.Fatalf("GetToken by cookie from the portal: %d %s", r.Status, r.Raw)
	}
	if got := r.Header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("Strict-Transport-Security = %q on an HTTPS response", got)
	}
	if got := script.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("Strict-Transport-Security = %q on a plain-HTTP response", got)
	}
}
