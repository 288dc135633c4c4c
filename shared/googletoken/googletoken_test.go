package googletoken_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"impo.com.uy/copetes/backend/internal/googletest"
	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/googletoken"
)

const cloudPlatform = "https://www.googleapis.com/auth/cloud-platform"

func newKey(t *testing.T, tokenURI string) *googletoken.ServiceAccountKey {
	t.Helper()
	data, err := googletoken.NewServiceAccountKey("gettoken@impo-test.iam.gserviceaccount.com", tokenURI)
	if err != nil {
		t.Fatal(err)
	}
	key, err := googletoken.ParseKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func staticKey(k *googletoken.ServiceAccountKey) func(context.Context) (*googletoken.ServiceAccountKey, error) {
	return func(context.Context) (*googletoken.ServiceAccountKey, error) { return k, nil }
}

// checkHeader: what the key signs names the key by its id, as Google
// needs to find the public half, and says it is an RS256 JWT.
func checkHeader(t *testing.T, token string, key *googletoken.ServiceAccountKey) {
	t.Helper()
	sig, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("not an RS256 JWS: %v", err)
	}
	h := sig.Signatures[0].Protected
	if h.KeyID != key.KeyID || h.Algorithm != "RS256" || h.ExtraHeaders["typ"] != "JWT" {
		t.Errorf("header: kid %q, alg %q, typ %v; want kid %q, RS256, JWT", h.KeyID, h.Algorithm, h.ExtraHeaders["typ"], key.KeyID)
	}
}

func checkExpiry(t *testing.T, tok googletoken.Token, want time.Duration) {
	t.Helper()
	if left := time.Until(tok.Expiry); left < want-time.Minute || left > want+time.Minute {
		t.Errorf("token expires in %s, want about %s", left.Round(time.Second), want)
	}
}

func TestADC_AccessAndIDTokensFromTheMetadataServer(t *testing.T) {
	md := googletest.OnCloud(t)
	ctx := context.Background()
	tok, err := googletoken.ADC{}.Mint(ctx, googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloudPlatform}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.Value, "ya29.adc-") {
		t.Errorf("access token %q did not come from the metadata server", tok.Value)
	}
	checkExpiry(t, tok, time.Hour)
	if h, body := md.LastRequest(); h.Get("Metadata-Flavor") != "Google" || body["scopes"] != cloudPlatform {
		t.Errorf("metadata request: flavor %q, scopes %v", h.Get("Metadata-Flavor"), body["scopes"])
	}

	tok, err = googletoken.ADC{}.Mint(ctx, googletoken.Request{Kind: googletoken.ID, Audience: "https://validate.run.app"})
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := googletest.DecodeClaims(tok.Value)
	if claims["aud"] != "https://validate.run.app" {
		t.Errorf("ID token aud = %v", claims["aud"])
	}
	checkExpiry(t, tok, time.Hour)
}

func TestKey_JWTBearerExchangeAtTheKeysTokenURI(t *testing.T) {
	te := googletest.StartTokenEndpoint(t)
	key := newKey(t, te.URL)
	te.Trust(key.Email, key.PublicKey())
	src := googletoken.Key{Key: staticKey(key)}
	ctx := context.Background()

	tok, err := src.Mint(ctx, googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloudPlatform}})
	if err != nil {
		t.Fatal(err)
	}
	_, claims := te.LastRequest()
	if claims["iss"] != key.Email || claims["aud"] != te.URL || claims["scope"] != cloudPlatform {
		t.Errorf("assertion claims = %v", claims)
	}
	iat, _ := claims["iat"].(float64)
	if claims["sub"] != nil || claims["exp"] != iat+3600 || time.Since(time.Unix(int64(iat), 0)).Round(time.Second) < 10*time.Second {
		t.Errorf("assertion claims = %v, want no sub, iat 10 s back, exp an hour after iat", claims)
	}
	checkHeader(t, te.LastAssertion(), key)
	if !strings.HasPrefix(tok.Value, "ya29.key-") {
		t.Errorf("token = %q", tok.Value)
	}
	checkExpiry(t, tok, time.Hour)

	tok, err = src.Mint(ctx, googletoken.Request{Kind: googletoken.ID, Audience: "https://validate.run.app"})
	if err != nil {
		t.Fatal(err)
	}
	if _, claims := te.LastRequest(); claims["target_audience"] != "https://validate.run.app" || claims["scope"] != nil {
		t.Errorf("ID assertion claims = %v", claims)
	}
	checkExpiry(t, tok, time.Hour)
}

