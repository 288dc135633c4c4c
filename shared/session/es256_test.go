package session

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

// ec writes a P-256 JWK by hand, so that a test can pair any "d" with any
// point.
func ec(kid string, priv *ecdsa.PrivateKey, pub *ecdsa.PublicKey) map[string]any {
	point, _ := pub.Bytes() // 0x04 || x || y
	k := map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(point[1:33]), "y": base64.RawURLEncoding.EncodeToString(point[33:])}
	if priv != nil {
		d, _ := priv.Bytes()
		k["d"] = base64.RawURLEncoding.EncodeToString(d)
	}
	return k
}

func newP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A P-256 key is read as strictly as an Ed25519 one: a "d" that does not
// derive the published point, a point off the curve, a scalar out of
// range or a member of the wrong size would have login sign with one key
// and publish another, or publish a point an invalid-curve attack picks.
func TestParseKeySet_RefusesEveryBrokenP256Key(t *testing.T) {
	seed, pub := newPair(t)
	ed := okp("ed", seed, pub)
	a, b := newP256(t), newP256(t)
	good := func(edit func(k map[string]any)) map[string]any {
		k := ec("p", a, &a.PublicKey)
		edit(k)
		return k
	}
	b64 := base64.RawURLEncoding.EncodeToString
	n := elliptic.P256().Params().N.FillBytes(make([]byte, 32)) // the curve's order
	tests := []struct {
		name string
		key  map[string]any
		want string
	}{
		{"d of another key", ec("p", a, &b.PublicKey), "does not match its public half (x, y)"},
		{"x of another key", good(func(k map[string]any) { k["x"] = ec("", nil, &b.PublicKey)["x"] }), "not a point of P-256"},
		{"y negated", good(func(k map[string]any) {
			y, _ := base64.RawURLEncoding.DecodeString(k["y"].(string))
			y[31] ^= 1
			k["y"] = b64(y)
		}), "not a point of P-256"},
		{"x too short", good(func(k map[string]any) { k["x"] = b64(make([]byte, 31)) }), "x (the public point's x)"},
		{"y missing", good(func(k map[string]any) { delete(k, "y") }), "y (the public point's y)"},
		{"y padded", good(func(k map[string]any) { k["y"] = k["y"].(string) + "=" }), "y (the public point's y)"},
		{"d zero", good(func(k map[string]any) { k["d"] = b64(make([]byte, 32)) }), "not a P-256 private key"},
		{"d is the order", good(func(k map[string]any) { k["d"] = b64(n) }), "not a P-256 private key"},
		{"d too short", good(func(k map[string]any) { k["d"] = b64(make([]byte, 31)) }), "d (the private key)"},
		{"alg EdDSA", good(func(k map[string]any) { k["alg"] = "EdDSA" }), "want ES256"},
		{"alg ES384", good(func(k map[string]any) { k["alg"] = "ES384" }), "want ES256"},
		{"P-384", good(func(k map[string]any) { k["crv"] = "P-384" }), "or a P-256 key"},
		{"secp256k1", good(func(k map[string]any) { k["crv"] = "secp256k1" }), "or a P-256 key"},
		{"kty OKP with crv P-256", good(func(k map[string]any) { k["kty"] = "OKP" }), "or a P-256 key"},
		{"public only", ec("p", nil, &a.PublicKey), "no private half"},
		{"kid of the Ed25519 key", good(func(k map[string]any) { k["kid"] = "ed" }), "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeySet(keySet(ed, tt.key))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseKeySet = %v, want an error saying %q", err, tt.want)
			}
			if strings.Contains(tt.want, "does not match") && !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("ParseKeySet = %v, want ErrKeyMismatch", err)
			}
		})
	}
}

