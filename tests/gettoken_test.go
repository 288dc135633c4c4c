package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"impo.com.uy/copetes/backend/internal/googletest"
	"impo.com.uy/copetes/backend/shared/googletoken"
)

const storageRead = "https://www.googleapis.com/auth/devstorage.read_only"

// getTokenSource is the README's example: an oauth2.TokenSource over
// GetToken, authenticated by a session from login.
type getTokenSource struct {
	ctx     context.Context
	url     string
	session oauth2.TokenSource
	scopes  []string
}

func (s getTokenSource) Token() (*oauth2.Token, error) {
	body, _ := json.Marshal(map[string]any{"scopes": s.scopes})
	req, _ := http.NewRequestWithContext(s.ctx, "POST", s.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := oauth2.NewClient(s.ctx, s.session).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GetToken: %s", resp.Status)
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: "Bearer",
		Expiry: time.Now().Add(time.Duration(t.ExpiresIn) * time.Second)}, nil
}

// storageAPI stands for a Google API: it accepts a self-signed token the
// way Google does, by its signature with the service account's public key
// and the scope it carries.
func storageAPI(t *testing.T, key *googletoken.ServiceAccountKey) (*httptest.Server, *int) {
	served := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sig, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
		if !ok || err != nil {
			http.Error(w, "not a signed token", http.StatusUnauthorized)
			return
		}
		payload, err := sig.Verify(key.PublicKey())
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var cs struct {
			Iss   string `json:"iss"`
			Scope string `json:"scope"`
			Exp   int64  `json:"exp"`
		}
		if err := json.Unmarshal(payload, &cs); err != nil || cs.Iss != key.Email || !strings.Contains(" "+cs.Scope+" ", " "+storageRead+" ") || time.Unix(cs.Exp, 0).Before(time.Now()) {
			http.Error(w, "insufficient scope", http.StatusForbidden)
			return
		}
		served++
		fmt.Fprint(w, `{"items":[]}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &served
}

func TestGetToken_ServiceUsesAGoogleAPIWithoutHoldingAKey(t *testing.T) {
	dir, _, secret := setup(t)
	policy := `{"roles":{"validate":{"scopes":["` + storageRead + `"],"max_lifetime":"30m"}}}`
	s := startLocal(t, "CREDENTIALS_DIR="+dir, "GETTOKEN_POLICY="+policy)
	keyJSON, err := os.ReadFile(filepath.Join(dir, "gettoken-key")) // the dev key the bootstrap made
	if err != nil {
		t.Fatal(err)
	}
	key, err := googletoken.ParseKey(keyJSON)
	if err != nil {
		t.Fatal(err)
	}
	api, served := storageAPI(t, key)

	ctx := context.Background()
	session := (&clientcredentials.Config{ClientID: "pipeline", ClientSecret: secret, TokenURL: s.URL + "/Login/token"}).TokenSource(ctx)
	google := oauth2.ReuseTokenSource(nil, getTokenSource{ctx: ctx, url: s.URL + "/GetToken", session: session, scopes: []string{storageRead}})
	client := oauth2.NewClient(ctx, google)
	for range 3 {
		resp, err := client.Get(api.URL + "/storage/v1/b/impo-copetes/o")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("the API refused the vended token: %s", resp.Status)
		}
	}
	if *served != 3 {
		t.Fatalf("API served %d requests, want 3", *served)
	}

	// A scope outside the role's policy is refused.
	denied := getTokenSource{ctx: ctx, url: s.URL + "/GetToken", session: session, scopes: []string{"https://www.googleapis.com/auth/cloud-platform"}}
	if _, err := denied.Token(); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a scope the policy does not allow: %v, want 403", err)
	}

	// One token served all three calls, and the audit log says so.
	s.Stop(t) // all it logged is in
	if n := strings.Count(s.Stdout.String(), `"message":"token issued"`); n != 1 {
		t.Errorf("%d issuances logged, want 1 (the TokenSource reuses the token)", n)
	}
}

func TestGetToken_DevDefaultsFromAFreshCheckout(t *testing.T) {
	s, creds, pw := freshCheckout(t)
	_, body := post(t, s.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"dev","password":"`+pw+`"}`)
	status, tok := post(t, s.URL+"/GetToken", "application/json", `{"scopes":["https://www.googleapis.com/auth/cloud-platform"]}`,
		"Authorization", "Bearer "+body["access_token"].(string))
	if status != 200 || tok["token_type"] != "Bearer" {
		t.Fatalf("GetToken with the dev defaults: %d %v", status, tok)
	}
	keyJSON, _ := os.ReadFile(filepath.Join(creds, "gettoken-key"))
	key, _ := googletoken.ParseKey(keyJSON)
	if err := googletest.VerifyRS256(tok["access_token"].(string), key.PublicKey()); err != nil {
		t.Fatalf("the dev token does not verify with the dev key: %v", err)
	}
	s.Stop(t) // all it logged is in
	for _, secret := range []string{tok["access_token"].(string), body["access_token"].(string)} {
		if strings.Contains(s.Stdout.String(), secret) {
			t.Fatal("a token reached the log")
		}
	}
}

