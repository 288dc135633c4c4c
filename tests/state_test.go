package tests

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"impo.com.uy/copetes/backend/internal/devcreds"
	"impo.com.uy/copetes/backend/internal/emulators"
	"impo.com.uy/copetes/backend/shared/store"
)

// firestoreEnv is the environment of a process whose shared state lives in
// the Firestore emulator, in a collection of the test's own. It turns off
// the "not revoked" cache: how long that cache may delay a revocation is
// tested with a fake clock in shared/session; here a revocation must reach
// the other instance through the store alone, at once.
func firestoreEnv(t *testing.T, dir string) []string {
	host := emulators.Firestore(t).Host
	return []string{
		"CREDENTIALS_DIR=" + dir, "SECRETS_SOURCE=dir", "GOOGLE_CLOUD_PROJECT=" + e2eProject,
		"STATE_STORE=firestore", "FIRESTORE_EMULATOR_HOST=" + host,
		"STATE_COLLECTION=" + uniqueName(t),
		"LOGIN_MAX_FAILURES=3", "REVOCATION_CACHE_TTL=0s", "GETTOKEN_SOURCE=selfsigned", oneIssuer,
		"GETTOKEN_POLICY=" + `{"roles":{"editor":{"scopes":["` + storageRead + `"]}}}`,
	}
}

