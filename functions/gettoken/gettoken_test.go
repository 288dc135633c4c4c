package gettoken

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/internal/googletest"
	"impo.com.uy/copetes/backend/internal/logtest"
	"impo.com.uy/copetes/backend/shared/googletoken"
	"impo.com.uy/copetes/backend/shared/platform"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
	"impo.com.uy/copetes/backend/shared/store"
	"impo.com.uy/copetes/backend/shared/tokenpolicy"
)

const (
	cloudPlatform = "https://www.googleapis.com/auth/cloud-platform"
	storageRead   = "https://www.googleapis.com/auth/devstorage.read_only"
	validateAud   = "https://validate-impo.a.run.app"
)

const testPolicy = `{"roles": {
	"pipeline": {"scopes": ["` + cloudPlatform + `"], "audiences": ["` + validateAud + `"], "max_lifetime": "1h"},
	"reader":   {"scopes": ["` + storageRead + `"], "max_lifetime": "30m"}
}}`

type testServer struct {
	*server
	auth    *session.Authority
	handler http.Handler
	dir     string
}

// newTestServer serves gettoken with src (nil: adc against md) and the
// test policy.
func newTestServer(t *testing.T, src googletoken.Source, edit func(*config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	k, _ := session.NewKey()
	keys, _ := session.MarshalKeySet([]jose.JSONWebKey{k})
	os.WriteFile(filepath.Join(dir, "session-keys"), keys, 0o600)
	policy, err := tokenpolicy.Parse([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{Margin: 5 * time.Minute, RateLimit: 100000, RateWindow: time.Minute, Policy: policy, MaxLifetime: time.Hour,
		CORSOrigins: []string{"https://portal.impo.test"}}
	if edit != nil {
		edit(&cfg)
	}
	st := store.NewMemory(nil)
	secretSrc := secrets.NewCache(secrets.Dir{Path: dir}, time.Minute, time.Hour) // as in production
	auth := session.NewAuthority(session.Config{Issuer: "https://login.test", Audience: "impo-backend", TTL: time.Hour,
		Leeway: 30 * time.Second, KeysSecret: "session-keys"}, secretSrc, st, time.Now)
	s := newServer(cfg, &platform.Platform{Secrets: secretSrc, Store: st}, auth, src, time.Now)
	return &testServer{server: s, auth: auth, handler: s.routes(), dir: dir}
}

func (ts *testServer) sessionFor(t *testing.T, sub string, roles ...string) string {
	t.Helper()
	tok, _, err := ts.auth.Issuer.Issue(context.Background(), sub, "service", roles)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (ts *testServer) do(t *testing.T, method, ct, body, bearer string) response {
	t.Helper()
	req := httptest.NewRequest(method, "/", strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	ts.handler.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return response{rec.Code, rec.Header(), m, string(raw)}
}

const (
	ctJSON = "application/json"
	ctForm = "application/x-www-form-urlencoded"
)

func TestGetToken_AccessAndIDTokensFromADC(t *testing.T) {
	md := googletest.OnCloud(t)
	ts := newTestServer(t, googletoken.ADC{}, nil)
	tok := ts.sessionFor(t, "pipeline", "pipeline")

	r := ts.do(t, "POST", ctJSON, `{"scopes":["`+cloudPlatform+`"]}`, tok)
	if r.Status != 200 || !strings.HasPrefix(r.Body["access_token"].(string), "ya29.adc-") || r.Body["token_type"] != "Bearer" {
		t.Fatalf("access token: %d %s", r.Status, r.Raw)
	}
	if e := r.Body["expires_in"].(float64); e < 3500 || e > 3600 {
		t.Errorf("expires_in = %v", e)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", r.Header.Get("Cache-Control"))
	}

	r = ts.do(t, "POST", ctForm, "audience="+validateAud, tok)
	if r.Status != 200 || r.Body["id_token"] == nil || r.Body["access_token"] != nil {
		t.Fatalf("ID token: %d %s", r.Status, r.Raw)
	}
	if claims, _ := googletest.DecodeClaims(r.Body["id_token"].(string)); claims["aud"] != validateAud {
		t.Errorf("ID token aud = %v", claims["aud"])
	}
	if md.Calls() != 2 {
		t.Errorf("metadata calls = %d, want 2", md.Calls())
	}
}

func TestGetToken_ConcurrentColdRequestsMakeOneUpstreamCall(t *testing.T) {
	md := googletest.OnCloud(t)
	ts := newTestServer(t, googletoken.ADC{}, nil)
	tok := ts.sessionFor(t, "pipeline", "pipeline")
	const callers = 1000
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	for i := range callers {
		wg.Go(func() {
			// The order of scopes does not change the cache key.
			body := `{"scopes":["` + cloudPlatform + `"]}`
			if i%2 == 1 {
				body = `{"scopes":["` + cloudPlatform + `","` + cloudPlatform + `"]}`
			}
			r := ts.do(t, "POST", ctJSON, body, tok)
			mu.Lock()
			defer mu.Unlock()
			if r.Status != 200 {
				got["status "+strconv.Itoa(r.Status)]++
				return
			}
			got[r.Body["access_token"].(string)]++
		})
	}
	wg.Wait()
	if md.Calls() != 1 || len(got) != 1 {
		t.Fatalf("%d concurrent cold requests: %d upstream calls, outcomes %v; want 1 call, one token", callers, md.Calls(), len(got))
	}
}

func TestGetToken_UpstreamFailureGivesNoToken(t *testing.T) {
	md := googletest.OnCloud(t)
	ts := newTestServer(t, googletoken.ADC{}, nil)
	tok := ts.sessionFor(t, "pipeline", "pipeline")
	for _, tt := range []struct{ upstream, want int }{{503, 503}, {500, 503}, {403, 502}} {
		md.Fail(tt.upstream)
		r := ts.do(t, "POST", ctJSON, `{"audience":"`+validateAud+`"}`, tok)
		if r.Status != tt.want || r.Header.Get("Retry-After") == "" || r.Body["id_token"] != nil || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("upstream %d: got %d %v %s; want %d problem with Retry-After", tt.upstream, r.Status, r.Header, r.Raw, tt.want)
		}
	}
	md.Fail(0)
	if r := ts.do(t, "POST", ctJSON, `{"audience":"`+validateAud+`"}`, tok); r.Status != 200 {
		t.Fatalf("after recovery: %d %s", r.Status, r.Raw)
	}
}

func selfSigned(t *testing.T) (googletoken.Source, *googletoken.ServiceAccountKey) {
	t.Helper()
	data, _ := googletoken.NewServiceAccountKey("gettoken@impo-test.iam.gserviceaccount.com", "https://oauth2.googleapis.com/token")
	key, err := googletoken.ParseKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return googletoken.SelfSigned{Key: func(context.Context) (*googletoken.ServiceAccountKey, error) { return key, nil }, Now: time.Now}, key
}

func TestGetToken_SelfSignedLifetimes(t *testing.T) {
	src, key := selfSigned(t)
	ts := newTestServer(t, src, nil)
	tok := ts.sessionFor(t, "reader", "reader")
	r := ts.do(t, "POST", ctForm, "scope="+storageRead+"&lifetime=1200", tok)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if e := r.Body["expires_in"].(float64); e < 1190 || e > 1200 {
		t.Errorf("expires_in = %v, want 1200", e)
	}
	if err := googletest.VerifyRS256(r.Body["access_token"].(string), key.PublicKey()); err != nil {
		t.Errorf("self-signed token does not verify: %v", err)
	}
	// Without a lifetime: the most the role allows (30m).
	if r := ts.do(t, "POST", ctForm, "scope="+storageRead, tok); r.Body["expires_in"].(float64) > 1800 {
		t.Errorf("default lifetime gave expires_in %v, above the role's 30m", r.Body["expires_in"])
	}
}

func TestGetToken_Policy(t *testing.T) {
	googletest.OnCloud(t)
	src, _ := selfSigned(t)
	ts := newTestServer(t, src, nil)
	adc := newTestServer(t, googletoken.ADC{}, nil)
	reader := ts.sessionFor(t, "ana", "reader")
	pipeline := ts.sessionFor(t, "pipeline", "pipeline")
	tests := []struct {
		name       string
		s          *testServer
		body       string
		token      string
		wantStatus int
		wantDetail string
	}{
		{"scope the role lacks", ts, `{"scopes":["` + cloudPlatform + `"]}`, reader, 403, "none of the roles [reader] allows scopes"},
		{"audience not listed", adc, `{"audience":"https://other.run.app"}`, adc.sessionFor(t, "p", "pipeline"), 403, "audience https://other.run.app"},
		{"lifetime above the role's maximum", ts, `{"scopes":["` + storageRead + `"],"lifetime":3600}`, reader, 400, "above the 1800s your roles allow"},
		{"lifetime under the margin", ts, `{"scopes":["` + storageRead + `"],"lifetime":300}`, reader, 400, "at least 600s"},
		{"fixed-lifetime source cannot shorten", adc, `{"scopes":["` + cloudPlatform + `"],"lifetime":900}`, adc.sessionFor(t, "p", "pipeline"), 400, "mints tokens that live 1h0m0s"},
		{"selfsigned cannot mint ID tokens", ts, `{"audience":"` + validateAud + `"}`, pipeline, 400, "ID tokens need adc, impersonate or key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.s.do(t, "POST", ctJSON, tt.body, tt.token)
			if r.Status != tt.wantStatus || !strings.Contains(r.Body["detail"].(string), tt.wantDetail) {
				t.Fatalf("got %d %s; want %d mentioning %q", r.Status, r.Raw, tt.wantStatus, tt.wantDetail)
			}
		})
	}

	none := newTestServer(t, src, func(c *config) { c.Policy = nil })
	r := none.do(t, "POST", ctJSON, `{"scopes":["`+storageRead+`"]}`, none.sessionFor(t, "ana", "reader"))
	if r.Status != 403 || !strings.Contains(r.Body["detail"].(string), "no policy is configured") {
		t.Fatalf("no policy: %d %s", r.Status, r.Raw)
	}
}

func TestGetToken_BadRequests(t *testing.T) {
	src, _ := selfSigned(t)
	ts := newTestServer(t, src, nil)
	tok := ts.sessionFor(t, "ana", "reader")
	revoked := ts.sessionFor(t, "ana", "reader")
	c, _ := ts.auth.Verifier.Verify(context.Background(), revoked)
	ts.auth.Revocations.Revoke(context.Background(), c)
	other := newTestServer(t, src, nil) // signs with another key
	forged := other.sessionFor(t, "ana", "reader")
	scopes := `{"scopes":["` + storageRead + `"]}`

	tests := []struct {
		name, method, ct, body, token string
		wantStatus                    int
		wantDetail                    string
	}{
		{"no token", "POST", ctJSON, scopes, "", 401, "session token is required"},
		{"forged token", "POST", ctJSON, scopes, forged, 401, "invalid"},
		{"revoked token", "POST", ctJSON, scopes, revoked, 401, "revoked"},
		{"scopes and audience", "POST", ctJSON, `{"scopes":["` + storageRead + `"],"audience":"x"}`, tok, 400, "not both"},
		{"neither", "POST", ctJSON, `{}`, tok, 400, "scopes (an access token) or an audience"},
		{"unknown field", "POST", ctJSON, `{"scopes":["` + storageRead + `"],"role":"admin"}`, tok, 400, `unknown field "role"`},
		{"unknown form parameter", "POST", ctForm, "scope=" + storageRead + "&grant_type=x", tok, 400, `unknown form parameter "grant_type"`},
		{"bad lifetime", "POST", ctForm, "scope=" + storageRead + "&lifetime=soon", tok, 400, "whole number of seconds"},
		{"huge lifetime", "POST", ctJSON, `{"scopes":["` + storageRead + `"],"lifetime":9000000000000000000}`, tok, 400, "between 1 and 43200 seconds"},
		{"negative lifetime", "POST", ctJSON, `{"scopes":["` + storageRead + `"],"lifetime":-5}`, tok, 400, "between 1 and 43200 seconds"},
		{"oversized", "POST", ctJSON, `{"audience":"` + strings.Repeat("a", maxBody) + `"}`, tok, 413, "larger than"},
		{"wrong method", "GET", "", "", tok, 405, "use POST"},
		{"wrong content type", "POST", "text/plain", scopes, tok, 415, "Content-Type"},
		{"malformed JSON", "POST", ctJSON, `{"scopes":`, tok, 400, "invalid JSON"},
		{"empty scope", "POST", ctJSON, `{"scopes":[""]}`, tok, 400, "empty"},
		{"scopes a string", "POST", ctJSON, `{"scopes":"` + storageRead + `"}`, tok, 400, "/scopes: want a JSON array of strings, got string"},
		{"a scope null", "POST", ctJSON, `{"scopes":["` + storageRead + `",null]}`, tok, 400, "/scopes: want a JSON array of strings"},
		{"audience a number", "POST", ctJSON, `{"audience":1}`, tok, 400, "/audience: want a JSON string, got number"},
		{"lifetime with a fraction", "POST", ctJSON, `{"scopes":["` + storageRead + `"],"lifetime":60.5}`, tok, 400, "/lifetime: want a JSON integer"},
		{"lifetime past int64", "POST", ctJSON, `{"scopes":["` + storageRead + `"],"lifetime":9223372036854775808}`, tok, 400, "/lifetime: want a JSON integer"},
		{"a field name in other case", "POST", ctJSON, `{"Scopes":["` + storageRead + `"]}`, tok, 400, `unknown field "Scopes"`},
		{"null is no scopes", "POST", ctJSON, `{"scopes":null,"audience":null}`, tok, 400, "scopes (an access token) or an audience"},
		{"duplicate field", "POST", ctJSON, `{"audience":"` + validateAud + `","audience":"x"}`, tok, 400, "duplicate key"},
		{"not an object", "POST", ctJSON, `["` + storageRead + `"]`, tok, 400, "want a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(t, tt.method, tt.ct, tt.body, tt.token)
			detail, _ := r.Body["detail"].(string)
			if r.Status != tt.wantStatus || !strings.Contains(detail, tt.wantDetail) {
				t.Fatalf("got %d %s; want %d mentioning %q", r.Status, r.Raw, tt.wantStatus, tt.wantDetail)
			}
			if tt.wantStatus == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
			}
			if r.Body["access_token"] != nil {
				t.Error("a refused request got a token")
			}
		})
	}
}

func TestGetToken_RateLimitPerCaller(t *testing.T) {
	src, _ := selfSigned(t)
	ts := newTestServer(t, src, func(c *config) { c.RateLimit = 3 })
	ana, bea := ts.sessionFor(t, "ana", "reader"), ts.sessionFor(t, "bea", "reader")
	body := `{"scopes":["` + storageRead + `"]}`
	for range 3 {
		ts.do(t, "POST", ctJSON, body, ana)
	}
	r := ts.do(t, "POST", ctJSON, body, ana)
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); r.Status != 429 || ra < 1 || ra > 60 {
		t.Fatalf("4th request: %d Retry-After %q", r.Status, r.Header.Get("Retry-After"))
	}
	if r := ts.do(t, "POST", ctJSON, body, bea); r.Status != 200 {
		t.Fatalf("another caller: %d", r.Status)
	}
}

