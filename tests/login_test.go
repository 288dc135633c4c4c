package tests

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"impo.com.uy/copetes/backend/internal/devcreds"
	"impo.com.uy/copetes/backend/internal/secretstest"
	"impo.com.uy/copetes/backend/shared/clients"
)

var devPasswordRE = regexp.MustCompile(`usuario "dev", contraseña ([A-Z2-7]+)`)

// localIssuerRE matches the issuer of a local run: login under /Login on
// a loopback address.
var localIssuerRE = regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+/Login$`)

// verifyWithJWKS checks token against the published JWKS with go-jose
// alone, independently of the backend's own verifier, and returns its
// claims.
func verifyWithJWKS(t *testing.T, jwksURL, token string) map[string]any {
	t.Helper()
	resp, err := http.Get(jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is not in the JWKS", jws.Signatures[0].Header.KeyID)
	}
	if _, ok := keys[0].Key.(ed25519.PublicKey); !ok {
		t.Fatalf("JWKS key is %T, want an Ed25519 public key", keys[0].Key)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("token does not verify against the JWKS: %v", err)
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	return claims
}

// freshCheckout starts the local run on an empty credentials folder, as a
// newcomer would, and returns it with the dev password it printed.
func freshCheckout(t *testing.T) (s *localServer, creds, password string) {
	t.Helper()
	creds = filepath.Join(t.TempDir(), "credenciales")
	s = startLocal(t, "CREDENTIALS_DIR="+creds)
	ctx, cancel := context.WithTimeout(context.Background(), startGuard)
	defer cancel()
	m, err := s.Stderr.Line(ctx, devPasswordRE)
	if err != nil {
		t.Fatalf("no dev password printed (%v):\n%s", err, s.Stderr)
	}
	return s, creds, m[1]
}

func TestFreshCheckout_DevLoginWithPrintedPassword(t *testing.T) {
	s, creds, pw := freshCheckout(t)
	status, body := post(t, s.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"dev","password":"`+pw+`"}`)
	if status != 200 {
		t.Fatalf("login with the printed password: %d %v", status, body)
	}
	claims := verifyWithJWKS(t, s.URL+"/Login/.well-known/jwks.json", body["access_token"].(string))
	// The issuer of a local run is login's loopback URL (LOGIN_ISSUER):
	// cmd/local's own address once it sets it, else session.LocalIssuer.
	iss, _ := claims["iss"].(string)
	if claims["sub"] != "dev" || !localIssuerRE.MatchString(iss) || claims["aud"] != "impo-copetes-backend" {
		t.Errorf("claims = %v", claims)
	}
	// The curl line printed for the newcomer carries the same password.
	s.Stop(t) // all it printed is in
	if !strings.Contains(s.Stderr.String(), `"password":"`+pw+`"`) {
		t.Error("the printed curl line does not carry the dev password")
	}
	for _, f := range []string{"session-keys", "accounts"} {
		if info, err := os.Stat(filepath.Join(creds, f)); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v (mode %v), want a 0600 file", f, err, info.Mode().Perm())
		}
	}
}

// setup makes a credentials folder with cmd/admin, as an operator would,
// and returns it with the secrets it set.
func setup(t *testing.T) (dir, password, clientSecret string) {
	t.Helper()
	dir = t.TempDir()
	env := []string{"CREDENTIALS_DIR=" + dir}
	runAdmin(t, "", env, "keys", "init")
	password = "una contraseña de prueba larga"
	runAdmin(t, password+"\n", env, "account", "add", "--name", "ana", "--roles", "editor")
	out := runAdmin(t, "", env, "account", "add", "--name", "pipeline", "--roles", "validate", "--service", "--generate-secret")
	clientSecret = strings.TrimSpace(out)
	return dir, password, clientSecret
}