func TestTwoInstances_ShareFailuresAndRevocations(t *testing.T) {
	dir, pw, _ := setup(t)
	env := firestoreEnv(t, dir)
	a, b := startLocal(t, env...), startLocal(t, env...)
	login := func(s *localServer, password string) (int, map[string]any) {
		return post(t, s.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"`+password+`"}`)
	}

	// Failures made on one instance count on the other.
	login(a, "wrong-1")
	login(a, "wrong-2")
	login(b, "wrong-3") // the third: the account is locked everywhere
	if st, body := login(a, pw); st != 429 {
		t.Fatalf("after 3 failures across two instances, the right password on the first: %d %v; want 429", st, body)
	}

	// A token revoked through one instance is refused by the other at once
	// (no cache here, see firestoreEnv).
	// A fresh account and collection: ana is locked above.
	dir2, pw2, _ := setup(t)
	env2 := firestoreEnv(t, dir2)
	a, b = startLocal(t, env2...), startLocal(t, env2...)
	st, body := login(a, pw2)
	if st != 200 {
		t.Fatalf("login: %d %v", st, body)
	}
	token := body["access_token"].(string)
	getToken := func(s *localServer) int {
		st, _ := post(t, s.URL+"/GetToken", "application/json", `{"scopes":["`+storageRead+`"]}`, "Authorization", "Bearer "+token)
		return st
	}
	if st := getToken(b); st != 200 {
		t.Fatalf("GetToken on the second instance with a token from the first: %d", st)
	}
	if st, _ := post(t, a.URL+"/Login/revoke", "application/x-www-form-urlencoded", url.Values{"token": {token}}.Encode(),
		"Authorization", "Bearer "+token); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	if st := getToken(b); st != 401 {
		t.Fatalf("the second instance, without a cache, still accepts a token revoked through the first: %d", st)
	}
}

func TestTwoInstances_HandleAMessageOnce(t *testing.T) {
	host := emulators.PubSub(t).Host
	ps := newPubSub(t, host)
	env := append(firestoreEnv(t, t.TempDir()), "PUBSUB_EMULATOR_HOST="+host,
		"VALIDATE_VALID_TOPIC="+ps.topic("valid"), "VALIDATE_INVALID_TOPIC="+ps.topic("invalid"))
	a, b := startLocal(t, env...), startLocal(t, env...)
	m := ps.publish(t, `{"document_id":"ley-9","type":"ley","number":"9","date":"2024-05-02","text":"Artículo 1."}`)
	if st := deliverBinary(t, a.URL+"/Validate", pubsubType, m, ps.eventarcData(m)); st/100 != 2 {
		t.Fatalf("delivery to the first instance: %d", st)
	}
	if st := deliverBinary(t, b.URL+"/Validate", pubsubType, m, ps.eventarcData(m)); st/100 != 2 {
		t.Fatalf("redelivery to the second instance: %d", st)
	}
	if got := ps.pullAll(t, "valid", 1); len(got) != 1 {
		t.Fatalf("two instances published the message %d times, want once", len(got))
	}
}

func TestStoreOutage_FailsClosed(t *testing.T) {
	dir, pw, _ := setup(t)
	// A healthy instance (memory store) signs a token with the same keys.
	healthy := startLocal(t, "CREDENTIALS_DIR="+dir, oneIssuer)
	_, body := post(t, healthy.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"`+pw+`"}`)
	token := body["access_token"].(string)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()
	down := startLocal(t, "CREDENTIALS_DIR="+dir, oneIssuer, "SECRETS_SOURCE=dir", "GOOGLE_CLOUD_PROJECT="+e2eProject,
		"STATE_STORE=firestore", "FIRESTORE_EMULATOR_HOST="+closed, "STATE_STORE_TIMEOUT=500ms", "GETTOKEN_SOURCE=selfsigned",
		"GETTOKEN_POLICY="+`{"roles":{"editor":{"scopes":["`+storageRead+`"]}}}`)

	checks := []struct {
		name, path, body string
		header           []string
		wantDetail       string
	}{
		{"login with the right password", "/Login/token", `{"client_id":"impo-web-dev","username":"ana","password":"` + pw + `"}`, nil, "cannot check login attempts"},
		{"GetToken with a valid session", "/GetToken", `{"scopes":["` + storageRead + `"]}`, []string{"Authorization", "Bearer " + token}, "cannot verify session tokens"},
		{"ValidateHTTP with a valid session", "/ValidateHTTP", `{}`, []string{"Authorization", "Bearer " + token}, "cannot verify session tokens"},
	}
	for _, c := range checks {
		st, body := post(t, down.URL+c.path, "application/json", c.body, c.header...)
		detail, _ := body["detail"].(string)
		if d, ok := body["error_description"].(string); ok {
			detail = d
		}
		if st != 503 || !strings.Contains(detail, c.wantDetail) || body["access_token"] != nil {
			t.Errorf("%s with the store down: %d %v; want 503 %q", c.name, st, body, c.wantDetail)
		}
	}
	ps := &pubsubSetup{prefix: "outage"}
	m := &pubsub.Message{ID: "outage-1", Data: []byte(`{}`), PublishTime: time.Now()}
	if st := deliverBinary(t, down.URL+"/Validate", pubsubType, m, ps.eventarcData(m)); st/100 != 5 {
		t.Errorf("Validate with the store down: %d, want a 5xx so that Pub/Sub retries", st)
	}
}