func TestGetToken_AuditLogHasNoToken(t *testing.T) {
	log := logtest.Capture(t)

	googletest.OnCloud(t)
	ts := newTestServer(t, googletoken.ADC{}, nil)
	tok := ts.sessionFor(t, "pipeline", "pipeline")
	var issued []string
	for _, body := range []string{`{"scopes":["` + cloudPlatform + `"]}`, `{"scopes":["` + cloudPlatform + `"]}`, `{"audience":"` + validateAud + `"}`} {
		r := ts.do(t, "POST", ctJSON, body, tok)
		for _, k := range []string{"access_token", "id_token"} {
			if v, ok := r.Body[k].(string); ok {
				issued = append(issued, v)
			}
		}
	}
	logs := log.String()
	for _, secret := range append(issued, tok) {
		if strings.Contains(logs, secret) || strings.Contains(logs, secret[len(secret)-16:]) {
			t.Fatal("a token appears in the log")
		}
	}
	lines := log.Messages("token issued")
	if len(lines) != 3 || lines[0]["cache"] != "miss" || lines[1]["cache"] != "hit" || lines[0]["sub"] != "pipeline" ||
		lines[2]["audience"] != validateAud || len(lines[0]["fingerprint"].(string)) != 8 {
		t.Fatalf("audit lines = %v", lines)
	}
}

