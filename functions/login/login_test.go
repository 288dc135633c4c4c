package login

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/internal/logtest"
	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/lockout"
	"impo.com.uy/copetes/backend/shared/password"
	"impo.com.uy/copetes/backend/shared/platform"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
	"impo.com.uy/copetes/backend/shared/store"
)

// Test accounts and their secrets.
var testAccounts = []struct {
	acct   accounts.Account
	secret string
}{
	{accounts.Account{Name: "ana", Kind: accounts.User, Roles: []string{"editor"}}, "ana-secret-pw"},
	{accounts.Account{Name: "bea", Kind: accounts.User, Roles: []string{}, Disabled: true}, "bea-secret-pw"},
	{accounts.Account{Name: "pipeline", Kind: accounts.Service, Roles: []string{"validate"}}, "pipeline-client-secret"},
	{accounts.Account{Name: "retired", Kind: accounts.Service, Roles: []string{"validate"}, Disabled: true}, "retired-client-secret"},
	{accounts.Account{Name: "ops", Kind: accounts.User, Roles: []string{RevokeAnyRole}}, "ops-secret-pw"},
}

var (
	accountsOnce sync.Once
	accountsJSON []byte
)

// writeCredentials writes a key set and the test accounts into dir. The
// accounts are hashed once per test binary: argon2id is slow on purpose.
// Services hold their secrets' digests, as cmd/admin writes them.
func writeCredentials(t *testing.T, dir string) {
	t.Helper()
	accountsOnce.Do(func() {
		var list []accounts.Account
		for _, a := range testAccounts {
			h, err := password.Hash([]byte(a.secret), password.Default)
			if err != nil {
				panic(err)
			}
			if a.acct.Kind == accounts.Service {
				h = password.HashSecret([]byte(a.secret))
			}
			a.acct.Hash = h
			list = append(list, a.acct)
		}
		var err error
		if accountsJSON, err = accounts.Marshal(list); err != nil {
			panic(err)
		}
	})
	k, _ := session.NewKey()
	keys, _ := session.MarshalKeySet([]jose.JSONWebKey{k})
	os.WriteFile(filepath.Join(dir, "session-keys"), keys, 0o600)
	os.WriteFile(filepath.Join(dir, "accounts"), accountsJSON, 0o600)
	writeClients(t, dir)
}

type testServer struct {
	*server
	dir    string
	hashes atomic.Int64 // secret checks: argon2id hashes and digests
	fast   atomic.Int64 // of which service secrets' digests
	clock  *testclock.Clock
	http   http.Handler
}

func testConfig() config {
	policy := lockout.Policy{Threshold: 5, Window: time.Hour, Base: 30 * time.Second, Max: 15 * time.Minute}
	acct, addr := policy, policy
	acct.Threshold, addr.Threshold = 20, 50
	return config{
		AccountsSecret:  "accounts",
		ClientsSecret:   "clients",
		PerPair:         policy,
		PerAccount:      acct,
		PerAddress:      addr,
		IPv6Prefix:      64,
		DeviceCookie:    "impo_device",
		HashConcurrency: 2,
		HashMemoryKiB:   256 << 10,
		HashWait:        2 * time.Second,
		HashQueue:       64,
		HashParams:      password.Default,
		CORSOrigins:     []string{"https://portal.impo.test"},
		RefreshIdle:     8 * time.Hour,
		RefreshMax:      12 * time.Hour,
	}
}

