package session

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/store"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

type fixture struct {
	keys     *KeySet
	priv     ed25519.PrivateKey
	kid      string
	old      jose.JSONWebKey // second key of the set: verifies, does not sign
	issuer   *Issuer
	verifier *Verifier
	store    *store.Memory
	clock    *testclock.Clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	old, _ := NewKey()
	data, err := MarshalKeySet([]jose.JSONWebKey{k, old})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ParseKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{keys: ks, priv: k.Key.(ed25519.PrivateKey), kid: k.KeyID, old: old, clock: testclock.New(t0)}
	now := f.clock.Now
	f.store = store.NewMemory(now)
	f.issuer = &Issuer{
		Keys:   func(context.Context) (*KeySet, error) { return ks, nil },
		Issuer: "https://login.test", Audience: "backend", TTL: time.Hour, Now: now,
	}
	f.verifier = &Verifier{
		Keys:   func(context.Context) (PublicKeys, error) { return ks.PublicKeys(), nil },
		Issuer: "https://login.test", Audience: "backend", Leeway: 30 * time.Second,
		Revocations: Revocations{Store: f.store}, Now: now,
	}
	return f
}

func b64(v any) string {
	var data []byte
	switch v := v.(type) {
	case []byte:
		data = v
	case string:
		data = []byte(v)
	default:
		data, _ = json.Marshal(v)
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// sign builds a compact JWS by hand, so that a test controls every byte.
func sign(header, claims any, priv ed25519.PrivateKey) string {
	input := b64(header) + "." + b64(claims)
	return input + "." + b64(ed25519.Sign(priv, []byte(input)))
}

func (f *fixture) claims() map[string]any {
	return map[string]any{
		"iss": "https://login.test", "sub": "ana", "aud": "backend",
		"exp": t0.Add(time.Hour).Unix(), "iat": t0.Unix(), "jti": "abc123",
		"client_id": "ana", "kind": "user", "roles": []string{"editor"},
	}
}

func (f *fixture) header() map[string]any {
	return map[string]any{"alg": "EdDSA", "kid": f.kid, "typ": "at+jwt"}
}

func TestIssueThenVerify(t *testing.T) {
	f := newFixture(t)
	token, issued, err := f.issuer.Issue(context.Background(), "ana", "user", []string{"editor"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.verifier.Verify(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(issued, got); diff != "" {
		t.Errorf("claims (-issued +verified):\n%s", diff)
	}
	if len(got.ID) != 22 { // 128 bits, base64url without padding
		t.Errorf("jti %q is not 128 random bits", got.ID)
	}
	if got.Expiry-got.IssuedAt != 3600 {
		t.Errorf("lifetime = %ds, want 3600", got.Expiry-got.IssuedAt)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	var h map[string]string
	json.Unmarshal(hdr, &h)
	if diff := cmp.Diff(map[string]string{"alg": "EdDSA", "kid": f.kid, "typ": "at+jwt"}, h); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
}

func TestVerify_OldKeyStillVerifies(t *testing.T) {
	f := newFixture(t)
	h := f.header()
	h["kid"] = f.old.KeyID
	token := sign(h, f.claims(), f.old.Key.(ed25519.PrivateKey))
	if _, err := f.verifier.Verify(context.Background(), token); err != nil {
		t.Fatalf("a token signed by the second key of the set fails: %v", err)
	}
}

func TestJWKS_PublishesOnlyPublicKeys(t *testing.T) {
	f := newFixture(t)
	data, _ := json.Marshal(f.keys.JWKS())
	var set struct{ Keys []map[string]any }
	json.Unmarshal(data, &set)
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(set.Keys))
	}
	for _, k := range set.Keys {
		if _, ok := k["d"]; ok {
			t.Fatal("JWKS publishes private key material")
		}
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" {
			t.Errorf("JWKS key = %v", k)
		}
	}
}

func TestVerify_RejectsForgedAndMalformedTokens(t *testing.T) {
	f := newFixture(t)
	_, attacker, _ := ed25519.GenerateKey(rand.Reader)
	good := sign(f.header(), f.claims(), f.priv)
	with := func(edit func(h, c map[string]any)) string {
		h, c := f.header(), f.claims()
		edit(h, c)
		return sign(h, c, f.priv)
	}
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: attacker.Public(), KeyID: f.kid})
	parts := strings.Split(good, ".")

	hs256 := func() string {
		h := f.header()
		h["alg"] = "HS256"
		input := b64(h) + "." + b64(f.claims())
		mac := hmac.New(sha256.New, f.keys.PublicKeys()[f.kid])
		mac.Write([]byte(input))
		return input + "." + b64(mac.Sum(nil))
	}()

	tests := []struct {
		name  string
		token string
	}{
		{"alg none", b64(map[string]any{"alg": "none", "kid": f.kid, "typ": "at+jwt"}) + "." + b64(f.claims()) + "."},
		{"HS256 keyed with the public key", hs256},
		{"unknown key behind a known kid", sign(f.header(), f.claims(), attacker)},
		{"embedded jwk header", func() string {
			h := f.header()
			h["jwk"] = json.RawMessage(pubJWK)
			return sign(h, f.claims(), attacker)
		}()},
		{"jku header", with(func(h, _ map[string]any) { h["jku"] = "https://evil.example/jwks" })},
		{"crit header", with(func(h, _ map[string]any) { h["crit"] = []string{"exp"} })},
		{"unknown kid", with(func(h, _ map[string]any) { h["kid"] = "nope" })},
		{"expired", with(func(_, c map[string]any) { c["exp"] = t0.Add(-31 * time.Second).Unix() })},
		{"issued in the future", with(func(_, c map[string]any) { c["iat"] = t0.Add(2 * time.Minute).Unix() })},
		{"not yet valid", with(func(_, c map[string]any) { c["nbf"] = t0.Add(2 * time.Minute).Unix() })},
		{"wrong iss", with(func(_, c map[string]any) { c["iss"] = "https://evil.example" })},
		{"wrong aud", with(func(_, c map[string]any) { c["aud"] = "other" })},
		{"wrong aud array", with(func(_, c map[string]any) { c["aud"] = []string{"other", "x"} })},
		{"wrong typ", with(func(h, _ map[string]any) { h["typ"] = "JWT" })},
		{"missing typ", with(func(h, _ map[string]any) { delete(h, "typ") })},
		{"missing exp", with(func(_, c map[string]any) { delete(c, "exp") })},
		{"missing jti", with(func(_, c map[string]any) { delete(c, "jti") })},
		{"tampered payload", parts[0] + "." + b64(map[string]any{"iss": "https://login.test", "sub": "root", "aud": "backend", "exp": t0.Add(time.Hour).Unix(), "iat": t0.Unix(), "jti": "x", "roles": []string{"admin"}}) + "." + parts[2]},
		{"truncated signature", good[:len(good)-10]},
		{"oversized", with(func(_, c map[string]any) { c["pad"] = strings.Repeat("a", MaxTokenSize) })},
		{"duplicate claim", parts[0] + "." + b64(`{"sub":"ana","sub":"root"}`) + "." + parts[2]},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`},
		{"garbage", "not a token"},
		{"empty", ""},
	}
	if _, err := f.verifier.Verify(context.Background(), good); err != nil {
		t.Fatalf("the untampered token fails: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.verifier.Verify(context.Background(), tt.token)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify error = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestVerify_LeewayIsBounded(t *testing.T) {
	f := newFixture(t)
	f.verifier.Leeway = time.Hour // misconfigured: clamped to MaxLeeway
	h, c := f.header(), f.claims()
	c["exp"] = t0.Add(-61 * time.Second).Unix()
	if _, err := f.verifier.Verify(context.Background(), sign(h, c, f.priv)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a token expired 61s ago passed with a huge leeway: %v", err)
	}
	c["exp"] = t0.Add(-20 * time.Second).Unix()
	if _, err := f.verifier.Verify(context.Background(), sign(h, c, f.priv)); err != nil {
		t.Fatalf("a token expired 20s ago fails within leeway: %v", err)
	}
}

func TestVerify_RevokedUntilExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token, c, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	if err := f.verifier.Revocations.Revoke(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verifier.Verify(ctx, token); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v, want ErrInvalid (revoked)", err)
	}
	other, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	if _, err := f.verifier.Verify(ctx, other); err != nil {
		t.Fatalf("revoking one token refused another: %v", err)
	}
}

func TestVerify_UnavailableKeysAreNotInvalid(t *testing.T) {
	f := newFixture(t)
	token, _, _ := f.issuer.Issue(context.Background(), "ana", "user", nil)
	outage := errors.New("secret store unavailable")
	f.verifier.Keys = func(context.Context) (PublicKeys, error) { return nil, outage }
	_, err := f.verifier.Verify(context.Background(), token)
	if !errors.Is(err, outage) || errors.Is(err, ErrInvalid) {
		t.Fatalf("Verify error = %v; want the outage, not ErrInvalid, so the caller answers 503", err)
	}
}

func TestParseKeySet_Rejects(t *testing.T) {
	k, _ := NewKey()
	pub := k.Public()
	pubOnly, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	noKid := k
	noKid.KeyID = ""
	noKidData, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{noKid}})
	dup, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k, k}})
	tests := map[string]string{
		"empty set":   `{"keys":[]}`,
		"not JSON":    `keys`,
		"public only": string(pubOnly),
		"no kid":      string(noKidData),
		"duplicate":   string(dup),
	}
	for name, data := range tests {
		if _, err := ParseKeySet([]byte(data)); err == nil {
			t.Errorf("%s: ParseKeySet accepted it", name)
		}
	}
}

func TestVerify_ASeenTokenIsStillCheckedForWhatChanges(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(f *fixture, c Claims)
		reason string
	}{
		{"revoked after it was seen", func(f *fixture, c Claims) { f.verifier.Revocations.Revoke(ctx, c) }, "revoked"},
		{"expired after it was seen", func(f *fixture, _ Claims) { f.clock.Advance(time.Hour + time.Minute) }, "expired"},
		{"its key dropped from the set", func(f *fixture, _ Claims) {
			f.verifier.Keys = func(context.Context) (PublicKeys, error) {
				return PublicKeys{f.old.KeyID: f.keys.PublicKeys()[f.old.KeyID]}, nil
			}
		}, "unknown key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			token, c, _ := f.issuer.Issue(ctx, "ana", "user", nil)
			if _, err := f.verifier.Verify(ctx, token); err != nil {
				t.Fatal(err)
			}
			if _, err := f.verifier.Verify(ctx, token); err != nil {
				t.Fatalf("second verification of the same token: %v", err)
			}
			tt.change(f, c)
			_, err := f.verifier.Verify(ctx, token)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Verify = %v, want ErrInvalid (%s)", err, tt.reason)
			}
		})
	}
}

func TestVerifierOnly_DeployedNeedsLoginsJWKS(t *testing.T) {
	tests := []struct {
		name     string
		jwks     string
		deployed bool
		ok       bool
	}{
		{"local run with the signing keys", "", false, true},
		{"deployed with login's JWKS", "https://login.test/jwks", true, true},
		{"deployed with the signing keys", "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkVerifierOnly(Config{JWKSURL: tt.jwks, KeysSecret: "session-keys"}, tt.deployed)
			if (err == nil) != tt.ok {
				t.Fatalf("checkVerifierOnly = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