func TestOAuth2Clients(t *testing.T) {
	dir, pw, secret := setup(t)
	s := startLocal(t, "CREDENTIALS_DIR="+dir)
	ctx := context.Background()
	tokenURL := s.URL + "/Login/token"

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cc := clientcredentials.Config{ClientID: "pipeline", ClientSecret: secret, TokenURL: tokenURL, AuthStyle: style}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client credentials (auth style %d): %v", style, err)
		}
		if c := verifyWithJWKS(t, s.URL+"/Login/.well-known/jwks.json", tok.AccessToken); c["sub"] != "pipeline" || c["kind"] != "service" {
			t.Errorf("claims = %v", c)
		}
		if time.Until(tok.Expiry) < 59*time.Minute {
			t.Errorf("expiry %v, want about an hour", tok.Expiry)
		}
	}

	bad := clientcredentials.Config{ClientID: "pipeline", ClientSecret: "wrong", TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInHeader}
	_, err := bad.Token(ctx)
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.Response.StatusCode != 401 || re.ErrorCode != "invalid_client" {
		t.Fatalf("wrong client secret: %v, want a 401 invalid_client RetrieveError", err)
	}

	// The password grant, for a client registered with it: the dev client
	// (a public client: client_id in the form, no secret).
	pc := oauth2.Config{ClientID: devcreds.DevClient, Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := pc.PasswordCredentialsToken(ctx, "ana", pw)
	if err != nil {
		t.Fatalf("password grant: %v", err)
	}
	if c := verifyWithJWKS(t, s.URL+"/Login/.well-known/jwks.json", tok.AccessToken); c["sub"] != "ana" {
		t.Errorf("claims = %v", c)
	}
	if _, err := pc.PasswordCredentialsToken(ctx, "ana", "wrong"); !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("wrong password: %v, want invalid_grant", err)
	}
}

func asRetrieveError(err error, re **oauth2.RetrieveError) bool {
	e, ok := err.(*oauth2.RetrieveError)
	if ok {
		*re = e
	}
	return ok
}

func TestIntrospectThenRevoke(t *testing.T) {
	dir, pw, _ := setup(t)
	s := startLocal(t, "CREDENTIALS_DIR="+dir)
	_, body := post(t, s.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"`+pw+`"}`)
	token := body["access_token"].(string)
	form := "application/x-www-form-urlencoded"
	tokenForm := url.Values{"token": {token}}.Encode()

	status, intro := post(t, s.URL+"/Login/introspect", form, tokenForm, "Authorization", "Bearer "+token)
	if status != 200 || intro["active"] != true || intro["sub"] != "ana" {
		t.Fatalf("introspect: %d %v", status, intro)
	}
	if status, _ := post(t, s.URL+"/Login/revoke", form, tokenForm, "Authorization", "Bearer "+token); status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	// A fresh token asks about the revoked one.
	_, body = post(t, s.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"`+pw+`"}`)
	status, intro = post(t, s.URL+"/Login/introspect", form, tokenForm, "Authorization", "Bearer "+body["access_token"].(string))
	if status != 200 || intro["active"] != false || len(intro) != 1 {
		t.Fatalf("introspect after revoke: %d %v, want {\"active\":false}", status, intro)
	}
	if status, _ := post(t, s.URL+"/Login/introspect", form, tokenForm, "Authorization", "Bearer "+token); status != 401 {
		t.Fatalf("the revoked token still authenticates a caller: %d", status)
	}
}

func TestSecretManagerSource(t *testing.T) {
	dir, pw, _ := setup(t)
	sm := secretstest.Start(t)
	for _, id := range []string{"session-keys", "accounts"} {
		data, _ := os.ReadFile(filepath.Join(dir, id))
		sm.Put("impo-e2e", id, data)
	}
	// The dev client, with the password grant the login below uses.
	devClients, err := clients.Marshal([]clients.Client{devcreds.DevClientAt(devcreds.DevOrigin)})
	if err != nil {
		t.Fatal(err)
	}
	sm.Put("impo-e2e", "clients", devClients)
	empty := t.TempDir()
	s := startLocal(t, "GOOGLE_CLOUD_PROJECT=impo-e2e", "SECRETMANAGER_EMULATOR_HOST="+sm.Addr, "CREDENTIALS_DIR="+empty)
	status, body := post(t, s.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"`+pw+`"}`)
	if status != 200 {
		t.Fatalf("login through Secret Manager: %d %v", status, body)
	}
	if sm.AccessCalls() < 3 {
		t.Errorf("Secret Manager saw %d reads, want the keys, the accounts and the clients", sm.AccessCalls())
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Error("with Secret Manager selected, the local run still wrote dev credentials")
	}
}

func TestFunctionTargetServesOneFunctionAtRoot(t *testing.T) {
	dir, pw, _ := setup(t)
	base := startTarget(t, "Login", "CREDENTIALS_DIR="+dir)
	status, body := post(t, base+"/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"`+pw+`"}`)
	if status != 200 {
		t.Fatalf("FUNCTION_TARGET=Login, POST /token: %d %v", status, body)
	}
	verifyWithJWKS(t, base+"/jwks", body["access_token"].(string))
}
