package login

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/logtest"
	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/oauth"
	"impo.com.uy/copetes/backend/shared/session"
)

// The registered clients of the tests.
const (
	pwClient     = "legacy"        // the password grant only
	webClient    = "web"           // the code flow with refresh
	codeOnly     = "web-norefresh" // the code flow without refresh
	deskClient   = "desk"          // another application with the code flow and refresh
	legacyOrigin = "https://legacy.impo.test"
	webOrigin    = "https://app.impo.test"
	webRedirect  = webOrigin + "/cb"
	webLogout    = webOrigin + "/bye"
	deskOrigin   = "https://desk.impo.test"
)

var testClients = []clients.Client{
	{ID: pwClient, Kind: clients.Public, AllowedOrigins: []string{legacyOrigin},
		GrantTypes: []clients.Grant{clients.Password}},
	{ID: webClient, Kind: clients.Public, RedirectURIs: []string{webRedirect}, AllowedOrigins: []string{webOrigin},
		PostLogoutRedirectURIs: []string{webLogout}, GrantTypes: []clients.Grant{clients.AuthorizationCode, clients.RefreshToken}},
	{ID: codeOnly, Kind: clients.Public, RedirectURIs: []string{webRedirect}, AllowedOrigins: []string{webOrigin},
		GrantTypes: []clients.Grant{clients.AuthorizationCode}},
	{ID: deskClient, Kind: clients.Public, RedirectURIs: []string{deskOrigin + "/cb"}, AllowedOrigins: []string{deskOrigin},
		PostLogoutRedirectURIs: []string{deskOrigin + "/"}, GrantTypes: []clients.Grant{clients.AuthorizationCode, clients.RefreshToken}},
}