func TestGetToken_CORSForTheStaffPortal(t *testing.T) {
	src, _ := selfSigned(t)
	ts := newTestServer(t, src, nil)
	pre := func(origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("OPTIONS", "/", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		rec := httptest.NewRecorder()
		ts.handler.ServeHTTP(rec, req)
		return rec
	}
	if r := pre("https://portal.impo.test"); r.Code != 204 || r.Header().Get("Access-Control-Allow-Origin") != "https://portal.impo.test" ||
		!strings.Contains(r.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight from the portal: %d %v", r.Code, r.Header())
	}
	if r := pre("https://evil.example"); r.Code != 403 || r.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", r.Code, r.Header())
	}
}

func TestGetToken_PolicySecretEditsNeedNoRestart(t *testing.T) {
	src, _ := selfSigned(t)
	ts := newTestServer(t, src, func(c *config) { c.Policy, c.PolicySecret = nil, DefaultPolicySecret })
	// The same cache as every other secret; no time in it here, so that an
	// edit is seen at the next request.
	ts.server.policy = ts.cfg.policySource(secrets.NewCache(secrets.Dir{Path: ts.dir}, 0, time.Hour))
	ask := `{"scopes":["` + storageRead + `"]}`
	tok := ts.sessionFor(t, "ana", "reader")

	if r := ts.do(t, "POST", ctJSON, ask, tok); r.Status != 403 || !strings.Contains(r.Raw, "no policy is configured") {
		t.Fatalf("no policy secret: %d %s, want 403 saying there is no policy", r.Status, r.Raw)
	}
	write := func(policy string) {
		t.Helper()
		if err := (secrets.Dir{Path: ts.dir}).Write(DefaultPolicySecret, []byte(policy)); err != nil {
			t.Fatal(err)
		}
	}
	write(testPolicy)
	if r := ts.do(t, "POST", ctJSON, ask, tok); r.Status != 200 {
		t.Fatalf("after the policy was written: %d %s", r.Status, r.Raw)
	}
	write(`{"roles":{"pipeline":{"scopes":["` + cloudPlatform + `"]}}}`)
	if r := ts.do(t, "POST", ctJSON, ask, tok); r.Status != 403 {
		t.Fatalf("after the reader role was removed: %d %s, want 403", r.Status, r.Raw)
	}
	write(`{"roles":`)
	if r := ts.do(t, "POST", ctJSON, ask, tok); r.Status != 500 || strings.Contains(r.Raw, "roles") {
		t.Fatalf("a broken policy: %d %s, want 500 that tells nothing of it", r.Status, r.Raw)
	}
}