// TestGetToken_VerifiesWithLoginsPublishedKeys runs gettoken in a process
// of its own that knows login only by its JWKS URL: it verifies login's
// tokens without any access to the signing keys.
func TestGetToken_VerifiesWithLoginsPublishedKeys(t *testing.T) {
	dir, pw, _ := setup(t)
	login := startLocal(t, "CREDENTIALS_DIR="+dir)
	policy := `{"roles":{"editor":{"scopes":["` + storageRead + `"]}}}`
	other := t.TempDir() // no copy of login's keys
	// The issuer is login's: left unset, cmd/local would set it to its own.
	gettoken := startLocal(t, "CREDENTIALS_DIR="+other, "SESSION_JWKS_URL="+login.URL+"/Login/jwks", "LOGIN_ISSUER="+login.URL+"/Login",
		"GETTOKEN_POLICY="+policy)
	_, body := post(t, login.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"`+pw+`"}`)
	st, tok := post(t, gettoken.URL+"/GetToken", "application/json", `{"scopes":["`+storageRead+`"]}`,
		"Authorization", "Bearer "+body["access_token"].(string))
	if st != 200 || tok["access_token"] == nil {
		t.Fatalf("GetToken verifying by JWKS: %d %v", st, tok)
	}
}

// TestGetToken_EachRoleReceivesItsVendedAccount runs gettoken as deployed
// (GETTOKEN_SOURCE=impersonate) against the IAM Credentials stand-in: a
// caller receives tokens of its role's account, never gettoken's own.
func TestGetToken_EachRoleReceivesItsVendedAccount(t *testing.T) {
	dir, password, secret := setup(t) // ana (editor) and pipeline (validate)
	md := googletest.StartMetadata(t) // the runtime identity that calls IAM
	iam := googletest.StartIAMCredentials(t)
	const (
		vendPipeline = "vend-pipeline@impo-test.iam.gserviceaccount.com"
		vendEditor   = "vend-editor@impo-test.iam.gserviceaccount.com"
	)
	iam.Grants = []string{vendPipeline, vendEditor} // what setup grants gettoken-fn
	policy := `{"roles":{
		"validate":{"service_account":"` + vendPipeline + `","scopes":["https://www.googleapis.com/auth/cloud-platform"]},
		"editor":{"service_account":"` + vendEditor + `","scopes":["` + storageRead + `"],"max_lifetime":"30m"}}}`
	s := startLocal(t, "CREDENTIALS_DIR="+dir, "GETTOKEN_POLICY="+policy, "GETTOKEN_SOURCE=impersonate",
		"GETTOKEN_IAM_ENDPOINT="+iam.URL+"/", "GCE_METADATA_HOST="+md.Host, "HOME="+t.TempDir(), "GOOGLE_APPLICATION_CREDENTIALS=")

	ctx := context.Background()
	pipeline, err := (&clientcredentials.Config{ClientID: "pipeline", ClientSecret: secret, TokenURL: s.URL + "/Login/token"}).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, body := post(t, s.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"`+password+`"}`)
	ana, _ := body["access_token"].(string)

	tests := []struct {
		name, session, scope string
		wantStatus           int
		wantAccount          string
	}{
		{"the pipeline's role", pipeline.AccessToken, "https://www.googleapis.com/auth/cloud-platform", 200, vendPipeline},
		{"a person's role", ana, storageRead, 200, vendEditor},
		{"a scope no role of the caller allows", ana, "https://www.googleapis.com/auth/cloud-platform", 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, tok := post(t, s.URL+"/GetToken", "application/json", `{"scopes":["`+tt.scope+`"]}`, "Authorization", "Bearer "+tt.session)
			if status != tt.wantStatus {
				t.Fatalf("GetToken: %d %v, want %d", status, tok, tt.wantStatus)
			}
			if got := googletest.AccessTokenAccount(fmt.Sprint(tok["access_token"])); got != tt.wantAccount {
				t.Fatalf("token minted as %q, want %q", got, tt.wantAccount)
			}
		})
	}
	want := []string{"projects/-/serviceAccounts/" + vendPipeline, "projects/-/serviceAccounts/" + vendEditor}
	if diff := cmp.Diff(want, iam.Names()); diff != "" {
		t.Errorf("IAM Credentials calls (-want +got):\n%s", diff)
	}
}
