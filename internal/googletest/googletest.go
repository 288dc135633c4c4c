// Package googletest runs local stand-ins for the Google endpoints that
// mint tokens, speaking their real protocols, so that tests drive Google's
// own client libraries against them: the metadata server, an OAuth2 token
// endpoint that checks JWT-bearer assertions, and the IAM Credentials API.
package googletest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Server is one stand-in. Calls counts the token-minting requests it
// answered; Fail makes them answer with that HTTP status.
type Server struct {
	URL   string
	calls atomic.Int64
	fail  atomic.Int64
	mu    sync.Mutex
	last  http.Header
	body  map[string]any
	// TTL is the lifetime of the tokens it mints (an hour by default).
	TTL time.Duration
	// Now, if set, is the clock that dates ID tokens (a test's fake clock;
	// access tokens carry expires_in, which the client dates itself).
	Now func() time.Time
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Calls counts minting requests.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Fail makes minting requests answer status (0 restores service).
func (s *Server) Fail(status int) { s.fail.Store(int64(status)) }

// LastRequest returns the headers and decoded JSON or form body of the
// last minting request.
func (s *Server) LastRequest() (http.Header, map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.body
}

func (s *Server) record(r *http.Request, body map[string]any) bool {
	s.calls.Add(1)
	s.mu.Lock()
	s.last, s.body = r.Header.Clone(), body
	s.mu.Unlock()
	return s.fail.Load() == 0
}

func (s *Server) ttl() time.Duration {
	if s.TTL == 0 {
		return time.Hour
	}
	return s.TTL
}

// IDToken makes an unsigned-looking but well-formed JWT with aud and exp,
// the way a Google ID token reads to a client that only needs its expiry.
func IDToken(audience, email string, exp time.Time) string {
	priv, _ := rsa.GenerateKey(rand.Reader, 1024)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: priv}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err) // a fresh RSA key always makes a signer
	}
	payload, _ := json.Marshal(map[string]any{
		"iss": "https://accounts.google.com", "aud": audience, "sub": email, "exp": exp.Unix(), "iat": time.Now().Unix(),
	})
	sig, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	tok, _ := sig.CompactSerialize()
	return tok
}

func randomToken(prefix string) string {
	b := make([]byte, 24)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// Metadata is the GCE metadata server as Cloud Run exposes it: it demands
// the Metadata-Flavor: Google header, and mints access tokens (with the
// scopes asked) and ID tokens for the default service account. Point
// GCE_METADATA_HOST at Host.
type Metadata struct {
	Server
	Host  string
	Email string
}

// StartMetadata serves until the test ends.
func StartMetadata(t testing.TB) *Metadata {
	m := &Metadata{Email: "runtime@impo-test.iam.gserviceaccount.com"}
	srv := httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(srv.Close)
	m.URL, m.Host = srv.URL, strings.TrimPrefix(srv.URL, "http://")
	return m
}

func (m *Metadata) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Metadata-Flavor", "Google")
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "Missing Metadata-Flavor:Google header.", http.StatusForbidden)
		return
	}
	const prefix = "/computeMetadata/v1/"
	switch path := strings.TrimPrefix(r.URL.Path, prefix); path {
	case "instance/service-accounts/default/token":
		if !m.record(r, map[string]any{"scopes": r.URL.Query().Get("scopes")}) {
			http.Error(w, "injected failure", int(m.fail.Load()))
			return
		}
		writeJSON(w, map[string]any{"access_token": randomToken("ya29.adc-"), "expires_in": int(m.ttl() / time.Second), "token_type": "Bearer"})
	case "instance/service-accounts/default/identity":
		aud := r.URL.Query().Get("audience")
		if !m.record(r, map[string]any{"audience": aud}) {
			http.Error(w, "injected failure", int(m.fail.Load()))
			return
		}
		fmt.Fprint(w, IDToken(aud, m.Email, m.now().Add(m.ttl())))
	case "instance/service-accounts/default/email":
		fmt.Fprint(w, m.Email)
	case "project/project-id":
		fmt.Fprint(w, "impo-test")
	default:
		http.NotFound(w, r)
	}
}

// TokenEndpoint is an OAuth2 token endpoint for the JWT-bearer grant (RFC
// 7523) as Google's oauth2.googleapis.com/token runs it: it verifies the
// RS256 assertion with the trusted key's public half and checks iss, aud
// (its own URL) and the lifetime, then answers an access token for a
// "scope" claim or an ID token for a "target_audience" claim.
type TokenEndpoint struct {
	Server
	mu      sync.Mutex
	trusted map[string]*rsa.PublicKey // by client_email
	last    string                    // the last assertion received
}

// LastAssertion returns the last assertion received, as sent.
func (te *TokenEndpoint) LastAssertion() string {
	te.mu.Lock()
	defer te.mu.Unlock()
	return te.last
}

// VerifyRS256 checks that token is a compact JWS signed with RS256 by the
// private half of pub, as Google checks what a service-account key signs.
func VerifyRS256(token string, pub *rsa.PublicKey) error {
	sig, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return err
	}
	_, err = sig.Verify(pub)
	return err
}

// StartTokenEndpoint serves at URL until the test ends; name URL in the
// key's token_uri.
func StartTokenEndpoint(t testing.TB) *TokenEndpoint {
	te := &TokenEndpoint{trusted: map[string]*rsa.PublicKey{}}
	srv := httptest.NewServer(http.HandlerFunc(te.serve))
	t.Cleanup(srv.Close)
	te.URL = srv.URL + "/token"
	return te
}