func TestConfig_SourceIgnoresTheProject(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "impo-prod")
	c, err := configFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "selfsigned" || c.PolicySecret != DefaultPolicySecret {
		t.Fatalf("with only GOOGLE_CLOUD_PROJECT set: source %q, policy secret %q; want selfsigned and %q",
			c.Source, c.PolicySecret, DefaultPolicySecret)
	}
	t.Setenv("GETTOKEN_POLICY_FILE", "policy.json")
	if c, err = configFromEnv(); err != nil || !filepath.IsAbs(c.PolicySecret) {
		t.Fatalf("GETTOKEN_POLICY_FILE=policy.json: secret %q, %v; want an absolute path", c.PolicySecret, err)
	}
}

// vendedPolicy maps each role to a vended account of its own.
const vendedPolicy = `{"roles": {
	"pipeline": {"service_account": "vend-pipeline@impo-test.iam.gserviceaccount.com", "scopes": ["` + cloudPlatform + `"], "audiences": ["` + validateAud + `"]},
	"reader":   {"service_account": "vend-reader@impo-test.iam.gserviceaccount.com", "scopes": ["` + storageRead + `"], "max_lifetime": "30m"}
}}`

func TestGetToken_EachRoleGetsItsVendedAccount(t *testing.T) {
	googletest.OnCloud(t) // the runtime identity that calls IAM
	iam := googletest.StartIAMCredentials(t)
	iam.Grants = []string{"vend-pipeline@impo-test.iam.gserviceaccount.com", "vend-reader@impo-test.iam.gserviceaccount.com"}
	policy, err := tokenpolicy.Parse([]byte(vendedPolicy))
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, googletoken.Impersonate{Endpoint: iam.URL + "/", MaxLife: time.Hour}, func(c *config) {
		c.Source, c.Policy = "impersonate", policy
	})
	pipeline, reader, stranger := ts.sessionFor(t, "ingesta", "pipeline"), ts.sessionFor(t, "ana", "reader"), ts.sessionFor(t, "eva", "editor")

	r := ts.do(t, "POST", ctJSON, `{"scopes":["`+cloudPlatform+`"]}`, pipeline)
	if r.Status != 200 || googletest.AccessTokenAccount(r.Body["access_token"].(string)) != "vend-pipeline@impo-test.iam.gserviceaccount.com" {
		t.Fatalf("pipeline: %d %s, want a token minted as vend-pipeline", r.Status, r.Raw)
	}
	r = ts.do(t, "POST", ctJSON, `{"scopes":["`+storageRead+`"]}`, reader)
	if r.Status != 200 || googletest.AccessTokenAccount(r.Body["access_token"].(string)) != "vend-reader@impo-test.iam.gserviceaccount.com" {
		t.Fatalf("reader: %d %s, want a token minted as vend-reader", r.Status, r.Raw)
	}
	r = ts.do(t, "POST", ctJSON, `{"audience":"`+validateAud+`"}`, pipeline)
	if claims, _ := googletest.DecodeClaims(fmt.Sprint(r.Body["id_token"])); r.Status != 200 || claims["sub"] != "vend-pipeline@impo-test.iam.gserviceaccount.com" {
		t.Fatalf("pipeline ID token: %d %s, want one for vend-pipeline", r.Status, r.Raw)
	}
	if r := ts.do(t, "POST", ctJSON, `{"scopes":["`+storageRead+`"]}`, stranger); r.Status != 403 {
		t.Fatalf("a role the policy does not map: %d %s, want 403", r.Status, r.Raw)
	}
	want := []string{
		"projects/-/serviceAccounts/vend-pipeline@impo-test.iam.gserviceaccount.com",
		"projects/-/serviceAccounts/vend-reader@impo-test.iam.gserviceaccount.com",
		"projects/-/serviceAccounts/vend-pipeline@impo-test.iam.gserviceaccount.com",
	}
	if diff := cmp.Diff(want, iam.Names()); diff != "" {
		t.Errorf("IAM Credentials calls (-want +got):\n%s", diff)
	}
}