// Login signs every session token with EdDSA: a set of P-256 keys alone
// would leave it nothing to sign them with.
func TestParseKeySet_RefusesASetWithoutAnEd25519Key(t *testing.T) {
	a := newP256(t)
	_, err := ParseKeySet(keySet(ec("p", a, &a.PublicKey)))
	if err == nil || !strings.Contains(err.Error(), "no Ed25519 key") {
		t.Fatalf("ParseKeySet = %v, want a refusal for want of an Ed25519 key", err)
	}
}

// A new key verifies before it signs, whatever its algorithm: a P-256 key
// signs only once promoted in front of the session signer, so that the
// first one, added last like any new key, is published before it signs.
// The EdDSA signer is the first Ed25519 key wherever P-256 keys stand.
func TestParseKeySet_ES256SignsOnlyInFrontOfTheSessionSigner(t *testing.T) {
	edA, _ := NewKey()
	edB, _ := NewKey()
	p1, _ := NewKeyFor(jose.ES256)
	p2, _ := NewKeyFor(jose.ES256)
	tests := []struct {
		name         string
		keys         []jose.JSONWebKey
		eddsa, es256 string
	}{
		{"Ed25519 only", []jose.JSONWebKey{edA, edB}, edA.KeyID, ""},
		{"P-256 added last", []jose.JSONWebKey{edA, p1}, edA.KeyID, ""},
		{"P-256 promoted", []jose.JSONWebKey{p1, edA}, edA.KeyID, p1.KeyID},
		{"second P-256 added", []jose.JSONWebKey{p1, edA, p2}, edA.KeyID, p1.KeyID},
		{"second P-256 promoted", []jose.JSONWebKey{p2, p1, edA}, edA.KeyID, p2.KeyID},
		{"Ed25519 promoted behind the P-256 signer", []jose.JSONWebKey{p1, edB, edA}, edB.KeyID, p1.KeyID},
		{"P-256 between two Ed25519 keys", []jose.JSONWebKey{edA, p1, edB}, edA.KeyID, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := MarshalKeySet(tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			ks, err := ParseKeySet(data)
			if err != nil {
				t.Fatal(err)
			}
			if got := ks.SigningKeyID(jose.EdDSA); got != tt.eddsa {
				t.Errorf("EdDSA signer %q, want %q", got, tt.eddsa)
			}
			if got := ks.SigningKeyID(jose.ES256); got != tt.es256 {
				t.Errorf("ES256 signer %q, want %q", got, tt.es256)
			}
			token, err := ks.SignES256("JWT", map[string]any{"sub": "ana"})
			if tt.es256 == "" && !errors.Is(err, ErrNoES256Key) {
				t.Errorf("SignES256 with no ES256 signer = %q, %v; want ErrNoES256Key", token, err)
			}
			if tt.es256 != "" && err != nil {
				t.Errorf("SignES256: %v", err)
			}
			if len(ks.JWKS().Keys) != len(tt.keys) || len(ks.ES256PublicKeys())+len(ks.PublicKeys()) != len(tt.keys) {
				t.Errorf("JWKS has %d keys, Ed25519 %d, P-256 %d; want %d in all", len(ks.JWKS().Keys), len(ks.PublicKeys()), len(ks.ES256PublicKeys()), len(tt.keys))
			}
		})
	}
}

// idClaims stand for an ID token's claims: SignES256 signs whatever
// claims its caller builds.
type idClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	Nonce    string `json:"nonce"`
}