// TestOwnDatabases_EachFunctionWritesOnlyItsOwnState runs login and
// gettoken as deployed: each with its own Firestore database, and the
// revocations in a database of their own that login writes and gettoken
// only reads. What each wrote is then read back, database by database.
func TestOwnDatabases_EachFunctionWritesOnlyItsOwnState(t *testing.T) {
	dir, pw, _ := setup(t)
	env := firestoreEnv(t, dir)
	collection := ""
	for _, e := range env {
		if c, ok := strings.CutPrefix(e, "STATE_COLLECTION="); ok {
			collection = c
		}
	}
	login := startLocal(t, append(env, "FIRESTORE_DATABASE=login-state", "FIRESTORE_SESSIONS_DATABASE=sessions")...)
	gettoken := startLocal(t, append(env, "FIRESTORE_DATABASE=gettoken-state", "FIRESTORE_SESSIONS_DATABASE=sessions")...)

	post(t, login.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"wrong"}`)
	st, body := post(t, login.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"`+pw+`"}`)
	if st != 200 {
		t.Fatalf("login: %d %v", st, body)
	}
	token := body["access_token"].(string)
	getToken := func() int {
		st, _ := post(t, gettoken.URL+"/GetToken", "application/json", `{"scopes":["`+storageRead+`"]}`, "Authorization", "Bearer "+token)
		return st
	}
	if st := getToken(); st != 200 {
		t.Fatalf("GetToken: %d", st)
	}
	// A failure leaves an address count behind in login's database.
	post(t, login.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"wrong again"}`)
	if st, _ := post(t, login.URL+"/Login/revoke", "application/x-www-form-urlencoded", url.Values{"token": {token}}.Encode(),
		"Authorization", "Bearer "+token); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	if st := getToken(); st != 401 {
		t.Fatalf("gettoken, reading the sessions database, accepts a token revoked through login: %d", st)
	}

	t.Setenv("FIRESTORE_EMULATOR_HOST", emulators.Firestore(t).Host)
	prefixes := func(database string) []string {
		t.Helper()
		ctx := context.Background()
		c, err := firestore.NewClientWithDatabase(ctx, e2eProject, database)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		docs, err := c.Collection(collection).Documents(ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range docs {
			key, _ := url.PathUnescape(d.Ref.ID)
			key = strings.TrimPrefix(key, store.ShardedCounter("")) // a shard of a counter
			p, _, _ := strings.Cut(key, ":")
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		slices.Sort(out)
		return out
	}
	for database, want := range map[string][]string{
		"login-state":    {"fail", "pend"}, // failures, and attempts in flight (lockout)
		"sessions":       {"revoked"},
		"gettoken-state": {"rate"},
	} {
		if diff := cmp.Diff(want, prefixes(database)); diff != "" {
			t.Errorf("database %s holds (-want +got):\n%s", database, diff)
		}
	}
}

// TestTwoInstances_CodeAndRefreshCrossInstances: a code the hosted page
// of one instance issued is redeemed at another, refresh tokens rotate
// across them, and a replay seen by either revokes the family on both:
// codes and refresh families live in the shared store, not in a process.
func TestTwoInstances_CodeAndRefreshCrossInstances(t *testing.T) {
	dir, pw, _ := setup(t)
	env := firestoreEnv(t, dir)
	a := startLocal(t, env...)
	b := startLocal(t, env...) // the dev client was registered at a's address
	issuer := strings.TrimPrefix(oneIssuer, "LOGIN_ISSUER=")
	ctx := context.Background()
	conf := func(s *localServer) oauth2.Config {
		return oauth2.Config{
			ClientID:    devcreds.DevClient,
			Endpoint:    oauth2.Endpoint{AuthURL: s.URL + "/Login/authorize", TokenURL: s.URL + "/Login/token", AuthStyle: oauth2.AuthStyleInParams},
			RedirectURL: a.URL + "/example/callback",
			Scopes:      []string{"openid"},
		}
	}
	atA, atB := conf(a), conf(b)
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	code := codeFrom(t, authorizeAsBrowser(t, atA.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), "ana", pw),
		atA.RedirectURL, state, issuer)

	tok, err := atB.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("the code from a's page redeemed at b: %v", err)
	}
	expire := func(tk *oauth2.Token) *oauth2.Token {
		return &oauth2.Token{RefreshToken: tk.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
	}
	fresh, err := atA.TokenSource(ctx, expire(tok)).Token()
	if err != nil {
		t.Fatalf("b's refresh token rotated at a: %v", err)
	}
	if _, err := atA.Exchange(ctx, code, oauth2.VerifierOption(verifier)); grantError(err) != "invalid_grant" {
		t.Fatalf("the code again, at a: %v, want invalid_grant", err)
	}
	if _, err := atB.TokenSource(ctx, expire(fresh)).Token(); grantError(err) != "invalid_grant" {
		t.Errorf("after a replay at a, the family's newest refresh token at b: %v, want invalid_grant", err)
	}
	if status := getToken(t, b.URL, atB.Client(ctx, tok)); status != http.StatusUnauthorized {
		t.Errorf("after a replay at a, the code's access token at b's GetToken: %d, want 401", status)
	}
}