// writeClients writes the clients secret of the tests into dir.
func writeClients(t *testing.T, dir string) {
	t.Helper()
	data, err := clients.Marshal(testClients)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "clients"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// RFC 7636 appendix B's verifier and challenge.
const (
	verifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// grant is what the hosted page grants sub through client, as it records
// it: scope openid, a nonce, the password as the method.
func (ts *testServer) grant(client, sub string, scope ...string) oauth.Authorization {
	if scope == nil {
		scope = []string{"openid"}
	}
	return oauth.Authorization{ClientID: client, RedirectURI: redirectOf(client), Subject: sub, Scope: scope,
		Nonce: "n-0S6_WzA2Mj", AuthTime: ts.clock.Now(), AMR: []string{"pwd"}, Family: oauth.NewFamilyID()}
}

func redirectOf(client string) string {
	for _, c := range testClients {
		if c.ID == client && len(c.RedirectURIs) > 0 {
			return c.RedirectURIs[0]
		}
	}
	return ""
}

// code issues a code for a, as the hosted page does.
func (ts *testServer) code(t *testing.T, a oauth.Authorization) string {
	t.Helper()
	code, err := ts.codes.Issue(context.Background(), a, challenge)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// exchange redeems code for client with the right redirect URI and
// verifier; kv replaces or adds form fields ("" drops one).
func (ts *testServer) exchange(client, code string, kv ...string) response {
	v := url.Values{"grant_type": {"authorization_code"}, "client_id": {client}, "code": {code},
		"redirect_uri": {redirectOf(client)}, "code_verifier": {verifier}}
	return ts.post("/token", v, kv...)
}

func (ts *testServer) refreshWith(client, token string, kv ...string) response {
	v := url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {token}}
	return ts.post("/token", v, kv...)
}

// post sends form v, edited by kv (name, value; a value "" drops it),
// and headers after a "--" among kv.
func (ts *testServer) post(path string, v url.Values, kv ...string) response {
	var header []string
	if i := slices.Index(kv, "--"); i >= 0 {
		kv, header = kv[:i], kv[i+1:]
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return ts.do("POST", path, ctForm, v.Encode(), header...)
}

// tokens is a successful token response.
type tokens struct {
	Access, Refresh, ID, Scope string
	ExpiresIn                  float64
}

func okTokens(t *testing.T, r response) tokens {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("token: %d %s", r.Status, r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	m := r.json(t)
	if m["token_type"] != "Bearer" {
		t.Errorf("token_type = %v", m["token_type"])
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	expires, _ := m["expires_in"].(float64)
	return tokens{str("access_token"), str("refresh_token"), str("id_token"), str("scope"), expires}
}

// oauthError checks r is RFC 6749 §5.2's error code with status.
func oauthError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.Status != status || r.json(t)["error"] != code {
		t.Fatalf("got %d %s; want %d %s", r.Status, r.Body, status, code)
	}
}

func (ts *testServer) verify(token string) error {
	_, err := ts.auth.Verifier.Verify(context.Background(), token)
	return err
}

// login runs the code flow for ana through web: code, then tokens.
func (ts *testServer) codeFlow(t *testing.T, client string) tokens {
	t.Helper()
	return okTokens(t, ts.exchange(client, ts.code(t, ts.grant(client, "ana"))))
}

func TestCodeGrant_IssuesTheSession(t *testing.T) {
	ts := newTestServer(t, nil)
	tests := []struct {
		name        string
		client      string
		scope       []string
		wantRefresh bool
		wantID      bool
	}{
		{"openid, with refresh", webClient, []string{"openid"}, true, true},
		{"no openid: no ID token", webClient, []string{}, true, false},
		{"a client without the refresh grant", codeOnly, []string{"openid"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ts.grant(tt.client, "ana", tt.scope...)
			got := okTokens(t, ts.exchange(tt.client, ts.code(t, a)))
			c, err := ts.auth.Verifier.Verify(context.Background(), got.Access)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "ana" || c.ClientID != tt.client || c.Kind != "user" || !slices.Equal(c.Roles, []string{"editor"}) {
				t.Errorf("access token claims = %+v", c)
			}
			if got.ExpiresIn != 3600 || got.Scope != strings.Join(tt.scope, " ") {
				t.Errorf("expires_in %v, scope %q", got.ExpiresIn, got.Scope)
			}
			if (got.Refresh != "") != tt.wantRefresh || (got.ID != "") != tt.wantID {
				t.Errorf("refresh token %v, ID token %v; want %v, %v", got.Refresh != "", got.ID != "", tt.wantRefresh, tt.wantID)
			}
			if got.Refresh != "" && len(got.Refresh) < 43 {
				t.Errorf("refresh token %d characters: fewer than 256 bits", len(got.Refresh))
			}
		})
	}
}

func TestCodeGrant_Refusals(t *testing.T) {
	ts := newTestServer(t, nil)
	tests := []struct {
		name   string
		client string // the code's
		sub    string
		edit   []string
		before func()
		status int
		code   string
	}{
		{"unknown client", webClient, "ana", []string{"client_id", "ghost"}, nil, 401, "invalid_client"},
		{"no client_id", webClient, "ana", []string{"client_id", ""}, nil, 401, "invalid_client"},
		{"a client secret: public clients have none", webClient, "ana", []string{"client_secret", "s"}, nil, 401, "invalid_client"},
		{"HTTP Basic", webClient, "ana", []string{"--", "Authorization", "Basic d2ViOg=="}, nil, 401, "invalid_client"},
		{"a client without the code grant", webClient, "ana", []string{"client_id", pwClient}, nil, 400, "unauthorized_client"},
		{"the code of another client", webClient, "ana", []string{"client_id", deskClient, "redirect_uri", deskOrigin + "/cb"}, nil, 400, "invalid_grant"},
		{"wrong redirect URI", webClient, "ana", []string{"redirect_uri", webOrigin + "/other"}, nil, 400, "invalid_grant"},
		{"PKCE mismatch", webClient, "ana", []string{"code_verifier", strings.Repeat("a", 43)}, nil, 400, "invalid_grant"},
		{"malformed verifier", webClient, "ana", []string{"code_verifier", "short"}, nil, 400, "invalid_request"},
		{"no verifier", webClient, "ana", []string{"code_verifier", ""}, nil, 400, "invalid_request"},
		{"no redirect URI", webClient, "ana", []string{"redirect_uri", ""}, nil, 400, "invalid_request"},
		{"no code", webClient, "ana", []string{"code", ""}, nil, 400, "invalid_request"},
		{"unknown code", webClient, "ana", []string{"code", "not-a-code"}, nil, 400, "invalid_grant"},
		{"expired code", webClient, "ana", nil, func() { ts.clock.Advance(oauth.CodeTTL + time.Second) }, 400, "invalid_grant"},
		{"a disabled account", webClient, "bea", nil, nil, 400, "invalid_grant"},
		{"a page of another origin", webClient, "ana", []string{"--", "Origin", deskOrigin}, nil, 403, "unauthorized_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := ts.code(t, ts.grant(tt.client, tt.sub))
			if tt.before != nil {
				tt.before()
			}
			r := ts.exchange(tt.client, code, tt.edit...)
			oauthError(t, r, tt.status, tt.code)
			if strings.Contains(r.Body, "eyJ") {
				t.Fatalf("a refused exchange answered a token: %s", r.Body)
			}
		})
	}
}

// A request that cannot use a code (another client, redirect URI,
// verifier or page) does not spoil it for its rightful redeemer.
func TestCodeGrant_AMismatchLeavesTheCode(t *testing.T) {
	ts := newTestServer(t, nil)
	code := ts.code(t, ts.grant(webClient, "ana"))
	for _, edit := range [][]string{
		{"client_id", deskClient, "redirect_uri", deskOrigin + "/cb"},
		{"redirect_uri", webOrigin + "/other"},
		{"code_verifier", strings.Repeat("a", 43)},
		{"--", "Origin", deskOrigin},
	} {
		if r := ts.exchange(webClient, code, edit...); r.Status == 200 {
			t.Fatalf("%v: redeemed", edit)
		}
	}
	okTokens(t, ts.exchange(webClient, code))
}

// A code redeemed twice was stolen, or its first redemption was: the
// second is refused, and what the first issued, and what its refresh
// tokens issued since, is revoked (RFC 6749 §4.1.2).
func TestCodeGrant_ReplayRevokesWhatTheFirstIssued(t *testing.T) {
	ts := newTestServer(t, nil)
	code := ts.code(t, ts.grant(webClient, "ana"))
	first := okTokens(t, ts.exchange(webClient, code))
	renewed := okTokens(t, ts.refreshWith(webClient, first.Refresh))

	oauthError(t, ts.exchange(webClient, code), 400, "invalid_grant")
	for name, tok := range map[string]string{"the first access token": first.Access, "the renewed access token": renewed.Access} {
		if err := ts.verify(tok); !errors.Is(err, session.ErrInvalid) {
			t.Errorf("%s after the replay: %v, want refused", name, err)
		}
	}
	oauthError(t, ts.refreshWith(webClient, renewed.Refresh), 400, "invalid_grant")
}

func TestRefreshGrant_Rotates(t *testing.T) {
	ts := newTestServer(t, nil)
	first := ts.codeFlow(t, webClient)
	firstID := idClaims(t, ts, first.ID)
	ts.clock.Advance(30 * time.Minute)
	second := okTokens(t, ts.refreshWith(webClient, first.Refresh))
	if second.Refresh == "" || second.Refresh == first.Refresh || second.Access == first.Access {
		t.Fatal("refresh did not return a new access and refresh token")
	}
	c, err := ts.auth.Verifier.Verify(context.Background(), second.Access)
	if err != nil || c.ClientID != webClient || c.Subject != "ana" {
		t.Fatalf("renewed access token: %+v, %v", c, err)
	}
	id := idClaims(t, ts, second.ID)
	if id["auth_time"] != firstID["auth_time"] || id["sid"] != firstID["sid"] || id["iat"] == firstID["iat"] {
		t.Errorf("renewed ID token %v; first %v: want the same auth_time and sid, a new iat", id, firstID)
	}
	if _, ok := id["nonce"]; ok {
		t.Error("a renewed ID token carries the nonce of the authentication request")
	}
	// The old refresh token is used up; the new one renews again.
	third := okTokens(t, ts.refreshWith(webClient, second.Refresh))
	if third.Refresh == second.Refresh {
		t.Fatal("no rotation")
	}
	// A scope may narrow the grant, never widen it.
	narrowed := okTokens(t, ts.refreshWith(webClient, third.Refresh, "scope", ""))
	oauthError(t, ts.refreshWith(webClient, narrowed.Refresh, "scope", "openid email"), 400, "invalid_scope")
	if n := okTokens(t, ts.refreshWith(webClient, narrowed.Refresh, "scope", "openid")); n.Scope != "openid" || n.ID == "" {
		t.Errorf("scope openid: %+v", n)
	}
}

// Reuse of a used refresh token means two parties hold the family: it
// ends, the newest refresh token and its access token with it.
func TestRefreshGrant_ReuseRevokesTheFamily(t *testing.T) {
	ts := newTestServer(t, nil)
	first := ts.codeFlow(t, webClient)
	second := okTokens(t, ts.refreshWith(webClient, first.Refresh))
	oauthError(t, ts.refreshWith(webClient, first.Refresh), 400, "invalid_grant")
	oauthError(t, ts.refreshWith(webClient, second.Refresh), 400, "invalid_grant")
	if err := ts.verify(second.Access); !errors.Is(err, session.ErrInvalid) {
		t.Errorf("the family's last access token after reuse: %v, want refused", err)
	}
}

func TestRefreshGrant_Refusals(t *testing.T) {
	tests := []struct {
		name   string
		before func(ts *testServer, t *testing.T)
		edit   []string
		status int
		code   string
	}{
		{"another client's refresh token", nil, []string{"client_id", deskClient}, 400, "invalid_grant"},
		{"a client without the refresh grant", nil, []string{"client_id", codeOnly}, 400, "unauthorized_client"},
		{"unknown client", nil, []string{"client_id", "ghost"}, 401, "invalid_client"},
		{"no refresh token", nil, []string{"refresh_token", ""}, 400, "invalid_request"},
		{"unknown refresh token", nil, []string{"refresh_token", "nope"}, 400, "invalid_grant"},
		{"a page of another origin", nil, []string{"--", "Origin", deskOrigin}, 403, "unauthorized_client"},
		{"idle past LOGIN_REFRESH_IDLE", func(ts *testServer, t *testing.T) { ts.clock.Advance(8*time.Hour + time.Second) }, nil, 400, "invalid_grant"},
		{"account disabled since", func(ts *testServer, t *testing.T) { setDisabled(t, ts, "ana") }, nil, 400, "invalid_grant"},
		{"sessions ended since", func(ts *testServer, t *testing.T) {
			ops := ts.login(t, "ops", "ops-secret-pw")
			ts.clock.Advance(time.Second)
			if r := ts.do("POST", "/revoke", ctForm, form("subject", "ana"), "Authorization", "Bearer "+ops); r.Status != 200 {
				t.Fatalf("end ana's sessions: %d %s", r.Status, r.Body)
			}
		}, nil, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			first := ts.codeFlow(t, webClient)
			if tt.before != nil {
				tt.before(ts, t)
			}
			oauthError(t, ts.refreshWith(webClient, first.Refresh, tt.edit...), tt.status, tt.code)
		})
	}
}

// An account disabled, or sessions ended, end the family: enabling the
// account again does not revive it.
func TestRefreshGrant_AfterDisableTheFamilyStaysEnded(t *testing.T) {
	ts := newTestServer(t, nil)
	first := ts.codeFlow(t, webClient)
	setDisabled(t, ts, "ana")
	oauthError(t, ts.refreshWith(webClient, first.Refresh), 400, "invalid_grant")
	writeCredentials(t, ts.dir) // ana enabled again
	if fam, found, _ := ts.refresh.Lookup(context.Background(), first.Refresh); found {
		t.Fatalf("the family of a disabled account lives on: %+v", fam)
	}
}

// The absolute lifetime ends a family however often it is used.
func TestRefreshGrant_AbsoluteLifetime(t *testing.T) {
	ts := newTestServer(t, nil)
	tok := ts.codeFlow(t, webClient)
	// Used every few hours, well within the 8-hour idle lifetime...
	for _, wait := range []time.Duration{7 * time.Hour, 4 * time.Hour} {
		ts.clock.Advance(wait)
		tok = okTokens(t, ts.refreshWith(webClient, tok.Refresh))
	}
	// ...it still ends 12 hours after the login, an hour after its last use.
	ts.clock.Advance(time.Hour + time.Second)
	oauthError(t, ts.refreshWith(webClient, tok.Refresh), 400, "invalid_grant")
}

// setDisabled rewrites the accounts secret with name disabled.
func setDisabled(t *testing.T, ts *testServer, name string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ts.dir, "accounts"))
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a["name"] == name {
			a["disabled"] = true
		}
	}
	data, _ = json.Marshal(list)
	if _, err := accounts.Parse(data); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ts.dir, "accounts"), data, 0o600)
}