// What login signs with ES256 verifies, with go-jose, against the JWKS as
// login serves it (JSON over HTTP), the key found by the token's kid: the
// published key is RFC 7518's EC key with nothing private in it.
func TestSignES256_VerifiesWithGoJoseAgainstThePublishedJWKS(t *testing.T) {
	ed, _ := NewKey()
	p, _ := NewKeyFor(jose.ES256)
	data, _ := MarshalKeySet([]jose.JSONWebKey{p, ed})
	ks, err := ParseKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{Keys: func(context.Context) (*KeySet, error) { return ks, nil }}
	want := idClaims{"https://login.test", "ana", "web", t0.Add(5 * time.Minute).Unix(), t0.Unix(), "n-0S6_WzA2Mj"}
	token, err := is.SignES256(context.Background(), "JWT", want)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(ks.JWKS()) // what login's /jwks writes
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw struct{ Keys []map[string]any }
	var published jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(raw)
	if err := json.Unmarshal(body, &published); err != nil {
		t.Fatalf("go-jose cannot read the JWKS: %v", err)
	}

	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	if h.Algorithm != "ES256" || h.KeyID != p.KeyID || h.ExtraHeaders[jose.HeaderType] != "JWT" {
		t.Fatalf("header alg %q kid %q typ %v; want ES256, %q, JWT", h.Algorithm, h.KeyID, h.ExtraHeaders[jose.HeaderType], p.KeyID)
	}
	keys := published.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("the JWKS has %d keys of kid %q, want 1", len(keys), h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("go-jose refuses the token under the published key: %v", err)
	}
	var got idClaims
	json.Unmarshal(payload, &got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims (-signed +verified):\n%s", diff)
	}

	for _, k := range raw.Keys {
		if k["kid"] != p.KeyID {
			continue
		}
		if _, ok := k["d"]; ok {
			t.Fatal("the JWKS publishes the P-256 private key")
		}
		x, _ := base64.RawURLEncoding.DecodeString(k["x"].(string))
		y, _ := base64.RawURLEncoding.DecodeString(k["y"].(string))
		if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || len(x) != 32 || len(y) != 32 {
			t.Errorf("published P-256 key = %v, want kty EC, crv P-256, alg ES256, use sig, x and y of 32 bytes", k)
		}
		// Its kid is its RFC 7638 thumbprint, which any client can check.
		tp := sha256.Sum256(fmt.Appendf(nil, `{"crv":"P-256","kty":"EC","x":%q,"y":%q}`, k["x"], k["y"]))
		if base64.RawURLEncoding.EncodeToString(tp[:]) != p.KeyID {
			t.Errorf("kid %q is not the key's RFC 7638 thumbprint", p.KeyID)
		}
	}
}

func TestSignES256_RefusesClaimsThatAreNotAnObject(t *testing.T) {
	ed, _ := NewKey()
	p, _ := NewKeyFor(jose.ES256)
	data, _ := MarshalKeySet([]jose.JSONWebKey{p, ed})
	ks, _ := ParseKeySet(data)
	for _, claims := range []any{"ana", []string{"a"}, nil, 1, make(chan int)} {
		if token, err := ks.SignES256("", claims); err == nil {
			t.Errorf("SignES256(%#v) = %q, want a refusal", claims, token)
		}
	}
}

