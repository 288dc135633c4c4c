// Package clients is the list of applications registered to obtain
// sessions for people through login, as kept in the "clients" secret.
//
// A client is a browser application (a public client, RFC 6749 §2.1): it
// cannot keep a secret, so it proves nothing at the token endpoint and is
// bound instead by exact redirect URIs and PKCE. Services are not clients
// here: they stay in the accounts secret and use the client-credentials
// grant with their own secret.
package clients

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/strictjson"
)

// DefaultSecret is the id of the clients secret.
const DefaultSecret = "clients"

// SecretFromEnv names the clients secret: CLIENTS_SECRET, or
// DefaultSecret. login, cmd/local and cmd/admin all ask here.
func SecretFromEnv() string { return env.String("CLIENTS_SECRET", DefaultSecret) }

// Kind says how a client authenticates at the token endpoint.
type Kind string

// Public is the only kind for now: a browser application, which holds no
// secret (token_endpoint_auth_method "none", RFC 7591 §2) and must use
// PKCE. A confidential kind, with a secret's digest, would be added for a
// server-side web application; services already have one (accounts).
const Public Kind = "public"

// Grant is an OAuth grant type a client may use (RFC 7591 §2 names).
type Grant string

// The grants a client may be registered with.
const (
	// AuthorizationCode is the browser flow: the hosted login page, then
	// a code redeemed with its PKCE verifier.
	AuthorizationCode Grant = "authorization_code"
	// RefreshToken lets the client renew a session without the person.
	RefreshToken Grant = "refresh_token"
	// Password is the resource owner password grant and the JSON login:
	// the client collects the person's password itself. RFC 9700 §2.4
	// says it must not be used; it is an opt-in for local and legacy
	// clients only, off unless listed.
	Password Grant = "password"
)

// grants are the known grants, in the order Marshal writes them.
var grants = []Grant{AuthorizationCode, RefreshToken, Password}

// Client is one entry of the clients secret. Field names are those of
// OAuth dynamic client registration (RFC 7591 §2, OpenID Connect
// RP-Initiated Logout §3.1), so that they read as anywhere else, except
// kind and allowed_origins.
type Client struct {
	ID string `json:"client_id"`
	// Name is what the login page shows the person; optional.
	Name string `json:"client_name,omitempty"`
	Kind Kind   `json:"kind"`
	// RedirectURIs are where an authorization response may go, compared
	// as strings (RFC 9700 §4.1.3: no patterns, no normalization).
	RedirectURIs []string `json:"redirect_uris"`
	// AllowedOrigins are the browser origins (scheme://host[:port]) that
	// may call the token, revocation and userinfo endpoints; they make
	// login's CORS list.
	AllowedOrigins []string `json:"allowed_origins"`
	// PostLogoutRedirectURIs are where the end-session endpoint may send
	// the browser after logout, compared as strings.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	GrantTypes             []Grant  `json:"grant_types"`
}

// MaxURI bounds each URI and origin: a registration is written by an
// operator, and nothing longer has a reason to be.
const MaxURI = 2048

// CheckID reports whether id is an acceptable client id: 1-64 lower-case
// ASCII letters, digits and . _ -, starting with a letter or digit. It
// travels in URLs and tokens' aud, so it needs no escaping anywhere.
func CheckID(id string) error {
	ok := len(id) > 0 && len(id) <= 64
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && strings.IndexByte("._-", c) >= 0
	}
	if !ok {
		return fmt.Errorf("client id %q: want 1-64 lower-case letters, digits and . _ -, starting with a letter or digit", id)
	}
	return nil
}