func newTestServer(t *testing.T, edit func(*config, *session.Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	writeCredentials(t, dir)
	cfg := testConfig()
	scfg := session.Config{Issuer: "https://login.test", Audience: "impo-backend", TTL: time.Hour,
		Leeway: 30 * time.Second, KeysSecret: "session-keys"}
	if edit != nil {
		edit(&cfg, &scfg)
	}
	clk := testclock.New(time.Now())
	src := secrets.Dir{Path: dir}
	st := store.NewMemory(clk.Now)
	ts := &testServer{dir: dir, clock: clk}
	ts.server = newServer(cfg, &platform.Platform{Secrets: src, Store: st}, session.NewAuthority(scfg, src, st, clk.Now), clk.Now)
	inner := ts.authn.Matches
	ts.authn.Matches = func(ctx context.Context, h password.Hashed, pw []byte) (bool, error) {
		ts.hashes.Add(1)
		if h.Fast() {
			ts.fast.Add(1)
		}
		return inner(ctx, h, pw)
	}
	ts.http = ts.routes()
	return ts
}

type response struct {
	Status int
	Header http.Header
	Body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

func (ts *testServer) do(method, path, contentType, body string, header ...string) response {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	ts.http.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return response{rec.Code, rec.Result().Header, string(b)}
}

// loginJSON is a JSON login through pwClient, registered with the
// password grant.
func loginJSON(user, pw string) string {
	b, _ := json.Marshal(map[string]string{"username": user, "password": pw, "client_id": pwClient})
	return string(b)
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

const (
	ctJSON = "application/json"
	ctForm = "application/x-www-form-urlencoded"
)

func (ts *testServer) login(t *testing.T, user, pw string) string {
	t.Helper()
	resp := ts.do("POST", "/token", ctJSON, loginJSON(user, pw))
	if resp.Status != 200 {
		t.Fatalf("login %s: %d %s", user, resp.Status, resp.Body)
	}
	return resp.json(t)["access_token"].(string)
}

func TestToken_EveryWayToLogIn(t *testing.T) {
	ts := newTestServer(t, nil)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("pipeline:pipeline-client-secret"))
	tests := []struct {
		name     string
		path, ct string
		body     string
		header   []string
		wantSub  string
		wantKind string
	}{
		{"JSON", "/token", ctJSON, loginJSON("ana", "ana-secret-pw"), nil, "ana", "user"},
		{"JSON at root, name typed in capitals", "/", ctJSON, loginJSON("ANA", "ana-secret-pw"), nil, "ana", "user"},
		{"password grant", "/token", ctForm, form("grant_type", "password", "client_id", pwClient, "username", "ana", "password", "ana-secret-pw"), nil, "ana", "user"},
		{"client credentials in form", "/token", ctForm, form("grant_type", "client_credentials", "client_id", "pipeline", "client_secret", "pipeline-client-secret"), nil, "pipeline", "service"},
		{"client credentials by Basic", "/token", ctForm, form("grant_type", "client_credentials"), []string{"Authorization", basic}, "pipeline", "service"},
		{"unknown form parameters are ignored (RFC 6749 §3.2)", "/token", ctForm, form("grant_type", "client_credentials", "client_id", "pipeline", "client_secret", "pipeline-client-secret", "scope", "x"), nil, "pipeline", "service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do("POST", tt.path, tt.ct, tt.body, tt.header...)
			if resp.Status != 200 {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			body := resp.json(t)
			if body["token_type"] != "Bearer" || body["expires_in"] != 3600.0 {
				t.Errorf("response = %v", body)
			}
			c, err := ts.auth.Verifier.Verify(context.Background(), body["access_token"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != tt.wantSub || c.Kind != tt.wantKind || c.Issuer != "https://login.test" || c.Audience != "impo-backend" {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

func TestToken_UnknownUserLooksLikeWrongPassword(t *testing.T) {
	ts := newTestServer(t, nil)
	reference := ts.do("POST", "/token", ctJSON, loginJSON("ana", "wrong"))
	if reference.Status != 400 || reference.json(t)["error"] != "invalid_grant" {
		t.Fatalf("wrong password: %d %s; want 400 invalid_grant", reference.Status, reference.Body)
	}
	tests := []struct{ name, user, pw string }{
		{"unknown user", "nobody", "ana-secret-pw"},
		{"disabled account with its right password", "bea", "bea-secret-pw"},
		{"service account through the password grant", "pipeline", "pipeline-client-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, fast := ts.hashes.Load(), ts.fast.Load()
			got := ts.do("POST", "/token", ctJSON, loginJSON(tt.user, tt.pw))
			if got.Status != reference.Status || got.Body != reference.Body {
				t.Errorf("got %d %s; want the same as a wrong password: %d %s", got.Status, got.Body, reference.Status, reference.Body)
			}
			if ts.hashes.Load() != before+1 || ts.fast.Load() != fast {
				t.Error("not exactly one argon2id hash was computed: response time would tell the cases apart")
			}
		})
	}
}

func TestToken_BadClientCredentials(t *testing.T) {
	ts := newTestServer(t, nil)
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	// The references: a wrong secret, by Basic (with a challenge) and in
	// the form (without). Every other bad credential must answer the same
	// bytes, and cost the one digest a service's check costs.
	refBasic := ts.do("POST", "/token", ctForm, form("grant_type", "client_credentials"), "Authorization", basic("pipeline", "nope"))
	refForm := ts.do("POST", "/token", ctForm, form("grant_type", "client_credentials", "client_id", "pipeline", "client_secret", "nope"))
	for _, ref := range []response{refBasic, refForm} {
		if ref.Status != 401 || ref.json(t)["error"] != "invalid_client" {
			t.Fatalf("wrong secret: %d %s; want 401 invalid_client", ref.Status, ref.Body)
		}
	}
	if refBasic.Header.Get("WWW-Authenticate") == "" || refForm.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("WWW-Authenticate: %q by Basic, %q in the form; want a challenge only by Basic",
			refBasic.Header.Get("WWW-Authenticate"), refForm.Header.Get("WWW-Authenticate"))
	}
	tests := []struct {
		name       string
		body       string
		header     []string
		want       response
		wantDigest bool // false: refused before any check
	}{
		{"unknown client by Basic", form("grant_type", "client_credentials"), []string{"Authorization", basic("ghost", "pipeline-client-secret")}, refBasic, true},
		{"unknown client in form", form("grant_type", "client_credentials", "client_id", "ghost", "client_secret", "x"), nil, refForm, true},
		{"disabled client with its right secret", form("grant_type", "client_credentials"), []string{"Authorization", basic("retired", "retired-client-secret")}, refBasic, true},
		{"a person through client credentials", form("grant_type", "client_credentials"), []string{"Authorization", basic("ana", "ana-secret-pw")}, refBasic, true},
		{"Basic that is not base64", form("grant_type", "client_credentials"), []string{"Authorization", "Basic !!!"}, refBasic, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hashes, fast := ts.hashes.Load(), ts.fast.Load()
			resp := ts.do("POST", "/token", ctForm, tt.body, tt.header...)
			challenge := resp.Header.Get("WWW-Authenticate")
			if resp.Status != 401 || resp.json(t)["error"] != "invalid_client" || challenge != tt.want.Header.Get("WWW-Authenticate") {
				t.Fatalf("got %d %s, WWW-Authenticate %q; want 401 invalid_client, WWW-Authenticate %q",
					resp.Status, resp.Body, challenge, tt.want.Header.Get("WWW-Authenticate"))
			}
			if !tt.wantDigest {
				return
			}
			if resp.Body != tt.want.Body {
				t.Errorf("got %s; want the same as a wrong secret: %s", resp.Body, tt.want.Body)
			}
			if ts.hashes.Load() != hashes+1 || ts.fast.Load() != fast+1 {
				t.Errorf("checks: %d, of which digests %d; want one digest, as a wrong secret costs",
					ts.hashes.Load()-hashes, ts.fast.Load()-fast)
			}
		})
	}
}

// A request past the queue of hashes waiting for room is refused at once
// with 503 and Retry-After, by the real limiter; a service's digest does
// not wait behind people's hashes at all.
func TestToken_PastTheHashQueueIs503AtOnce(t *testing.T) {
	ts := newTestServer(t, func(c *config, _ *session.Config) {
		c.HashConcurrency, c.HashQueue, c.HashWait = 1, 0, time.Hour
	})
	// The one slot is taken, as by a long hash. Were the request queued,
	// it would wait the hour and this test would never end.
	release, err := ts.limiter.Acquire(context.Background(), password.Default)
	if err != nil {
		t.Fatal(err)
	}
	r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw"))
	if r.Status != 503 || r.Header.Get("Retry-After") != "1" || !strings.Contains(r.Body, "too many logins at once") {
		t.Fatalf("a login past the queue: %d %v %s; want 503 with Retry-After: 1", r.Status, r.Header, r.Body)
	}
	svc := ts.do("POST", "/token", ctForm, form("grant_type", "client_credentials", "client_id", "pipeline", "client_secret", "pipeline-client-secret"))
	if svc.Status != 200 {
		t.Fatalf("a service while people's hashes fill the limiter: %d %s; want 200", svc.Status, svc.Body)
	}
	release()
	ts.login(t, "ana", "ana-secret-pw")
}

func TestToken_BruteForceStopsBeforeHashing(t *testing.T) {
	ts := newTestServer(t, nil)
	const attempts = 40
	var locked response
	var wg sync.WaitGroup
	results := make(chan response, attempts)
	for i := range attempts {
		wg.Go(func() { results <- ts.do("POST", "/token", ctJSON, loginJSON("ana", "guess"+strconv.Itoa(i))) })
	}
	wg.Wait()
	close(results)
	counts := map[int]int{}
	for r := range results {
		counts[r.Status]++
		if r.Status == 429 {
			locked = r
		}
	}
	if h := ts.hashes.Load(); h != 5 {
		t.Errorf("%d guesses computed %d hashes, want the threshold, 5", attempts, h)
	}
	if counts[400] != 5 || counts[429] != attempts-5 {
		t.Errorf("statuses = %v, want 5×400 and %d×429", counts, attempts-5)
	}
	if ra, _ := strconv.Atoi(locked.Header.Get("Retry-After")); ra < 1 || ra > 30 {
		t.Errorf("Retry-After = %q, want 1..30 seconds", locked.Header.Get("Retry-After"))
	}
	// The right password is refused too while locked, without a hash.
	before := ts.hashes.Load()
	if r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw")); r.Status != 429 {
		t.Errorf("right password while locked: %d, want 429", r.Status)
	}
	if ts.hashes.Load() != before {
		t.Error("a locked account still reached the hash")
	}
	// Once the lock-out ends the owner gets in.
	ts.clock.Advance(31 * time.Second)
	ts.login(t, "ana", "ana-secret-pw")
}

func TestToken_AddressLimitHonoursTrustedHops(t *testing.T) {
	ts := newTestServer(t, func(c *config, _ *session.Config) {
		c.PerAddress.Threshold = 3
		c.TrustedHops = 1
	})
	// The client forges the left part of X-Forwarded-For; the proxy's
	// entry (rightmost) is what counts.
	for i := range 3 {
		xff := "203.0.113." + strconv.Itoa(i) + ", 198.51.100.7"
		ts.do("POST", "/token", ctJSON, loginJSON("user"+strconv.Itoa(i), "x"), "X-Forwarded-For", xff)
	}
	r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw"), "X-Forwarded-For", "203.0.113.99, 198.51.100.7")
	if r.Status != 429 {
		t.Fatalf("4th attempt from one address: %d, want 429", r.Status)
	}
	if r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw"), "X-Forwarded-For", "198.51.100.8"); r.Status != 200 {
		t.Fatalf("another address: %d %s, want 200", r.Status, r.Body)
	}
}

func TestToken_BusyHashingIs503AndCountsNothing(t *testing.T) {
	ts := newTestServer(t, func(c *config, _ *session.Config) { c.HashWait = 10 * time.Millisecond })
	counting := ts.authn.Matches
	ts.authn.Matches = func(context.Context, password.Hashed, []byte) (bool, error) { return false, password.ErrBusy }
	for range 10 {
		r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "x"))
		if r.Status != 503 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("busy: %d %v, want 503 with Retry-After", r.Status, r.Header)
		}
	}
	ts.authn.Matches = counting
	ts.login(t, "ana", "ana-secret-pw") // ten busy answers locked nothing
}

func TestToken_BadInput(t *testing.T) {
	ts := newTestServer(t, nil)
	tests := []struct {
		name       string
		method, ct string
		body       string
		wantStatus int
		wantCode   string
		wantDetail string
	}{
		{"GET", "GET", "", "", 405, "invalid_request", "method GET is not allowed"},
		{"no content type", "POST", "", loginJSON("ana", "x"), 415, "invalid_request", "Content-Type"},
		{"text/plain", "POST", "text/plain", loginJSON("ana", "x"), 415, "invalid_request", "Content-Type"},
		{"latin-1 charset", "POST", "application/json; charset=iso-8859-1", loginJSON("ana", "x"), 415, "invalid_request", "UTF-8"},
		{"oversized", "POST", ctJSON, `{"username":"` + strings.Repeat("a", maxBody) + `"}`, 413, "invalid_request", "larger than"},
		{"malformed JSON", "POST", ctJSON, `{"username":`, 400, "invalid_request", "invalid JSON body"},
		{"unknown field", "POST", ctJSON, `{"username":"ana","password":"x","role":"admin"}`, 400, "invalid_request", `unknown field "role"`},
		{"duplicate key", "POST", ctJSON, `{"username":"ana","username":"ops","password":"x"}`, 400, "invalid_request", "duplicate key"},
		{"empty password", "POST", ctJSON, loginJSON("ana", ""), 400, "invalid_request", "username and password are required"},
		{"missing username", "POST", ctJSON, `{"password":"x"}`, 400, "invalid_request", "required"},
		{"invalid UTF-8", "POST", ctJSON, "{\"username\":\"an\xffa\",\"password\":\"x\"}", 400, "invalid_request", "UTF-8"},
		{"array body", "POST", ctJSON, `[]`, 400, "invalid_request", "invalid JSON body"},
		{"no grant_type", "POST", ctForm, form("username", "ana"), 400, "invalid_request", "grant_type is required"},
		{"unsupported grant", "POST", ctForm, form("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), 400, "unsupported_grant_type", "authorization_code, refresh_token, client_credentials or password"},
		{"repeated form parameter", "POST", ctForm, "grant_type=password&client_id=legacy&username=ana&username=ops&password=x", 400, "invalid_request", "more than once"},
		{"form invalid UTF-8", "POST", ctForm, "grant_type=password&client_id=legacy&username=%FF&password=x", 400, "invalid_request", "UTF-8"},
		{"malformed form", "POST", ctForm, "grant_type=%zz", 400, "invalid_request", "malformed form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.hashes.Load()
			r := ts.do(tt.method, "/token", tt.ct, tt.body)
			body := r.json(t)
			if r.Status != tt.wantStatus || body["error"] != tt.wantCode || !strings.Contains(body["error_description"].(string), tt.wantDetail) {
				t.Fatalf("got %d %s; want %d %s mentioning %q", r.Status, r.Body, tt.wantStatus, tt.wantCode, tt.wantDetail)
			}
			if tt.wantStatus == 405 && r.Header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", r.Header.Get("Allow"))
			}
			if ts.hashes.Load() != before {
				t.Error("bad input reached the hash")
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, path := range []string{"/jwks", "/.well-known/jwks.json"} {
		r := ts.do("GET", path, "", "")
		if r.Status != 200 || r.Header.Get("Content-Type") != "application/jwk-set+json" || !strings.Contains(r.Header.Get("Cache-Control"), "max-age") {
			t.Fatalf("GET %s: %d %v", path, r.Status, r.Header)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(r.Body), &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() {
			t.Fatalf("GET %s: %s (%v)", path, r.Body, err)
		}
		if strings.Contains(r.Body, `"d"`) {
			t.Fatalf("GET %s publishes a private key", path)
		}
	}
	if r := ts.do("POST", "/jwks", ctJSON, "{}"); r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /jwks: %d %v", r.Status, r.Header)
	}
	if r := ts.do("GET", "/nope", "", ""); r.Status != 404 || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("GET /nope: %d %v", r.Status, r.Header)
	}
}

func TestIntrospect(t *testing.T) {
	ts := newTestServer(t, nil)
	ana := ts.login(t, "ana", "ana-secret-pw")
	ops := ts.login(t, "ops", "ops-secret-pw")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("pipeline:pipeline-client-secret"))

	r := ts.do("POST", "/introspect", ctForm, form("token", ana), "Authorization", "Bearer "+ops)
	if r.Status != 200 {
		t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	got := r.json(t)
	for _, k := range []string{"exp", "iat", "jti", "iss"} {
		delete(got, k)
	}
	want := map[string]any{"active": true, "sub": "ana", "client_id": pwClient, "aud": "impo-backend",
		"token_type": "Bearer", "kind": "user", "roles": []any{"editor"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("introspection (-want +got):\n%s", diff)
	}

	tests := []struct {
		name       string
		body       string
		header     []string
		wantStatus int
		wantBody   string
	}{
		{"garbage token", form("token", "garbage"), []string{"Authorization", "Bearer " + ops}, 200, `{"active":false}`},
		{"client credentials caller", form("token", "garbage"), []string{"Authorization", basic}, 200, `{"active":false}`},
		{"no caller credentials", form("token", ana), nil, 401, ""},
		{"bad bearer", form("token", ana), []string{"Authorization", "Bearer " + ana + "x"}, 401, ""},
		{"no token", form(), []string{"Authorization", "Bearer " + ops}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do("POST", "/introspect", ctForm, tt.body, tt.header...)
			if r.Status != tt.wantStatus || (tt.wantBody != "" && strings.TrimSpace(r.Body) != tt.wantBody) {
				t.Fatalf("got %d %s; want %d %s", r.Status, r.Body, tt.wantStatus, tt.wantBody)
			}
			if r.Status == 401 && !strings.Contains(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %v", r.Header)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	ts := newTestServer(t, nil)
	ana := ts.login(t, "ana", "ana-secret-pw")
	ana2 := ts.login(t, "ana", "ana-secret-pw")
	ops := ts.login(t, "ops", "ops-secret-pw")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("pipeline:pipeline-client-secret"))
	active := func(token string) bool {
		r := ts.do("POST", "/introspect", ctForm, form("token", token), "Authorization", "Bearer "+ops)
		return r.json(t)["active"] == true
	}

	if r := ts.do("POST", "/revoke", ctForm, form("token", ana), "Authorization", basic); r.Status != 403 {
		t.Fatalf("another account revoking ana's token: %d %s, want 403", r.Status, r.Body)
	}
	if r := ts.do("POST", "/revoke", ctForm, form("token", ana), "Authorization", "Bearer "+ana); r.Status != 200 {
		t.Fatalf("ana revoking her own token: %d %s", r.Status, r.Body)
	}
	if active(ana) {
		t.Fatal("revoked token still active")
	}
	if r := ts.do("POST", "/revoke", ctForm, form("token", ana2), "Authorization", "Bearer "+ops); r.Status != 200 {
		t.Fatalf("session-admin revoking ana's token: %d %s", r.Status, r.Body)
	}
	if active(ana2) {
		t.Fatal("token revoked by a session-admin still active")
	}
	if r := ts.do("POST", "/revoke", ctForm, form("token", "not-a-token"), "Authorization", "Bearer "+ops); r.Status != 200 {
		t.Fatalf("revoking an invalid token: %d, want 200 (RFC 7009 §2.2)", r.Status)
	}
	if r := ts.do("POST", "/revoke", ctForm, form("token", ops)); r.Status != 401 {
		t.Fatalf("revoke without credentials: %d, want 401", r.Status)
	}
}

func TestCORS(t *testing.T) {
	ts := newTestServer(t, nil)
	pre := func(origin string) response {
		return ts.do("OPTIONS", "/token", "", "", "Origin", origin, "Access-Control-Request-Method", "POST")
	}
	if r := pre("https://portal.impo.test"); r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://portal.impo.test" {
		t.Fatalf("preflight from an allowed origin: %d %v", r.Status, r.Header)
	}
	if r := pre("https://evil.example"); r.Status != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", r.Status, r.Header)
	}
	r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw"), "Origin", "https://evil.example")
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("a response to an unlisted origin carries Access-Control-Allow-Origin")
	}
}

const (
	portal = "https://portal.impo.test" // in testConfig's CORSOrigins
	evil   = "https://evil.example"
)

// TestCookie_LoginCSRFRefused: a foreign page posts a login form to
// /token; were it accepted, the visitor's browser would hold a session of
// the attacker's account (login CSRF). It is refused before any hash or
// failure count, and never sets the cookie.
func TestCookie_LoginCSRFRefused(t *testing.T) {
	ts := newTestServer(t, func(_ *config, s *session.Config) { s.Cookie = "impo_session" })
	attacks := []struct {
		name   string
		ct     string
		body   string
		header []string
	}{
		{"cross-site form", ctForm, form("grant_type", "password", "client_id", pwClient, "username", "ana", "password", "ana-secret-pw"),
			[]string{"Origin", evil, "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"}},
		{"sibling subdomain's fetch", ctJSON, loginJSON("ana", "ana-secret-pw"),
			[]string{"Origin", "https://evil.impo.test", "Sec-Fetch-Site", "same-site"}},
		{"sandboxed frame", ctForm, form("grant_type", "password", "client_id", pwClient, "username", "ana", "password", "ana-secret-pw"),
			[]string{"Origin", "null"}},
		{"client credentials from a foreign page", ctForm, form("grant_type", "client_credentials", "client_id", "pipeline", "client_secret", "pipeline-client-secret"),
			[]string{"Origin", evil}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			before := ts.hashes.Load()
			r := ts.do("POST", "/token", a.ct, a.body, a.header...)
			if r.Status != 403 || r.json(t)["error"] != "unauthorized_client" {
				t.Fatalf("login from a foreign page: %d %s, want 403 unauthorized_client", r.Status, r.Body)
			}
			if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Fatalf("a refused login set %v", c)
			}
			if strings.Contains(r.Body, "eyJ") {
				t.Fatalf("a refused login answered a token: %s", r.Body)
			}
			if ts.hashes.Load() != before {
				t.Fatal("a login from a foreign page cost a password hash")
			}
		})
	}
}

// TestCookie_BrowserLoginBodyHasNoToken: in cookie mode the session of a
// person's browser lives only in the HttpOnly cookie; a token in the body
// would hand it to every script on the page. Callers outside a browser
// (no Origin, no Fetch Metadata) still get it in the body, and no cookie.
func TestCookie_BrowserLoginBodyHasNoToken(t *testing.T) {
	ts := newTestServer(t, func(_ *config, s *session.Config) { s.Cookie = "impo_session" })
	browsers := []struct {
		name   string
		ct     string
		body   string
		header []string
	}{
		{"JSON from the listed portal", ctJSON, loginJSON("ana", "ana-secret-pw"), []string{"Origin", portal, "Sec-Fetch-Site", "same-site"}},
		{"password form from a same-origin page", ctForm, form("grant_type", "password", "client_id", pwClient, "username", "ana", "password", "ana-secret-pw"),
			[]string{"Origin", "https://api.impo.test", "Sec-Fetch-Site", "same-origin"}},
	}
	for _, b := range browsers {
		t.Run(b.name, func(t *testing.T) {
			r := ts.do("POST", "/token", b.ct, b.body, b.header...)
			if r.Status != 200 {
				t.Fatalf("browser login: %d %s", r.Status, r.Body)
			}
			body := r.json(t)
			if _, ok := body["access_token"]; ok || strings.Contains(r.Body, "eyJ") {
				t.Fatalf("browser login body carries the token: %s", r.Body)
			}
			if body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) {
				t.Errorf("browser login body = %s, want token_type and expires_in", r.Body)
			}
			c := sessionCookie(r)
			if c == nil {
				t.Fatalf("no session cookie in %v", r.Header.Values("Set-Cookie"))
			}
			if c.Name != "impo_session" || c.Value == "" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.MaxAge != 3600 || c.Path != "/" {
				t.Errorf("cookie = %+v", c)
			}
		})
	}
	scripts := []struct {
		name string
		ct   string
		body string
	}{
		{"a person's script", ctJSON, loginJSON("ana", "ana-secret-pw")},
		{"a service", ctForm, form("grant_type", "client_credentials", "client_id", "pipeline", "client_secret", "pipeline-client-secret")},
	}
	for _, s := range scripts {
		t.Run(s.name, func(t *testing.T) {
			r := ts.do("POST", "/token", s.ct, s.body)
			if tok, _ := r.json(t)["access_token"].(string); r.Status != 200 || tok == "" {
				t.Fatalf("login outside a browser: %d %s, want the token in the body", r.Status, r.Body)
			}
			if c := sessionCookie(r); c != nil {
				t.Errorf("login outside a browser set the session cookie %v", c)
			}
		})
	}
}

// TestCookie_CSRFOnRevokeAndIntrospectRefused: a foreign page posts to
// /revoke; the browser adds the session cookie, so without an origin check
// the page would log its visitor out (and /introspect would answer it).
func TestCookie_CSRFOnRevokeAndIntrospectRefused(t *testing.T) {
	ts := newTestServer(t, func(_ *config, s *session.Config) { s.Cookie = "impo_session" })
	r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw"), "Origin", portal)
	session := sessionCookie(r)
	if r.Status != 200 || session == nil {
		t.Fatalf("login: %d %v", r.Status, r.Header.Values("Set-Cookie"))
	}
	tok := session.Value
	jar := "impo_session=" + tok
	ops := ts.login(t, "ops", "ops-secret-pw")
	active := func() bool {
		r := ts.do("POST", "/introspect", ctForm, form("token", tok), "Authorization", "Bearer "+ops)
		if r.Status != 200 {
			t.Fatalf("introspect: %d %s", r.Status, r.Body)
		}
		return r.json(t)["active"] == true
	}

	for _, h := range [][]string{
		{"Origin", evil, "Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.impo.test", "Sec-Fetch-Site", "same-site"},
		{}, // no Origin: no browser sends a POST without one
	} {
		r := ts.do("POST", "/revoke", ctForm, form("token", tok), append([]string{"Cookie", jar}, h...)...)
		if r.Status != 403 || r.json(t)["error"] != "unauthorized_client" || len(r.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("revoke by cookie with %v: %d %s %v, want 403", h, r.Status, r.Body, r.Header.Values("Set-Cookie"))
		}
		if !active() {
			t.Fatalf("a refused cross-site revoke (%v) revoked the session", h)
		}
		r = ts.do("POST", "/introspect", ctForm, form("token", tok), append([]string{"Cookie", jar}, h...)...)
		if r.Status != 403 {
			t.Fatalf("introspect by cookie with %v: %d %s, want 403", h, r.Status, r.Body)
		}
	}

	// From the portal, the cookie alone (the page cannot read its token)
	// revokes its own session, and the answer clears it: logout.
	r = ts.do("POST", "/revoke", ctForm, "", "Cookie", jar, "Origin", portal, "Sec-Fetch-Site", "same-site")
	cleared := (&http.Response{Header: r.Header}).Cookies()
	if r.Status != 200 || len(cleared) != 1 || cleared[0].MaxAge >= 0 {
		t.Fatalf("logout from the portal: %d %s, cookies %v", r.Status, r.Body, cleared)
	}
	if active() {
		t.Fatal("the session outlived its logout")
	}
}

func TestMisconfiguredSecretsAre500WithoutDetails(t *testing.T) {
	ts := newTestServer(t, nil)
	os.Remove(filepath.Join(ts.dir, "accounts"))
	r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw"))
	if r.Status != 500 || strings.Contains(r.Body, ts.dir) || !strings.Contains(r.Body, "misconfigured") {
		t.Fatalf("missing accounts secret: %d %s", r.Status, r.Body)
	}
	os.WriteFile(filepath.Join(ts.dir, "session-keys"), []byte("{}"), 0o600)
	if r := ts.do("GET", "/jwks", "", ""); r.Status != 500 {
		t.Fatalf("malformed keys: %d %s", r.Status, r.Body)
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	log := logtest.Capture(t)

	ts := newTestServer(t, nil)
	token := ts.login(t, "ana", "ana-secret-pw")
	ts.do("POST", "/token", ctJSON, loginJSON("ana", "wrong-guess-pw"))
	ts.do("POST", "/token", ctJSON, loginJSON("ana-secret-pw", "typed-into-name"))
	ts.do("POST", "/token", ctForm, form("grant_type", "client_credentials", "client_id", "pipeline", "client_secret", "pipeline-client-secret"))
	ts.do("POST", "/revoke", ctForm, form("token", token), "Authorization", "Bearer "+token)
	keys, _ := os.ReadFile(filepath.Join(ts.dir, "session-keys"))
	var set struct{ Keys []struct{ D string } }
	json.Unmarshal(keys, &set)

	logs := log.String()
	if !strings.Contains(logs, "session issued") || !strings.Contains(logs, "login refused") {
		t.Fatalf("expected events missing from the log:\n%s", logs)
	}
	for _, secret := range []string{"ana-secret-pw", "wrong-guess-pw", "typed-into-name", "pipeline-client-secret", token, set.Keys[0].D} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains a secret %.12q…", secret)
		}
	}
}