// Alg confusion: a token ES256 signs, whatever its claims and typ, never
// passes as a session token. The header's alg is refused, and a header
// that claims EdDSA over a P-256 kid names no session key: the P-256 keys
// are neither in the set's PublicKeys nor in what a verifier reads from
// the JWKS.
func TestVerify_RefusesWhatES256Signed(t *testing.T) {
	f := newFixture(t)
	ed, _ := NewKey()
	p, _ := NewKeyFor(jose.ES256)
	data, _ := MarshalKeySet([]jose.JSONWebKey{p, ed})
	ks, err := ParseKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	f.issuer.Keys = func(context.Context) (*KeySet, error) { return ks, nil }
	jwks, _ := json.Marshal(ks.JWKS())
	fromJWKS, err := ParsePublicKeySet(jwks)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fromJWKS[p.KeyID]; ok || len(fromJWKS) != 1 {
		t.Fatalf("the verifier's keys from the JWKS: %v, want the Ed25519 key only", fromJWKS)
	}

	asSession, err := f.issuer.SignES256(context.Background(), TokenType, f.claims())
	if err != nil {
		t.Fatal(err)
	}
	// The same signature under a header that says EdDSA: ES256 and EdDSA
	// signatures are both 64 bytes.
	parts := strings.Split(asSession, ".")
	h := map[string]any{"alg": "EdDSA", "kid": p.KeyID, "typ": TokenType}
	relabelled := b64(h) + "." + parts[1] + "." + parts[2]
	// An Ed25519 signature by the session key under the P-256 kid.
	input := b64(h) + "." + b64(f.claims())
	edUnderP256Kid := input + "." + b64(ed25519.Sign(ed.Key.(ed25519.PrivateKey), []byte(input)))

	for name, keys := range map[string]PublicKeys{"from the secret": ks.PublicKeys(), "from the JWKS": fromJWKS} {
		f.verifier.Keys = func(context.Context) (PublicKeys, error) { return keys, nil }
		for token, want := range map[string]string{
			asSession:      "alg is \"ES256\", want EdDSA",
			relabelled:     "unknown key id",
			edUnderP256Kid: "unknown key id",
		} {
			if _, err := f.verifier.Verify(context.Background(), token); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
				t.Errorf("keys %s: Verify = %v, want ErrInvalid saying %q", name, err, want)
			}
			if _, _, err := joseVerifyFully(f.verifier, context.Background(), token); !errors.Is(err, ErrInvalid) {
				t.Errorf("keys %s: the go-jose reference path = %v, want ErrInvalid", name, err)
			}
		}
	}
	// And a device token is EdDSA only too.
	if _, err := f.issuer.VerifyDevice(context.Background(), asSession, "ana"); !errors.Is(err, ErrInvalid) {
		t.Errorf("VerifyDevice of an ES256 token = %v, want ErrInvalid", err)
	}
}

// Verifiers read login's JWKS and must keep working once it publishes
// P-256 keys: they are checked and skipped. A JWKS with no Ed25519 key
// is refused (it verifies no session token), like a private key in it.
func TestParsePublicKeySet_SkipsP256KeysButNeedsAnEd25519One(t *testing.T) {
	_, pub := newPair(t)
	a, b := newP256(t), newP256(t)
	keys, err := ParsePublicKeySet(keySet(ec("p", nil, &a.PublicKey), okp("ed", nil, pub)))
	if err != nil || len(keys) != 1 || !keys["ed"].Equal(pub) {
		t.Fatalf("a JWKS with both: %v, %v; want the Ed25519 key alone", keys, err)
	}
	for name, data := range map[string][]byte{
		"P-256 only":          keySet(ec("p", nil, &a.PublicKey)),
		"a P-256 private key": keySet(okp("ed", nil, pub), ec("p", a, &a.PublicKey)),
		"a P-256 key off the curve": keySet(okp("ed", nil, pub), func() map[string]any {
			k := ec("p", nil, &a.PublicKey)
			k["y"] = ec("", nil, &b.PublicKey)["y"]
			return k
		}()),
	} {
		if keys, err := ParsePublicKeySet(data); err == nil {
			t.Errorf("%s: ParsePublicKeySet accepted it: %v", name, keys)
		}
	}
}

func TestNewKeyFor(t *testing.T) {
	for _, alg := range KeyAlgorithms {
		k, err := NewKeyFor(alg)
		if err != nil {
			t.Fatal(err)
		}
		pair, _ := NewKey()
		data, err := MarshalKeySet([]jose.JSONWebKey{pair, k})
		if err != nil {
			t.Fatalf("%s: the set does not parse: %v", alg, err)
		}
		ks, _ := ParseKeySet(data)
		if got := ks.JWKS().Keys[1]; got.Algorithm != string(alg) || got.KeyID != k.KeyID {
			t.Errorf("%s: published as alg %q kid %q", alg, got.Algorithm, got.KeyID)
		}
	}
	if _, err := NewKeyFor(jose.RS256); err == nil || !strings.Contains(err.Error(), "want one of") {
		t.Errorf("NewKeyFor(RS256) = %v, want a refusal", err)
	}
}