// Trust accepts assertions that email signs with pub.
func (te *TokenEndpoint) Trust(email string, pub *rsa.PublicKey) {
	te.mu.Lock()
	defer te.mu.Unlock()
	te.trusted[email] = pub
}

func (te *TokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	oauthErr := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		oauthErr(400, "invalid_request", "POST a form")
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthErr(400, "unsupported_grant_type", "want the jwt-bearer grant")
		return
	}
	assertion := r.PostForm.Get("assertion")
	claims, err := decodeClaims(assertion)
	if err != nil {
		oauthErr(400, "invalid_grant", err.Error())
		return
	}
	te.mu.Lock()
	pub := te.trusted[fmt.Sprint(claims["iss"])]
	te.last = assertion
	te.mu.Unlock()
	switch {
	case pub == nil:
		oauthErr(400, "invalid_grant", "unknown iss")
		return
	case VerifyRS256(assertion, pub) != nil:
		oauthErr(400, "invalid_grant", "Invalid JWT Signature.")
		return
	case claims["aud"] != te.URL:
		oauthErr(400, "invalid_grant", "Invalid JWT: aud is not this endpoint")
		return
	}
	exp, _ := claims["exp"].(float64)
	iat, _ := claims["iat"].(float64)
	if exp-iat > 3600 || time.Unix(int64(exp), 0).Before(time.Now()) {
		oauthErr(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
		return
	}
	if !te.record(r, claims) {
		oauthErr(int(te.fail.Load()), "temporarily_unavailable", "injected failure")
		return
	}
	if aud, ok := claims["target_audience"].(string); ok && aud != "" {
		writeJSON(w, map[string]any{"id_token": IDToken(aud, fmt.Sprint(claims["iss"]), te.now().Add(te.ttl()))})
		return
	}
	if claims["scope"] == nil || claims["scope"] == "" {
		oauthErr(400, "invalid_scope", "scope or target_audience is required")
		return
	}
	writeJSON(w, map[string]any{"access_token": randomToken("ya29.key-"), "expires_in": int(te.ttl() / time.Second), "token_type": "Bearer"})
}

// decodeClaims reads a JWT's claims, private ones included.
func decodeClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("assertion is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	return claims, json.Unmarshal(payload, &claims)
}

// DecodeClaims exposes decodeClaims to tests that check what a source sent.
func DecodeClaims(token string) (map[string]any, error) { return decodeClaims(token) }

// IAMCredentials speaks the IAM Credentials REST API's generateAccessToken
// and generateIdToken. It demands a Bearer token (the caller's own
// identity) and records it, and the resource name of every call.
type IAMCredentials struct {
	Server
	// Grants, when set, are the accounts the caller holds
	// roles/iam.serviceAccountTokenCreator on: any other answers 403, as
	// IAM does.
	Grants []string
	names  []string
}

// Names returns the resource name of every minting call, in order
// (projects/-/serviceAccounts/EMAIL).
func (ic *IAMCredentials) Names() []string {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return append([]string(nil), ic.names...)
}

// AccessTokenAccount tells which account an access token from this
// stand-in was minted for ("" if it is not one of its tokens).
func AccessTokenAccount(token string) string {
	rest, ok := strings.CutPrefix(token, "ya29.impersonated.")
	if !ok {
		return ""
	}
	email, _, _ := strings.Cut(rest, "~")
	return email
}

// StartIAMCredentials serves until the test ends; use URL+"/" as the
// client's endpoint.
func StartIAMCredentials(t testing.TB) *IAMCredentials {
	ic := &IAMCredentials{}
	srv := httptest.NewServer(http.HandlerFunc(ic.serve))
	t.Cleanup(srv.Close)
	ic.URL = srv.URL
	return ic
}

func (ic *IAMCredentials) serve(w http.ResponseWriter, r *http.Request) {
	apiErr := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg}})
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		apiErr(401, "Request is missing required authentication credential.")
		return
	}
	name, method, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/"), ":")
	email := strings.TrimPrefix(name, "projects/-/serviceAccounts/")
	var body map[string]any
	if !ok || r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&body) != nil {
		apiErr(400, "bad request")
		return
	}
	ic.mu.Lock()
	ic.names = append(ic.names, name)
	granted := ic.Grants == nil || slices.Contains(ic.Grants, email)
	ic.mu.Unlock()
	if !granted {
		apiErr(403, "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).")
		return
	}
	if !ic.record(r, body) {
		apiErr(int(ic.fail.Load()), "injected failure")
		return
	}
	switch method {
	case "generateAccessToken":
		life := ic.ttl()
		if l, ok := body["lifetime"].(string); ok {
			if d, err := time.ParseDuration(l); err == nil {
				life = d
			}
		}
		writeJSON(w, map[string]any{
			"accessToken": randomToken("ya29.impersonated." + email + "~"),
			"expireTime":  time.Now().Add(life).UTC().Format(time.RFC3339),
		})
	case "generateIdToken":
		writeJSON(w, map[string]any{"token": IDToken(fmt.Sprint(body["audience"]), email, ic.now().Add(ic.ttl()))})
	default:
		apiErr(404, "no method "+method)
	}
}

// OnCloud starts a metadata server and points Application Default
// Credentials at it, as on Cloud Run, with no key file anywhere, until the
// test ends.
func OnCloud(t *testing.T) *Metadata {
	t.Helper()
	md := StartMetadata(t)
	t.Setenv("GCE_METADATA_HOST", md.Host)
	t.Setenv("HOME", t.TempDir()) // no gcloud application-default file
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	return md
}
