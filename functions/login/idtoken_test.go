package login

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/session"
)

// idClaims verifies an ID token against the published JWKS with go-jose
// alone, and returns its claims.
func idClaims(t *testing.T, ts *testServer, token string) map[string]any {
	t.Helper()
	r := ts.do("GET", "/jwks", "", "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(r.Body), &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is not in the JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("the ID token does not verify against the JWKS: %v", err)
	}
	if h.ExtraHeaders["typ"] != "JWT" {
		t.Errorf("typ = %v, want JWT", h.ExtraHeaders["typ"])
	}
	var c map[string]any
	json.Unmarshal(payload, &c)
	c["_alg"] = h.Algorithm
	return c
}

func TestIDToken_ClaimsAndSignature(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			ts := newTestServer(t, nil)
			if alg == "ES256" {
				useES256(t, ts)
			}
			a := ts.grant(webClient, "ana")
			got := okTokens(t, ts.exchange(webClient, ts.code(t, a)))
			at, _ := ts.auth.Verifier.Verify(context.Background(), got.Access)
			c := idClaims(t, ts, got.ID)
			want := map[string]any{
				"_alg": alg, "iss": "https://login.test", "sub": "ana", "aud": webClient, "azp": webClient,
				"exp": float64(at.Expiry), "iat": float64(at.IssuedAt), "auth_time": float64(a.AuthTime.Unix()),
				"nonce": a.Nonce, "amr": []any{"pwd"}, "sid": a.Family,
			}
			for k, v := range want {
				if !jsonEqual(c[k], v) {
					t.Errorf("%s = %v, want %v", k, c[k], v)
				}
			}
			if len(c) != len(want) {
				t.Errorf("claims %v, want exactly %v", c, want)
			}
			// An ID token is no session token.
			if err := ts.verify(got.ID); !errors.Is(err, session.ErrInvalid) {
				t.Errorf("the session verifier took an ID token: %v", err)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// useES256 rewrites the key set with a P-256 key that signs, in front of
// the Ed25519 session key.
func useES256(t *testing.T, ts *testServer) {
	t.Helper()
	ec, err := session.NewKeyFor(jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	ed, _ := session.NewKey()
	data, err := session.MarshalKeySet([]jose.JSONWebKey{ec, ed})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ts.dir, "session-keys"), data, 0o600)
	ks, err := ts.auth.Keys.Get(context.Background())
	if err != nil || ks.SigningKeyID(jose.ES256) != ec.KeyID {
		t.Fatalf("the ES256 key does not sign: %v", err)
	}
}