func TestKey_RejectedAssertionIsAPermanentUpstreamError(t *testing.T) {
	te := googletest.StartTokenEndpoint(t)
	key := newKey(t, te.URL)
	other := newKey(t, te.URL)
	te.Trust(key.Email, other.PublicKey()) // the endpoint knows another key
	_, err := googletoken.Key{Key: staticKey(key)}.Mint(context.Background(), googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloudPlatform}})
	var ue *googletoken.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 400 || ue.Temporary {
		t.Fatalf("Mint with a key the endpoint does not trust: %v, want a permanent 400 UpstreamError", err)
	}
}

func TestKey_TokenEndpointOutageIsTemporary(t *testing.T) {
	te := googletest.StartTokenEndpoint(t)
	key := newKey(t, te.URL)
	te.Trust(key.Email, key.PublicKey())
	te.Fail(503)
	_, err := googletoken.Key{Key: staticKey(key)}.Mint(context.Background(), googletoken.Request{Kind: googletoken.ID, Audience: "https://validate.run.app"})
	var ue *googletoken.UpstreamError
	var re *oauth2.RetrieveError
	if !errors.As(err, &ue) || ue.Status != 503 || !ue.Temporary || !errors.As(err, &re) {
		t.Fatalf("Mint while the token endpoint answers 503: %v, want a temporary 503 UpstreamError caused by a RetrieveError", err)
	}
}

func TestImpersonate_IAMCredentialsAsTheRuntimeIdentity(t *testing.T) {
	googletest.OnCloud(t)
	iam := googletest.StartIAMCredentials(t)
	const vended = "vend-vertex@impo-test.iam.gserviceaccount.com"
	iam.Grants = []string{vended}
	src := googletoken.Impersonate{Endpoint: iam.URL + "/", MaxLife: time.Hour}
	ctx := context.Background()

	tok, err := src.Mint(ctx, googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloudPlatform}, Lifetime: 15 * time.Minute, Account: vended})
	if err != nil {
		t.Fatal(err)
	}
	h, body := iam.LastRequest()
	if !strings.HasPrefix(h.Get("Authorization"), "Bearer ya29.adc-") {
		t.Errorf("IAM call authenticated with %q, want the runtime identity's token", h.Get("Authorization"))
	}
	if body["lifetime"] != "900s" {
		t.Errorf("lifetime asked = %v, want 900s", body["lifetime"])
	}
	checkExpiry(t, tok, 15*time.Minute)
	if got := googletest.AccessTokenAccount(tok.Value); got != vended {
		t.Errorf("access token minted as %q, want %s", got, vended)
	}

	tok, err = src.Mint(ctx, googletoken.Request{Kind: googletoken.ID, Audience: "https://validate.run.app", Account: vended})
	if err != nil {
		t.Fatal(err)
	}
	if claims, _ := googletest.DecodeClaims(tok.Value); claims["sub"] != vended {
		t.Errorf("ID token for %v, want %s", claims["sub"], vended)
	}
	if _, body := iam.LastRequest(); body["includeEmail"] != true {
		t.Errorf("generateIdToken body = %v", body)
	}

	// IAM refuses an account the runtime holds no grant on: a permanent
	// failure an operator must look at, never a retry.
	_, err = src.Mint(ctx, googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloudPlatform}, Lifetime: 15 * time.Minute,
		Account: "login-fn@impo-test.iam.gserviceaccount.com"})
	var ue *googletoken.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 403 || ue.Temporary {
		t.Fatalf("an account without a grant: %v, want a permanent 403", err)
	}
	// Without an account there is nothing to impersonate: the source
	// never falls back to its own identity.
	if _, err := src.Mint(ctx, googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloudPlatform}, Lifetime: 15 * time.Minute}); !errors.Is(err, googletoken.ErrIdentity) {
		t.Fatalf("no account: %v, want ErrIdentity", err)
	}
	want := []string{"projects/-/serviceAccounts/" + vended, "projects/-/serviceAccounts/" + vended,
		"projects/-/serviceAccounts/login-fn@impo-test.iam.gserviceaccount.com"}
	if diff := cmp.Diff(want, iam.Names()); diff != "" {
		t.Errorf("IAM calls (-want +got):\n%s", diff)
	}
}