// Validate checks one client; its errors name the client and the field.
func (c Client) Validate() error {
	if err := CheckID(c.ID); err != nil {
		return err
	}
	fail := func(field, format string, a ...any) error {
		return fmt.Errorf("client %q: %s: %s", c.ID, field, fmt.Sprintf(format, a...))
	}
	if c.Kind != Public {
		// No kind with a secret yet: a browser cannot keep one, and
		// services have theirs in the accounts secret.
		return fail("kind", "must be %q (a service with a secret is an account: cmd/admin account add --service)", Public)
	}
	if len(c.Name) > 100 || strings.ContainsFunc(c.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fail("client_name", "want at most 100 characters, no control characters")
	}
	if len(c.GrantTypes) == 0 {
		return fail("grant_types", "empty: list %q, %q and, only where a client must collect passwords itself, %q", AuthorizationCode, RefreshToken, Password)
	}
	for i, g := range c.GrantTypes {
		switch {
		case g == "client_credentials":
			return fail("grant_types", "%q is for services, which are accounts (cmd/admin account add --service), not clients", g)
		case !slices.Contains(grants, g):
			return fail("grant_types", "unknown grant %q: want %q, %q or %q", g, AuthorizationCode, RefreshToken, Password)
		case slices.Contains(c.GrantTypes[:i], g):
			return fail("grant_types", "%q appears twice", g)
		}
	}
	if c.Allows(RefreshToken) && !c.Allows(AuthorizationCode) && !c.Allows(Password) {
		return fail("grant_types", "%q needs a grant that issues the first token (%q or %q)", RefreshToken, AuthorizationCode, Password)
	}
	switch {
	case c.Allows(AuthorizationCode) && len(c.RedirectURIs) == 0:
		return fail("redirect_uris", "empty: %q needs at least one", AuthorizationCode)
	case !c.Allows(AuthorizationCode) && len(c.RedirectURIs) > 0:
		// A redirect URI that no flow uses is one more place to check
		// and a sign the registration is not what was meant.
		return fail("redirect_uris", "given, but %q is not among grant_types", AuthorizationCode)
	}
	for _, l := range []struct {
		field string
		uris  []string
		check func(string) error
	}{
		{"redirect_uris", c.RedirectURIs, CheckRedirectURI},
		{"post_logout_redirect_uris", c.PostLogoutRedirectURIs, CheckRedirectURI},
		{"allowed_origins", c.AllowedOrigins, CheckOrigin},
	} {
		for i, u := range l.uris {
			if err := l.check(u); err != nil {
				return fail(l.field, "%v", err)
			}
			if slices.Contains(l.uris[:i], u) {
				return fail(l.field, "%q appears twice", u)
			}
		}
	}
	return nil
}

// Allows reports whether the client is registered for grant g.
func (c Client) Allows(g Grant) bool { return slices.Contains(c.GrantTypes, g) }

// RedirectAllowed reports whether uri is one of the client's redirect
// URIs, exactly: RFC 9700 §4.1.3 and OAuth 2.1 §4.1.1 ask for simple
// string comparison, so that no parser difference opens a redirect.
func (c Client) RedirectAllowed(uri string) bool { return slices.Contains(c.RedirectURIs, uri) }

// PostLogoutRedirectAllowed reports whether uri is one of the client's
// post-logout redirect URIs, exactly (OpenID Connect RP-Initiated Logout
// §3: "MUST exactly match").
func (c Client) PostLogoutRedirectAllowed(uri string) bool {
	return slices.Contains(c.PostLogoutRedirectURIs, uri)
}

// OriginAllowed reports whether a browser's Origin header names one of
// the client's allowed origins.
func (c Client) OriginAllowed(origin string) bool { return slices.Contains(c.AllowedOrigins, origin) }

// loopback reports whether host (no port, no brackets) is the machine
// itself: the one place plain http carries no risk (RFC 8252 §8.3).
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