func TestBuild_DeployedRefusesWhatHandsOutItsOwnIdentity(t *testing.T) {
	md := googletest.OnCloud(t)
	dir := t.TempDir()
	p := &platform.Platform{Secrets: secrets.Dir{Path: dir}, Store: store.NewMemory(nil)}
	p.Sessions = p.Store
	t.Setenv("K_SERVICE", "gettoken")
	t.Setenv("LOGIN_ISSUER", "https://login.test") // deployed, a verifier must know the issuer
	t.Setenv("SESSION_JWKS_URL", "https://login.test/jwks")
	runtime := md.Email
	tests := []struct {
		name, source, policy, jwks, want string
	}{
		{"adc", "adc", vendedPolicy, "https://login.test/jwks", "GETTOKEN_SOURCE"},
		{"selfsigned", "selfsigned", vendedPolicy, "https://login.test/jwks", "GETTOKEN_SOURCE"},
		{"impersonate with a fixed account", "impersonate:x@impo-test.iam.gserviceaccount.com", vendedPolicy, "https://login.test/jwks", "GETTOKEN_SOURCE"},
		{"a role without an account", "impersonate", `{"roles":{"dev":{"scopes":["` + cloudPlatform + `"]}}}`, "https://login.test/jwks", "name no service_account"},
		{"a role with the runtime account", "impersonate", `{"roles":{"dev":{"service_account":"` + runtime + `","scopes":["` + cloudPlatform + `"]}}}`, "https://login.test/jwks", "the account gettoken runs as"},
		{"the signing keys instead of login's JWKS", "impersonate", vendedPolicy, "", "SESSION_JWKS_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GETTOKEN_SOURCE", tt.source)
			t.Setenv("GETTOKEN_POLICY", tt.policy)
			t.Setenv("SESSION_JWKS_URL", tt.jwks)
			_, err := build(context.Background(), p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("build: %v, want a refusal mentioning %q", err, tt.want)
			}
		})
	}
	t.Setenv("GETTOKEN_SOURCE", "impersonate")
	t.Setenv("GETTOKEN_POLICY", vendedPolicy)
	if _, err := build(context.Background(), p); err != nil {
		t.Fatalf("a safe deployed configuration: %v", err)
	}
}