func TestDevice_AKnownDeviceGetsInUnderAnAccountLock(t *testing.T) {
	ts := newTestServer(t, func(c *config, _ *session.Config) { c.TrustedHops = 1 })
	r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw"), "X-Forwarded-For", "192.0.2.10")
	var device *http.Cookie
	for _, k := range (&http.Response{Header: r.Header}).Cookies() {
		if k.Name == "impo_device" {
			device = k
		}
	}
	if r.Status != 200 || device == nil || !device.HttpOnly || !device.Secure || device.SameSite != http.SameSiteStrictMode {
		t.Fatalf("a person's login: %d, device cookie %+v", r.Status, device)
	}
	// An attacker guesses from twenty addresses: the account is locked.
	for i := range 20 {
		ts.do("POST", "/token", ctJSON, loginJSON("ana", "guess"), "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
	}
	if r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw"), "X-Forwarded-For", "192.0.2.11"); r.Status != 429 {
		t.Fatalf("ana from a new device under the lock: %d, want 429", r.Status)
	}
	cookie := "impo_device=" + device.Value
	if r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw"), "X-Forwarded-For", "192.0.2.11", "Cookie", cookie); r.Status != 200 {
		t.Fatalf("ana from her known device under the lock: %d %s, want 200", r.Status, r.Body)
	}
	// A sibling subdomain (www.impo.com.uy beside auth.impo.com.uy) can
	// set a cookie of the same name for the parent domain, with a longer
	// path, which the browser then sends first: it used to hide the real
	// one, and an attacker who made ana visit such a page could then lock
	// her out with twenty guesses. Every cookie of the name is tried.
	tossed := "impo_device=garbage; impo_device=" + device.Value
	if r := ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw"), "X-Forwarded-For", "192.0.2.11", "Cookie", tossed); r.Status != 200 {
		t.Fatalf("ana from her known device, its cookie behind a tossed one: %d %s, want 200", r.Status, r.Body)
	}
	// The device token is ana's: it opens nothing for another account.
	ts.do("POST", "/token", ctJSON, loginJSON("ops", "x"), "X-Forwarded-For", "192.0.2.12")
	if _, err := ts.auth.Issuer.VerifyDevice(context.Background(), device.Value, "ops"); err == nil {
		t.Fatal("ana's device token verifies for ops")
	}
}

