package login

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/session"
)

func TestDiscovery_MatchesWhatIsServed(t *testing.T) {
	ts := newTestServer(t, nil)
	var docs []map[string]any
	for _, path := range []string{wellKnownOIDC, wellKnownOAuth} {
		r := ts.do("GET", path, "", "")
		if r.Status != 200 || r.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(r.Header.Get("Cache-Control"), "public, max-age=") {
			t.Fatalf("GET %s: %d %v", path, r.Status, r.Header)
		}
		docs = append(docs, r.json(t))
	}
	if !jsonEqual(docs[0], docs[1]) {
		t.Fatalf("the two documents differ:\n%v\n%v", docs[0], docs[1])
	}
	m := docs[0]
	want := map[string]any{
		"issuer":                                         "https://login.test",
		"authorization_endpoint":                         "https://login.test/authorize",
		"token_endpoint":                                 "https://login.test/token",
		"jwks_uri":                                       "https://login.test/jwks",
		"userinfo_endpoint":                              "https://login.test/userinfo",
		"end_session_endpoint":                           "https://login.test/logout",
		"introspection_endpoint":                         "https://login.test/introspect",
		"revocation_endpoint":                            "https://login.test/revoke",
		"response_types_supported":                       []any{"code"},
		"response_modes_supported":                       []any{"query"},
		"grant_types_supported":                          []any{"authorization_code", "refresh_token", "client_credentials", "password"},
		"code_challenge_methods_supported":               []any{"S256"},
		"token_endpoint_auth_methods_supported":          []any{"none", "client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":     []any{"none", "client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported":  []any{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                               []any{"openid"},
		"subject_types_supported":                        []any{"public"},
		"id_token_signing_alg_values_supported":          []any{"EdDSA"},
		"authorization_response_iss_parameter_supported": true,
		"request_uri_parameter_supported":                false,
		"request_parameter_supported":                    false,
	}
	for k, v := range want {
		if !jsonEqual(m[k], v) {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if claims, _ := m["claims_supported"].([]any); len(claims) == 0 {
		t.Error("no claims_supported")
	}
	if len(m) != len(want)+1 {
		t.Errorf("%d fields, want %d: %v", len(m), len(want)+1, m)
	}

	// Every advertised endpoint answers (what a request without
	// credentials gets, but not 404 or 501)...
	var advertised []string
	for k, v := range m {
		if s, ok := v.(string); ok && (strings.HasSuffix(k, "_endpoint") || k == "jwks_uri") {
			path, ok := strings.CutPrefix(s, "https://login.test")
			if !ok {
				t.Errorf("%s = %q is not under the issuer", k, s)
			}
			advertised = append(advertised, path)
			for _, method := range []string{"GET", "POST"} {
				r := ts.do(method, path, ctForm, "")
				if r.Status == 404 || r.Status == 501 {
					t.Errorf("%s %s (%s): %d", method, path, k, r.Status)
				}
			}
		}
	}
	// ...and every route login serves (endpoints) is advertised, or is a
	// discovery document or an alias of one that is.
	aliases := map[string]string{"": "/token", "/.well-known/jwks.json": "/jwks", wellKnownOIDC: "", wellKnownOAuth: ""}
	for path := range ts.endpoints() {
		p, alias := aliases[path]
		if !alias {
			p = path
		}
		if p != "" && !slices.Contains(advertised, p) {
			t.Errorf("login serves %q, which the metadata does not name", path)
		}
	}
	if r := ts.do("GET", "/.well-known/other", "", ""); r.Status != 404 {
		t.Errorf("an unknown path: %d, want 404", r.Status)
	}
	if r := ts.do("POST", wellKnownOIDC, ctForm, ""); r.Status != 405 {
		t.Errorf("POST discovery: %d, want 405", r.Status)
	}

	useES256(t, ts)
	if r := ts.do("GET", wellKnownOIDC, "", ""); !jsonEqual(r.json(t)["id_token_signing_alg_values_supported"], []any{"ES256"}) {
		t.Errorf("with an ES256 key: %s", r.Body)
	}
}

func TestUserinfo(t *testing.T) {
	ts := newTestServer(t, nil)
	tok := ts.codeFlow(t, webClient)
	for _, method := range []string{"GET", "POST"} {
		r := ts.do(method, "/userinfo", "", "", "Authorization", "Bearer "+tok.Access)
		if r.Status != 200 || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s /userinfo: %d %s", method, r.Status, r.Body)
		}
		if got := r.json(t); !jsonEqual(got, map[string]any{"sub": "ana", "name": "ana", "roles": []any{"editor"}}) {
			t.Errorf("userinfo = %v", got)
		}
	}
	other := ts.codeFlow(t, webClient)
	revoked := ts.codeFlow(t, webClient)
	if r := ts.post("/revoke", url.Values{"client_id": {webClient}, "token": {revoked.Access}}); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	tests := []struct {
		name      string
		header    []string
		before    func()
		wantError string // in WWW-Authenticate
	}{
		{"no token", nil, nil, ""},
		{"a garbage token", []string{"Authorization", "Bearer x.y.z"}, nil, `error="invalid_token"`},
		{"a revoked token", []string{"Authorization", "Bearer " + revoked.Access}, nil, `error="invalid_token"`},
		{"an ID token", []string{"Authorization", "Bearer " + tok.ID}, nil, `error="invalid_token"`},
		{"a disabled account", []string{"Authorization", "Bearer " + other.Access}, func() { setDisabled(t, ts, "ana") }, `error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			r := ts.do("GET", "/userinfo", "", "", tt.header...)
			challenge := r.Header.Get("WWW-Authenticate")
			if r.Status != 401 || !strings.HasPrefix(challenge, "Bearer") || !strings.Contains(challenge, tt.wantError) {
				t.Fatalf("got %d, WWW-Authenticate %q; want 401 Bearer %s", r.Status, challenge, tt.wantError)
			}
		})
	}
}

func TestLogout(t *testing.T) {
	type result struct {
		status   int
		location string // "" for a page
		ended    bool   // the family and its access token are revoked
	}
	tests := []struct {
		name   string
		method string
		params func(tok tokens) url.Values
		before func(ts *testServer)
		want   result
	}{
		{"GET with hint, registered redirect and state", "GET", func(tok tokens) url.Values {
			return url.Values{"id_token_hint": {tok.ID}, "post_logout_redirect_uri": {webLogout}, "state": {"x y"}}
		}, nil, result{303, webLogout + "?state=x+y", true}},
		{"POST form", "POST", func(tok tokens) url.Values {
			return url.Values{"id_token_hint": {tok.ID}, "post_logout_redirect_uri": {webLogout}}
		}, nil, result{303, webLogout, true}},
		{"an expired hint", "GET", func(tok tokens) url.Values {
			return url.Values{"id_token_hint": {tok.ID}, "post_logout_redirect_uri": {webLogout}}
		}, func(ts *testServer) { ts.clock.Advance(2 * time.Hour) }, result{303, webLogout, true}},
		{"hint without redirect: the page", "GET", func(tok tokens) url.Values {
			return url.Values{"id_token_hint": {tok.ID}}
		}, nil, result{200, "", true}},
		{"hint and its client_id", "GET", func(tok tokens) url.Values {
			return url.Values{"id_token_hint": {tok.ID}, "client_id": {webClient}, "post_logout_redirect_uri": {webLogout}}
		}, nil, result{303, webLogout, true}},
		{"client_id and redirect, no hint: nothing to end", "GET", func(tok tokens) url.Values {
			return url.Values{"client_id": {webClient}, "post_logout_redirect_uri": {webLogout}}
		}, nil, result{303, webLogout, false}},
		{"nothing at all", "GET", func(tok tokens) url.Values { return url.Values{} }, nil, result{200, "", false}},
		{"an unregistered redirect", "GET", func(tok tokens) url.Values {
			return url.Values{"id_token_hint": {tok.ID}, "post_logout_redirect_uri": {"https://evil.example/"}}
		}, nil, result{400, "", false}},
		{"another client's redirect", "GET", func(tok tokens) url.Values {
			return url.Values{"id_token_hint": {tok.ID}, "post_logout_redirect_uri": {deskOrigin + "/"}}
		}, nil, result{400, "", false}},
		{"a redirect with neither hint nor client_id", "GET", func(tok tokens) url.Values {
			return url.Values{"post_logout_redirect_uri": {webLogout}}
		}, nil, result{400, "", false}},
		{"a client_id the hint was not issued to", "GET", func(tok tokens) url.Values {
			return url.Values{"id_token_hint": {tok.ID}, "client_id": {deskClient}}
		}, nil, result{400, "", false}},
		{"an unknown client_id", "GET", func(tok tokens) url.Values {
			return url.Values{"client_id": {"ghost"}}
		}, nil, result{400, "", false}},
		{"a hint we did not sign", "GET", func(tok tokens) url.Values {
			return url.Values{"id_token_hint": {forgedIDToken(t, tok.ID)}, "post_logout_redirect_uri": {webLogout}}
		}, nil, result{400, "", false}},
		{"an access token as hint", "GET", func(tok tokens) url.Values {
			return url.Values{"id_token_hint": {tok.Access}}
		}, nil, result{400, "", false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			tok := ts.codeFlow(t, webClient)
			if tt.before != nil {
				tt.before(ts)
			}
			params := tt.params(tok)
			var r response
			if tt.method == "GET" {
				r = ts.do("GET", "/logout?"+params.Encode(), "", "")
			} else {
				r = ts.do("POST", "/logout", ctForm, params.Encode())
			}
			if r.Status != tt.want.status || r.Header.Get("Location") != tt.want.location {
				t.Fatalf("got %d Location %q; want %d %q\n%s", r.Status, r.Header.Get("Location"), tt.want.status, tt.want.location, r.Body)
			}
			if tt.want.location == "" {
				ct, csp := r.Header.Get("Content-Type"), r.Header.Get("Content-Security-Policy")
				if !strings.HasPrefix(ct, "text/html") || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(r.Body, `lang="es"`) {
					t.Errorf("page: %s, CSP %q\n%s", ct, csp, r.Body)
				}
				if tt.want.status == 200 && !strings.Contains(r.Body, "Sesión cerrada") {
					t.Errorf("the page does not say the session closed:\n%s", r.Body)
				}
			}
			_, stillThere, _ := ts.refresh.Lookup(context.Background(), tok.Refresh)
			accessErr := ts.verify(tok.Access)
			if tt.want.ended && (stillThere || accessErr == nil) {
				t.Errorf("logout left the family (%v) or its access token (%v)", stillThere, accessErr)
			}
			if !tt.want.ended && tt.before == nil && (!stillThere || accessErr != nil) {
				t.Errorf("a refused logout ended the session: family %v, access token %v", stillThere, accessErr)
			}
		})
	}
	ts := newTestServer(t, nil)
	if r := ts.do("PUT", "/logout", "", ""); r.Status != 405 || r.Header.Get("Allow") == "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("PUT /logout: %d %v", r.Status, r.Header)
	}
}

// forgedIDToken re-signs token's claims with a key login does not have.
func forgedIDToken(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := session.NewKey()
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: k},
		(&jose.SignerOptions{}).WithType("JWT"))
	sig, err := signer.Sign(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		t.Fatal(err)
	}
	out, _ := sig.CompactSerialize()
	return out
}

// A logout that fails on login's own configuration (the clients secret
// missing or broken) used to tell the person the service was down and to
// try again in a few minutes, which no retry fixes; and its answer was 500
// either way. It now says, as the hosted login page does, that login is
// not configured and whom to tell, and an outage (503) keeps the
// "try again" message.
func TestLogout_AMisconfigurationIsNotAnOutage(t *testing.T) {
	ts := newTestServer(t, nil)
	tok := ts.codeFlow(t, webClient)
	hide(ts, "clients")
	r := ts.do("GET", "/logout?"+url.Values{"id_token_hint": {tok.ID}, "post_logout_redirect_uri": {webLogout}}.Encode(), "", "")
	if r.Status != 500 || !strings.Contains(r.Body, "Avise a quien administra el sistema") || strings.Contains(r.Body, "vuelva a intentarlo") {
		t.Fatalf("logout with the clients secret missing: %d\n%s", r.Status, r.Body)
	}

	ts = newTestServer(t, nil)
	tok = ts.codeFlow(t, webClient)
	ts.refresh.Store = unavailableStore{ts.refresh.Store}
	r = ts.do("GET", "/logout?"+url.Values{"id_token_hint": {tok.ID}}.Encode(), "", "")
	if r.Status != 503 || !strings.Contains(r.Body, "vuelva a intentarlo") || r.Header.Get("Retry-After") == "" {
		t.Fatalf("logout with the state store down: %d Retry-After %q\n%s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
}