func TestSources_WithAnIdentityOfTheirOwnMintOnlyAsIt(t *testing.T) {
	key := newKey(t, "https://oauth2.googleapis.com/token")
	other := "vend-other@impo-test.iam.gserviceaccount.com"
	for name, src := range map[string]googletoken.Source{
		"adc":        googletoken.ADC{},
		"key":        googletoken.Key{Key: staticKey(key)},
		"selfsigned": googletoken.SelfSigned{Key: staticKey(key), Now: time.Now},
	} {
		_, err := src.Mint(context.Background(), googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloudPlatform},
			Lifetime: 20 * time.Minute, Account: other})
		if !errors.Is(err, googletoken.ErrIdentity) {
			t.Errorf("%s asked to mint as %s: %v, want ErrIdentity", name, other, err)
		}
	}
	tok, err := googletoken.SelfSigned{Key: staticKey(key), Now: time.Now}.Mint(context.Background(),
		googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloudPlatform}, Lifetime: 20 * time.Minute, Account: key.Email})
	if err != nil || tok.Value == "" {
		t.Fatalf("selfsigned asked to mint as its own key's account: %v", err)
	}
}

func TestSelfSigned_VerifiesWithTheKeyAndCarriesTheScope(t *testing.T) {
	key := newKey(t, "https://oauth2.googleapis.com/token")
	src := googletoken.SelfSigned{Key: staticKey(key), Now: time.Now}
	tok, err := src.Mint(context.Background(), googletoken.Request{Kind: googletoken.Access,
		Scopes: []string{cloudPlatform, "https://www.googleapis.com/auth/devstorage.read_only"}, Lifetime: 20 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := googletest.VerifyRS256(tok.Value, key.PublicKey()); err != nil {
		t.Fatalf("self-signed token does not verify with the key: %v", err)
	}
	checkHeader(t, tok.Value, key)
	claims, _ := googletest.DecodeClaims(tok.Value)
	if claims["iss"] != key.Email || claims["scope"] != cloudPlatform+" https://www.googleapis.com/auth/devstorage.read_only" {
		t.Errorf("claims = %v", claims)
	}
	if claims["sub"] != key.Email || claims["aud"] != "" || claims["exp"].(float64)-claims["iat"].(float64) != 20*60 {
		t.Errorf("claims = %v, want sub the key's email, aud empty, 20 minutes from iat to exp", claims)
	}
	checkExpiry(t, tok, 20*time.Minute)
	if _, err := src.Mint(context.Background(), googletoken.Request{Kind: googletoken.ID, Audience: "x"}); !errors.Is(err, googletoken.ErrUnsupported) {
		t.Fatalf("selfsigned ID token: %v, want ErrUnsupported", err)
	}
}

func TestParseKey_Rejects(t *testing.T) {
	good, _ := googletoken.NewServiceAccountKey("a@impo-test.iam.gserviceaccount.com", "https://oauth2.googleapis.com/token")
	var m map[string]string
	json.Unmarshal(good, &m)
	without := func(field string) string {
		c := maps.Clone(m)
		delete(c, field)
		b, _ := json.Marshal(c)
		return string(b)
	}
	for name, data := range map[string]string{
		"not JSON":   "nope",
		"user creds": `{"type":"authorized_user","client_id":"x"}`,
		"bad PEM":    `{"type":"service_account","client_email":"a@b","private_key":"xx","private_key_id":"1"}`,
		"no key":     without("private_key"),
		"no key id":  without("private_key_id"),
		"no email":   without("client_email"),
	} {
		if _, err := googletoken.ParseKey([]byte(data)); err == nil {
			t.Errorf("%s: ParseKey accepted it", name)
		}
	}
	if _, err := googletoken.ParseKey(good); err != nil {
		t.Fatalf("a good key: %v", err)
	}
}

func TestCache_ConcurrentColdMissesMakeOneCallPerKey(t *testing.T) {
	md := googletest.OnCloud(t)
	cache := googletoken.NewCache(googletoken.ADC{}, 5*time.Minute, time.Now)
	reqs := map[string]googletoken.Request{
		"a": {Kind: googletoken.Access, Scopes: []string{cloudPlatform}},
		"b": {Kind: googletoken.ID, Audience: "https://validate.run.app"},
	}
	const callers = 1000
	var wg sync.WaitGroup
	tokens := make([]map[string]string, 0)
	var mu sync.Mutex
	for i := range callers {
		wg.Go(func() {
			key := "a"
			if i%2 == 1 {
				key = "b"
			}
			tok, _, err := cache.Get(context.Background(), reqs[key])
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			tokens = append(tokens, map[string]string{key: tok.Value})
			mu.Unlock()
		})
	}
	wg.Wait()
	if n := md.Calls(); n != 2 {
		t.Fatalf("%d concurrent cold requests on 2 keys made %d upstream calls, want 2", callers, n)
	}
	seen := map[string]map[string]bool{"a": {}, "b": {}}
	for _, m := range tokens {
		for k, v := range m {
			seen[k][v] = true
		}
	}
	if len(seen["a"]) != 1 || len(seen["b"]) != 1 {
		t.Fatalf("callers of one key got different tokens: %d and %d", len(seen["a"]), len(seen["b"]))
	}
}

func TestCache_RefreshesOnceAtTheMargin(t *testing.T) {
	md := googletest.OnCloud(t)
	clk := testclock.New(time.Now())
	md.Now = clk.Now // ID tokens carry their expiry: date them on the test's clock
	cache := googletoken.NewCache(googletoken.ADC{}, 5*time.Minute, clk.Now)
	req := googletoken.Request{Kind: googletoken.ID, Audience: "https://validate.run.app"}
	ctx := context.Background()
	first, hit, _ := cache.Get(ctx, req)
	if hit {
		t.Fatal("cold cache reported a hit")
	}
	clk.Advance(54 * time.Minute) // 6 min left: still above the margin
	if tok, hit, _ := cache.Get(ctx, req); !hit || tok != first {
		t.Fatal("a token with more than the margin left was not reused")
	}
	clk.Advance(2 * time.Minute) // 4 min left: under the margin
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			tok, _, err := cache.Get(ctx, req)
			if err != nil || tok == first {
				t.Errorf("past the margin: %v, same token %v", err, tok == first)
			}
		})
	}
	wg.Wait()
	if n := md.Calls(); n != 2 {
		t.Fatalf("upstream calls = %d, want 2 (one cold, one refresh)", n)
	}
}