// TestGetToken_CookieCSRFRefused: a foreign page posts to GetToken; the
// browser adds the session cookie, so without an origin check the page
// would have Google tokens minted on its visitor's behalf (and spend the
// visitor's rate limit). The portal, and the function's own origin, may.
func TestGetToken_CookieCSRFRefused(t *testing.T) {
	src, _ := selfSigned(t)
	ts := newTestServer(t, src, nil)
	ts.auth.Config.Cookie = "impo_session"
	ts.handler = ts.routes()
	jar := "impo_session=" + ts.sessionFor(t, "pipeline", "pipeline")
	ask := func(header ...string) response {
		req := httptest.NewRequest("POST", "/", strings.NewReader(`{"scopes":["`+cloudPlatform+`"]}`))
		req.Header.Set("Content-Type", ctJSON)
		req.Header.Set("Cookie", jar)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		ts.handler.ServeHTTP(rec, req)
		var m map[string]any
		json.Unmarshal(rec.Body.Bytes(), &m)
		return response{rec.Code, rec.Header(), m, rec.Body.String()}
	}
	for _, h := range [][]string{
		{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.impo.test", "Sec-Fetch-Site", "same-site"},
		{"Origin", "null"},
		{}, // no Origin: no browser sends a POST without one
	} {
		if r := ask(h...); r.Status != 403 || r.Body["access_token"] != nil {
			t.Fatalf("GetToken by cookie with %v: %d %s, want 403", h, r.Status, r.Raw)
		}
	}
	for _, h := range [][]string{
		{"Origin", "https://portal.impo.test", "Sec-Fetch-Site", "same-site"},
		{"Origin", "https://gettoken.impo.test", "Sec-Fetch-Site", "same-origin"},
	} {
		if r := ask(h...); r.Status != 200 || r.Body["access_token"] == nil {
			t.Fatalf("GetToken by cookie with %v: %d %s, want a token", h, r.Status, r.Raw)
		}
	}
}

// The response prepared once per token is, byte for byte, what
// encoding/json writes for tokenResponse: any token text, either kind.
func TestIssuance_ResponseIsTheJSONOfTokenResponse(t *testing.T) {
	ts := newTestServer(t, googletoken.ADC{}, nil)
	for _, value := range []string{"ya29.abc-_", `quote" back\ <tag> & amp` + "\u2028\u00e9\x01"} {
		for _, kind := range []googletoken.Kind{googletoken.Access, googletoken.ID} {
			is := ts.prepare(googletoken.Request{Kind: kind, Scopes: []string{storageRead}, Audience: validateAud}, googletoken.Token{Value: value}).(*issuance)
			want := tokenResponse{TokenType: "Bearer", ExpiresIn: 3599}
			if kind == googletoken.ID {
				want.IDToken = value
			} else {
				want.AccessToken = value
			}
			wantBody, _ := json.Marshal(want)
			body, end := is.response(nil, 3599)
			if got := string(body) + string(end); got != string(wantBody)+"\n" {
				t.Errorf("%s token %q: response\n%s\nwant\n%s", kind, value, got, wantBody)
			}
		}
	}
}

// The audit line's attributes are prepared once per token, but it is
// written to the default logger of the moment: a cache hit after the
// process set up its logging again still reaches the log.
func TestGetToken_AuditFollowsTheDefaultLogger(t *testing.T) {
	src, _ := selfSigned(t)
	ts := newTestServer(t, src, nil)
	tok := ts.sessionFor(t, "ana", "reader")
	body := `{"scopes":["` + storageRead + `"]}`
	first := logtest.Capture(t)
	if r := ts.do(t, "POST", ctJSON, body, tok); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	second := logtest.Capture(t)
	if r := ts.do(t, "POST", ctJSON, body, tok); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	a, b := first.Messages("token issued"), second.Messages("token issued")
	if len(a) != 1 || len(b) != 1 || b[0]["cache"] != "hit" {
		t.Fatalf("lines: %d before the new logger, %d after (%v); want one each, the second a hit", len(a), len(b), b)
	}
	for _, k := range []string{"sub", "kind", "scopes", "source", "expires", "fingerprint"} {
		if !cmp.Equal(a[0][k], b[0][k]) {
			t.Errorf("%s: %v on the miss, %v on the hit", k, a[0][k], b[0][k])
		}
	}
}

// Each audit line names its own caller, whether its attributes were
// formatted for this line or kept from an earlier one: by token id, with
// the subject and roles checked, and past the bound on kept callers.
func TestIssuance_AuditNamesEachCaller(t *testing.T) {
	ts := newTestServer(t, googletoken.ADC{}, nil)
	log := logtest.Capture(t)
	is := ts.prepare(googletoken.Request{Kind: googletoken.Access, Scopes: []string{storageRead}},
		googletoken.Token{Value: "ya29.x", Fingerprint: "0badf00d"}).(*issuance)
	ana := session.Claims{ID: "jti-1", Subject: "ana", Roles: []string{"reader"}}
	bob := session.Claims{ID: "jti-2", Subject: "bob", Roles: []string{"reader", "pipeline"}}
	forged := session.Claims{ID: "jti-1", Subject: "mallory", Roles: []string{"admin"}} // ana's token id, someone else
	late := session.Claims{ID: "jti-3", Subject: "carla", Roles: []string{"reader"}}
	calls := []struct {
		caller session.Claims
		hit    bool
	}{{ana, false}, {ana, true}, {ana, true}, {bob, true}, {forged, true}, {ana, true}, {late, true}}
	for i, c := range calls {
		if c.caller.ID == late.ID {
			is.ncallers.Store(maxCallers) // no more kept: carla's line is formatted whole
		}
		is.audit(context.Background(), c.caller, c.hit)
		lines := log.Messages("token issued")
		if len(lines) != i+1 {
			t.Fatalf("%d lines after %d calls", len(lines), i+1)
		}
		line := lines[i]
		cache := map[bool]string{true: "hit", false: "miss"}[c.hit]
		roles, _ := line["roles"].([]any)
		if line["sub"] != c.caller.Subject || fmt.Sprint(roles) != fmt.Sprint(c.caller.Roles) || line["cache"] != cache ||
			line["fingerprint"] != "0badf00d" || line["kind"] != "access" {
			t.Errorf("call %d (%s): line %v", i, c.caller.Subject, line)
		}
	}
}
