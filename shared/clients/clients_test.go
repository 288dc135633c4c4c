package clients

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// web is a valid browser client; tests change one field of it.
func web() Client {
	return Client{
		ID:                     "impo-web",
		Name:                   "Plataforma documental",
		Kind:                   Public,
		RedirectURIs:           []string{"https://app.impo.com.uy/callback"},
		AllowedOrigins:         []string{"https://app.impo.com.uy"},
		PostLogoutRedirectURIs: []string{"https://app.impo.com.uy/"},
		GrantTypes:             []Grant{AuthorizationCode, RefreshToken},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Client)
		wantErr string // substring; "" means valid
	}{
		{"ok", func(*Client) {}, ""},
		{"no name", func(c *Client) { c.Name = "" }, ""},
		{"loopback http", func(c *Client) {
			c.RedirectURIs = []string{"http://127.0.0.1:8080/Login/example/callback", "http://[::1]:8080/cb", "http://localhost:3000/cb"}
			c.AllowedOrigins = []string{"http://127.0.0.1:8080", "http://localhost:3000"}
		}, ""},
		{"query in a redirect URI", func(c *Client) { c.RedirectURIs = []string{"https://app.impo.com.uy/cb?from=login&x=1"} }, ""},
		{"redirect URI whose query holds state", func(c *Client) { c.RedirectURIs = []string{"https://app.impo.com.uy/cb?state=x"} }, "login's responses add"},
		{"redirect URI whose query holds code", func(c *Client) { c.RedirectURIs = []string{"https://app.impo.com.uy/cb?a=1&code="} }, "login's responses add"},
		{"post-logout URI whose query holds iss", func(c *Client) { c.PostLogoutRedirectURIs = []string{"https://app.impo.com.uy/?iss=x"} }, "login's responses add"},
		{"password only, no redirect", func(c *Client) { c.GrantTypes = []Grant{Password, RefreshToken}; c.RedirectURIs = nil }, ""},
		{"bad id", func(c *Client) { c.ID = "IMPO Web" }, `client id "IMPO Web"`},
		{"no kind", func(c *Client) { c.Kind = "" }, `client "impo-web": kind: must be "public"`},
		{"confidential", func(c *Client) { c.Kind = "confidential" }, "account add --service"},
		{"control in name", func(c *Client) { c.Name = "a\nb" }, "client_name"},
		{"no grants", func(c *Client) { c.GrantTypes = nil }, "grant_types: empty"},
		{"client credentials", func(c *Client) { c.GrantTypes = []Grant{"client_credentials"} }, "for services"},
		{"implicit", func(c *Client) { c.GrantTypes = []Grant{"implicit"} }, `unknown grant "implicit"`},
		{"grant twice", func(c *Client) { c.GrantTypes = []Grant{AuthorizationCode, AuthorizationCode} }, "appears twice"},
		{"refresh alone", func(c *Client) { c.GrantTypes = []Grant{RefreshToken}; c.RedirectURIs = nil }, "issues the first token"},
		{"code without redirect", func(c *Client) { c.RedirectURIs = nil }, "redirect_uris: empty"},
		{"redirect without code", func(c *Client) { c.GrantTypes = []Grant{Password} }, "redirect_uris: given, but"},
		{"relative", func(c *Client) { c.RedirectURIs = []string{"/callback"} }, "absolute URL"},
		{"custom scheme", func(c *Client) { c.RedirectURIs = []string{"uy.impo.app://cb"} }, "want https"},
		{"plain http", func(c *Client) { c.RedirectURIs = []string{"http://app.impo.com.uy/cb"} }, "only for loopback"},
		{"http to a look-alike", func(c *Client) { c.RedirectURIs = []string{"http://127.0.0.1.evil.com/cb"} }, "only for loopback"},
		{"fragment", func(c *Client) { c.RedirectURIs = []string{"https://app.impo.com.uy/cb#x"} }, "no fragment"},
		{"empty fragment", func(c *Client) { c.RedirectURIs = []string{"https://app.impo.com.uy/cb#"} }, "no fragment"},
		{"wildcard", func(c *Client) { c.RedirectURIs = []string{"https://*.impo.com.uy/cb"} }, "no wildcards"},
		{"user info", func(c *Client) { c.RedirectURIs = []string{"https://a@app.impo.com.uy/cb"} }, "no user information"},
		{"upper-case host", func(c *Client) { c.RedirectURIs = []string{"https://App.impo.com.uy/cb"} }, `write "https://app.impo.com.uy/cb"`},
		{"upper-case scheme", func(c *Client) { c.RedirectURIs = []string{"HTTPS://app.impo.com.uy/cb"} }, "form a browser sends"},
		{"unescaped space", func(c *Client) { c.RedirectURIs = []string{"https://app.impo.com.uy/a b"} }, "form a browser sends"},
		{"default port", func(c *Client) { c.RedirectURIs = []string{"https://app.impo.com.uy:443/cb"} }, "default port"},
		{"bad port", func(c *Client) { c.RedirectURIs = []string{"http://127.0.0.1:99999/cb"} }, "want 1-65535"},
		{"empty port", func(c *Client) { c.RedirectURIs = []string{"https://app.impo.com.uy:/cb"} }, "empty port"},
		{"too long", func(c *Client) { c.RedirectURIs = []string{"https://a/" + strings.Repeat("x", MaxURI)} }, "longer than"},
		{"redirect twice", func(c *Client) { c.RedirectURIs = []string{"https://a/cb", "https://a/cb"} }, "redirect_uris: \"https://a/cb\" appears twice"},
		{"bad post-logout", func(c *Client) { c.PostLogoutRedirectURIs = []string{"http://app.impo.com.uy/"} }, "post_logout_redirect_uris"},
		{"origin with slash", func(c *Client) { c.AllowedOrigins = []string{"https://app.impo.com.uy/"} }, "allowed_origins: \"https://app.impo.com.uy/\": an origin is"},
		{"origin with path", func(c *Client) { c.AllowedOrigins = []string{"https://app.impo.com.uy/x"} }, "an origin is"},
		{"origin with query", func(c *Client) { c.AllowedOrigins = []string{"https://app.impo.com.uy?"} }, "an origin is"},
		{"http origin", func(c *Client) { c.AllowedOrigins = []string{"http://app.impo.com.uy"} }, "only for loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := web()
			tt.edit(&c)
			err := c.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestParse(t *testing.T) {
	ok := `{"client_id":"impo-web","kind":"public","redirect_uris":["https://app.impo.com.uy/cb"],"allowed_origins":[],"post_logout_redirect_uris":[],"grant_types":["authorization_code"]`
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"ok", `[` + ok + `}]`, ""},
		{"empty list", `[]`, ""},
		{"only what is needed", `[{"client_id":"x","kind":"public","grant_types":["password"]}]`, ""},
		{"not a list", `{}`, "want a JSON slice"},
		{"unknown field", `[` + ok + `,"client_secret":"s"}]`, `unknown field "client_secret"`},
		{"duplicate key", `[` + ok + `,"kind":"public"}]`, "duplicate key"},
		{"invalid client names its index", `[` + ok + `},{"client_id":"b","kind":"public","grant_types":[]}]`, `clients[1]: client "b": grant_types: empty`},
		{"duplicate id", `[` + ok + `},` + ok + `}]`, `clients[1]: client id "impo-web" appears twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// The lookups compare exactly: a redirect URI that differs in any byte, a
// case-changed id, an origin with a trailing slash are all refused.
func TestLookups_AreExact(t *testing.T) {
	dev := Client{
		ID: "impo-web-dev", Kind: Public,
		RedirectURIs:   []string{"http://127.0.0.1:8080/Login/example/callback"},
		AllowedOrigins: []string{"http://127.0.0.1:8080", "https://app.impo.com.uy"},
		GrantTypes:     []Grant{AuthorizationCode, RefreshToken, Password},
	}
	data, err := Marshal([]Client{web(), dev})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Lookup("IMPO-WEB"); ok {
		t.Error("Lookup normalized the id")
	}
	c, ok := l.Lookup("impo-web")
	if !ok {
		t.Fatal("Lookup(impo-web) found nothing")
	}
	for uri, want := range map[string]bool{
		"https://app.impo.com.uy/callback":     true,
		"https://app.impo.com.uy/callback/":    false,
		"https://app.impo.com.uy/callback?x":   false,
		"https://app.impo.com.uy/Callback":     false,
		"https://APP.impo.com.uy/callback":     false,
		"https://app.impo.com.uy:443/callback": false,
		"https://app.impo.com.uy/callback#":    false,
		"":                                     false,
	} {
		if got := c.RedirectAllowed(uri); got != want {
			t.Errorf("RedirectAllowed(%q) = %v, want %v", uri, got, want)
		}
	}
	if !c.PostLogoutRedirectAllowed("https://app.impo.com.uy/") || c.PostLogoutRedirectAllowed("https://app.impo.com.uy") {
		t.Error("PostLogoutRedirectAllowed is not exact")
	}
	if !c.OriginAllowed("https://app.impo.com.uy") || c.OriginAllowed("https://app.impo.com.uy/") || c.OriginAllowed("http://127.0.0.1:8080") {
		t.Error("OriginAllowed is not exact or not per client")
	}
	if c.Allows(Password) {
		t.Error("the password grant is allowed without being listed")
	}
	if d, _ := l.Lookup("impo-web-dev"); !d.Allows(Password) {
		t.Error("the password grant is refused though listed")
	}
	if diff := cmp.Diff([]string{"http://127.0.0.1:8080", "https://app.impo.com.uy"}, l.Origins()); diff != "" {
		t.Errorf("Origins (-want +got):\n%s", diff)
	}
	l.Origins()[0] = "changed"
	if l.Origins()[0] == "changed" {
		t.Error("Origins hands out the list's own slice")
	}
	for origin, want := range map[string]bool{"https://app.impo.com.uy": true, "http://127.0.0.1:8080": true,
		"https://app.impo.com.uy/": false, "https://other.impo.com.uy": false, "": false} {
		if got := l.HasOrigin(origin); got != want {
			t.Errorf("HasOrigin(%q) = %t, want %t", origin, got, want)
		}
	}
	if l.Len() != 2 {
		t.Errorf("Len = %d, want 2", l.Len())
	}
}

func TestMarshal_RoundTripsSortedOnePerLine(t *testing.T) {
	b := web()
	b.ID, b.RedirectURIs = "b", []string{"https://app.impo.com.uy/cb?a=1&b=2"}
	a := Client{ID: "a", Kind: Public, GrantTypes: []Grant{Password}}
	data, err := Marshal([]Client{b, a})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], `  {"client_id":"a"`) || !strings.HasPrefix(lines[2], `  {"client_id":"b"`) {
		t.Fatalf("Marshal wrote:\n%s", data)
	}
	if !strings.Contains(lines[1], `"redirect_uris":[]`) || !strings.Contains(lines[2], "a=1&b=2") {
		t.Errorf("want empty lists written and & unescaped:\n%s", data)
	}
	got, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	a.RedirectURIs, a.AllowedOrigins, a.PostLogoutRedirectURIs = []string{}, []string{}, []string{}
	if diff := cmp.Diff([]Client{a, b}, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := Marshal([]Client{a, a}); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Errorf("Marshal of a duplicate id: %v", err)
	}
	if _, err := Marshal([]Client{{ID: "x"}}); err == nil {
		t.Error("Marshal wrote an invalid client")
	}
}

func TestSecretFromEnv(t *testing.T) {
	t.Setenv("CLIENTS_SECRET", "")
	if got := SecretFromEnv(); got != DefaultSecret {
		t.Errorf("SecretFromEnv() = %q, want %q", got, DefaultSecret)
	}
	t.Setenv("CLIENTS_SECRET", "clients-staging")
	if got := SecretFromEnv(); got != "clients-staging" {
		t.Errorf("SecretFromEnv() = %q, want clients-staging", got)
	}
}