func TestCache_OutageGivesAnErrorNeverAStaleToken(t *testing.T) {
	md := googletest.OnCloud(t)
	clk := testclock.New(time.Now())
	cache := googletoken.NewCache(googletoken.ADC{}, 5*time.Minute, clk.Now)
	req := googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloudPlatform}}
	ctx := context.Background()
	cache.Get(ctx, req)
	clk.Advance(56 * time.Minute)
	md.Fail(503)
	tok, _, err := cache.Get(ctx, req)
	var ue *googletoken.UpstreamError
	if !errors.As(err, &ue) || !ue.Temporary || tok.Value != "" {
		t.Fatalf("during an outage: token %q, error %v; want no token and a temporary UpstreamError", tok.Value, err)
	}
}

func TestCache_RefusesATokenUnderTheMargin(t *testing.T) {
	md := googletest.OnCloud(t)
	md.TTL = 4 * time.Minute
	cache := googletoken.NewCache(googletoken.ADC{}, 5*time.Minute, time.Now)
	tok, _, err := cache.Get(context.Background(), googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloudPlatform}})
	if err == nil || tok.Value != "" {
		t.Fatalf("upstream token with 4 min left was handed out: %q, %v", tok.Value, err)
	}
}

func TestCache_KeyFollowsTheRequest(t *testing.T) {
	md := googletest.OnCloud(t)
	cache := googletoken.NewCache(googletoken.ADC{}, 5*time.Minute, time.Now)
	ctx := context.Background()
	get := func(req googletoken.Request) {
		t.Helper()
		if _, _, err := cache.Get(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	get(googletoken.Request{Kind: googletoken.Access, Scopes: []string{"https://b", "https://a"}})
	get(googletoken.Request{Kind: googletoken.Access, Scopes: []string{"https://a", "https://b", "https://a"}})
	if n := md.Calls(); n != 1 {
		t.Fatalf("the same scopes in another order made %d upstream calls, want 1", n)
	}
	// What differs in the request is another token: a shared key would
	// hand out a token minted for something else.
	get(googletoken.Request{Kind: googletoken.Access, Scopes: []string{"https://a"}})
	get(googletoken.Request{Kind: googletoken.Access, Scopes: []string{"https://a"}, Lifetime: 30 * time.Minute})
	get(googletoken.Request{Kind: googletoken.ID, Audience: "https://a"})
	if n := md.Calls(); n != 4 {
		t.Fatalf("three different requests after the first made %d upstream calls in all, want 4", n)
	}
}

// What a caller prepares for a token is made once, when the token is
// minted, and handed out with every hit; a refreshed token gets its own.
// The fingerprint is the token's, never its text.
func TestCache_PreparesOncePerTokenMinted(t *testing.T) {
	md := googletest.OnCloud(t)
	clk := testclock.New(time.Now())
	md.Now = clk.Now // ID tokens carry their expiry: date them on the test's clock
	cache := googletoken.NewCache(googletoken.ADC{}, 5*time.Minute, clk.Now)
	var prepared []string
	cache.Prepare = func(req googletoken.Request, tok googletoken.Token) any {
		prepared = append(prepared, tok.Value)
		return req.Audience + " " + tok.Fingerprint
	}
	req := googletoken.Request{Kind: googletoken.ID, Audience: "https://validate.run.app"}
	ctx := context.Background()
	first, _, err := cache.Get(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(first.Value))
	if first.Fingerprint != hex.EncodeToString(sum[:4]) {
		t.Errorf("fingerprint %q, want the first 4 bytes of the token's SHA-256 in hex", first.Fingerprint)
	}
	for range 3 {
		if tok, hit, _ := cache.Get(ctx, req); !hit || tok.Prepared != "https://validate.run.app "+first.Fingerprint {
			t.Fatalf("a hit carries %v, want what was prepared when the token was minted", tok.Prepared)
		}
	}
	clk.Advance(56 * time.Minute) // under the margin: a new token
	second, hit, err := cache.Get(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if hit || second.Value == first.Value || second.Prepared != "https://validate.run.app "+second.Fingerprint {
		t.Fatalf("after the refresh: hit %v, prepared %v", hit, second.Prepared)
	}
	if len(prepared) != 2 {
		t.Fatalf("prepared %d times for 2 tokens minted", len(prepared))
	}
}

// Working out which token serves a request leaves the request as it was.
func TestCache_LeavesTheRequestsScopesAlone(t *testing.T) {
	googletest.OnCloud(t)
	cache := googletoken.NewCache(googletoken.ADC{}, 5*time.Minute, time.Now)
	for _, scopes := range [][]string{{"https://a", "https://a", "https://b"}, {"https://b", "https://a", "https://a"}} {
		given := slices.Clone(scopes)
		if _, _, err := cache.Get(context.Background(), googletoken.Request{Kind: googletoken.Access, Scopes: scopes}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(scopes, given) {
			t.Errorf("scopes %q became %q", given, scopes)
		}
	}
}