// The password grant and the JSON login are a client's opt-in, refused
// before any hash.
func TestPasswordGrant_IsAClientsOptIn(t *testing.T) {
	ts := newTestServer(t, nil)
	pw := func(kv ...string) string {
		return form(append([]string{"grant_type", "password", "username", "ana", "password", "ana-secret-pw"}, kv...)...)
	}
	tests := []struct {
		name   string
		ct     string
		body   string
		header []string
		status int
		code   string
	}{
		{"no client_id", ctForm, pw(), nil, 400, "unauthorized_client"},
		{"JSON without client_id", ctJSON, `{"username":"ana","password":"ana-secret-pw"}`, nil, 400, "unauthorized_client"},
		{"unknown client", ctForm, pw("client_id", "ghost"), nil, 401, "invalid_client"},
		{"a client without the password grant", ctForm, pw("client_id", webClient), nil, 400, "unauthorized_client"},
		{"JSON, a client without the password grant", ctJSON, `{"username":"ana","password":"ana-secret-pw","client_id":"web"}`, nil, 400, "unauthorized_client"},
		{"from a page of another client", ctForm, pw("client_id", pwClient), []string{"Origin", webOrigin}, 403, "unauthorized_client"},
		{"from its client's page", ctForm, pw("client_id", pwClient), []string{"Origin", legacyOrigin}, 200, ""},
		{"from a script", ctJSON, loginJSON("ana", "ana-secret-pw"), nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.hashes.Load()
			r := ts.do("POST", "/token", tt.ct, tt.body, tt.header...)
			if tt.status == 200 {
				c, err := ts.auth.Verifier.Verify(context.Background(), okTokens(t, r).Access)
				if err != nil || c.ClientID != pwClient {
					t.Fatalf("claims %+v, %v; want client_id %s", c, err, pwClient)
				}
				return
			}
			oauthError(t, r, tt.status, tt.code)
			if ts.hashes.Load() != before {
				t.Error("a refused password login cost a hash")
			}
		})
	}
}