// parseAbsolute parses s as an absolute https URL, or http to a loopback
// host, written in the one form a browser sends back (lower-case scheme
// and host, no default port, nothing url.URL would rewrite): a
// registration that a browser would spell otherwise would never match.
func parseAbsolute(s string) (*url.URL, error) {
	if len(s) > MaxURI {
		return nil, fmt.Errorf("%.40q…: longer than %d bytes", s, MaxURI)
	}
	if strings.Contains(s, "*") {
		return nil, fmt.Errorf("%q: no wildcards: each URI is compared exactly", s)
	}
	if strings.Contains(s, "#") {
		// RFC 6749 §3.1.2: the endpoint URI MUST NOT include a fragment.
		return nil, fmt.Errorf("%q: no fragment (#)", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q: not a URL: %v", s, err)
	}
	switch {
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return nil, fmt.Errorf("%q: want an absolute URL, scheme://host…", s)
	case u.User != nil:
		return nil, fmt.Errorf("%q: no user information (user@)", s)
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return nil, fmt.Errorf("%q: plain http only for loopback hosts (127.0.0.1, [::1], localhost); use https", s)
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%q: want https (or http for loopback hosts)", s)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		switch {
		case err != nil || n < 1 || n > 65535 || p[0] == '0':
			return nil, fmt.Errorf("%q: port %q: want 1-65535", s, p)
		case u.Scheme == "https" && n == 443 || u.Scheme == "http" && n == 80:
			return nil, fmt.Errorf("%q: leave out the default port :%d: browsers do", s, n)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("%q: empty port", s)
	}
	if canon := u.String(); canon != s || strings.ToLower(u.Host) != u.Host {
		return nil, fmt.Errorf("%q: not in the form a browser sends (lower-case scheme and host, path escaped): write %q", s, strings.Replace(canon, u.Host, strings.ToLower(u.Host), 1))
	}
	return u, nil
}

// CheckRedirectURI reports whether s may be registered as a redirect or
// post-logout redirect URI: absolute, https or loopback http, with no
// fragment, user information or wildcard. A query is allowed (RFC 6749
// §3.1.2) and is part of the exact comparison.
func CheckRedirectURI(s string) error {
	u, err := parseAbsolute(s)
	if err != nil {
		return err
	}
	// login adds these to the redirect (RFC 6749 §4.1.2, RFC 9207, OpenID
	// Connect RP-Initiated Logout §3): one already in the registered query
	// would reach the client twice, and which one it reads is the
	// client's library's choice.
	q := u.Query()
	for _, name := range responseParams {
		if q.Has(name) {
			return fmt.Errorf("%q: its query holds %q, which login's responses add", s, name)
		}
	}
	return nil
}

// responseParams are the query parameters login's redirects carry.
var responseParams = []string{"code", "state", "iss", "error", "error_description", "error_uri"}

// CheckOrigin reports whether s is a browser origin as the Origin header
// carries it (RFC 6454 §6.2): scheme://host[:port], nothing after.
func CheckOrigin(s string) error {
	u, err := parseAbsolute(s)
	if err != nil {
		return err
	}
	if u.Path != "" || u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("%q: an origin is scheme://host[:port], with no path, not even /", s)
	}
	return nil
}

// List is a parsed clients secret.
type List struct {
	byID    map[string]Client
	origins []string
}

// Parse reads and checks a clients secret: a JSON array of clients with
// unique ids, no field it does not know.
func Parse(data []byte) (*List, error) {
	var cs []Client
	if err := strictjson.Decode(data, &cs); err != nil {
		return nil, fmt.Errorf("clients: %w", err)
	}
	l := &List{byID: make(map[string]Client, len(cs))}
	for i, c := range cs {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("clients[%d]: %w", i, err)
		}
		if _, dup := l.byID[c.ID]; dup {
			return nil, fmt.Errorf("clients[%d]: client id %q appears twice", i, c.ID)
		}
		l.byID[c.ID] = c
		for _, o := range c.AllowedOrigins {
			if !slices.Contains(l.origins, o) {
				l.origins = append(l.origins, o)
			}
		}
	}
	slices.Sort(l.origins)
	return l, nil
}

// Lookup returns the client with id, compared exactly: ids are not
// normalized, as OAuth compares them as strings.
func (l *List) Lookup(id string) (Client, bool) {
	c, ok := l.byID[id]
	return c, ok
}

// Origins returns every client's allowed origins, sorted, each once: the
// origins login answers CORS requests for.
func (l *List) Origins() []string { return slices.Clone(l.origins) }

// HasOrigin reports whether origin is one of the clients' allowed origins:
// Origins without a copy, for a check made on every browser request.
func (l *List) HasOrigin(origin string) bool { return slices.Contains(l.origins, origin) }

// Len is the number of clients.
func (l *List) Len() int { return len(l.byID) }

// Marshal encodes clients as the secret's JSON, sorted by id, one client
// per line so that a diff of two versions reads well. Lists are written
// even when empty, so that the file shows every field there is.
func Marshal(cs []Client) ([]byte, error) {
	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b Client) int { return strings.Compare(a.ID, b.ID) })
	for i := range cs {
		c := &cs[i]
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if i > 0 && cs[i-1].ID == c.ID {
			return nil, fmt.Errorf("client id %q appears twice", c.ID)
		}
		for _, l := range []*[]string{&c.RedirectURIs, &c.AllowedOrigins, &c.PostLogoutRedirectURIs} {
			if *l == nil {
				*l = []string{}
			}
		}
	}
	return strictjson.MarshalLines(cs)
}

// Unmarshal decodes the secret's JSON into clients, checking them as
// Parse does, for tools that edit the list.
func Unmarshal(data []byte) ([]Client, error) {
	if _, err := Parse(data); err != nil {
		return nil, err
	}
	var cs []Client
	err := json.Unmarshal(data, &cs)
	return cs, err
}