func TestService_NeverLockedByGuessesOfItsClientID(t *testing.T) {
	ts := newTestServer(t, func(c *config, _ *session.Config) { c.TrustedHops = 1 })
	for i := range 30 {
		ts.do("POST", "/token", ctForm, form("grant_type", "client_credentials", "client_id", "pipeline", "client_secret", "guess"),
			"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
	}
	r := ts.do("POST", "/token", ctForm, form("grant_type", "client_credentials", "client_id", "pipeline", "client_secret", "pipeline-client-secret"),
		"X-Forwarded-For", "192.0.2.77")
	if r.Status != 200 {
		t.Fatalf("the pipeline after 30 guesses of its client_id: %d %s, want 200", r.Status, r.Body)
	}
}

// sessionCookie is the session cookie r sets, or nil; a person's login
// also sets the device cookie, which is TestDevice's.
func sessionCookie(r response) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "impo_session" {
			return c
		}
	}
	return nil
}

func TestToken_ConcurrentCorrectLoginsAreAllAdmitted(t *testing.T) {
	ts := newTestServer(t, nil)
	// Twice the threshold of correct logins of one account from one
	// address at once, as several workers of a service starting together:
	// attempts in flight are not failures.
	const logins = 10
	var wg sync.WaitGroup
	statuses := make(chan int, logins)
	for range logins {
		wg.Go(func() { statuses <- ts.do("POST", "/token", ctJSON, loginJSON("ana", "ana-secret-pw")).Status })
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 200 {
			t.Fatalf("a correct login among %d at once: %d, want 200", logins, st)
		}
	}
	if h := ts.hashes.Load(); h != logins {
		t.Errorf("%d logins computed %d hashes", logins, h)
	}
}