// A page of a registered client may call the token endpoint (CORS).
func TestCORS_RegisteredClientOrigins(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do("OPTIONS", "/token", "", "", "Origin", webOrigin, "Access-Control-Request-Method", "POST")
	if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != webOrigin {
		t.Fatalf("preflight from a client's origin: %d %v", r.Status, r.Header)
	}
	code := ts.code(t, ts.grant(webClient, "ana"))
	r = ts.exchange(webClient, code, "--", "Origin", webOrigin, "Sec-Fetch-Site", "cross-site")
	okTokens(t, r)
	if r.Header.Get("Access-Control-Allow-Origin") != webOrigin {
		t.Errorf("the token response does not let the client's page read it: %v", r.Header)
	}
}

// Without the clients secret the browser grants answer 500
// "misconfigured"; services log in as before.
func TestMissingClientsSecret(t *testing.T) {
	ts := newTestServer(t, nil)
	code := ts.code(t, ts.grant(webClient, "ana"))
	os.Remove(filepath.Join(ts.dir, "clients"))
	for name, r := range map[string]response{
		"code":     ts.exchange(webClient, code),
		"refresh":  ts.refreshWith(webClient, "x"),
		"password": ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw")),
	} {
		if r.Status != 500 || !strings.Contains(r.Body, "misconfigured") {
			t.Errorf("%s grant without the clients secret: %d %s", name, r.Status, r.Body)
		}
	}
	r := ts.do("POST", "/token", ctForm, form("grant_type", "client_credentials", "client_id", "pipeline", "client_secret", "pipeline-client-secret"))
	if r.Status != 200 {
		t.Fatalf("client credentials without the clients secret: %d %s", r.Status, r.Body)
	}
}

func TestGrants_LogsHoldNoSecrets(t *testing.T) {
	log := logtest.Capture(t)
	ts := newTestServer(t, nil)
	code := ts.code(t, ts.grant(webClient, "ana"))
	first := okTokens(t, ts.exchange(webClient, code))
	ts.exchange(webClient, code) // replay
	second := ts.codeFlow(t, webClient)
	third := okTokens(t, ts.refreshWith(webClient, second.Refresh))
	ts.refreshWith(webClient, second.Refresh) // reuse
	ts.do("GET", "/logout?"+url.Values{"id_token_hint": {third.ID}}.Encode(), "", "")
	ts.post("/revoke", url.Values{"client_id": {webClient}, "token": {first.Refresh}})

	logs := log.String()
	for _, event := range []string{"session issued", "authorization code replayed", "refresh token reused", "session ended by logout"} {
		if !strings.Contains(logs, event) {
			t.Errorf("no %q in the log:\n%s", event, logs)
		}
	}
	for _, secret := range []string{code, verifier, first.Access, first.Refresh, first.ID, second.Refresh, third.Refresh, third.ID} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains a secret %.12q…", secret)
		}
	}
}
