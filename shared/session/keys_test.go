package session

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

// okp writes an Ed25519 JWK by hand, so that a test can pair any "d" with
// any "x".
func okp(kid string, seed []byte, pub ed25519.PublicKey) map[string]any {
	k := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(pub)}
	if seed != nil {
		k["d"] = base64.RawURLEncoding.EncodeToString(seed)
	}
	return k
}

func keySet(keys ...map[string]any) []byte {
	data, _ := json.Marshal(map[string]any{"keys": keys})
	return data
}

func newPair(t *testing.T) (seed []byte, pub ed25519.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv.Seed(), pub
}

// A signing key whose "d" belongs to one key pair and "x" to another used
// to pass: login then signed with one key and published the other, and
// every token it issued was refused by every verifier.
func TestParseKeySet_RefusesAPrivateKeyThatDoesNotMatchItsPublicKey(t *testing.T) {
	seedA, _ := newPair(t)
	_, pubB := newPair(t)
	data := keySet(okp("k1", seedA, pubB))

	// The attack: go-jose, which ParseKeySet used to trust, takes the pair
	// as is; what it signs does not verify under what it publishes.
	var loose jose.JSONWebKeySet
	if err := json.Unmarshal(data, &loose); err != nil {
		t.Fatalf("go-jose refused the mismatched key itself (%v): the test no longer shows the hole", err)
	}
	priv := loose.Keys[0].Key.(ed25519.PrivateKey)
	if ed25519.Verify(priv.Public().(ed25519.PublicKey), []byte("m"), ed25519.Sign(priv, []byte("m"))) {
		t.Fatal("the mismatched pair verifies its own signature: the test no longer shows the outage")
	}

	_, err := ParseKeySet(data)
	if !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("ParseKeySet = %v, want ErrKeyMismatch", err)
	}
	if !strings.Contains(err.Error(), `key 0 (kid "k1")`) {
		t.Errorf("error %q does not say which key", err)
	}
}

func TestParseKeySet_RefusesEveryBrokenKey(t *testing.T) {
	seed, pub := newPair(t)
	good := func(edit func(k map[string]any)) map[string]any {
		k := okp("k1", seed, pub)
		edit(k)
		return k
	}
	b64 := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"not JSON", []byte("keys"), ""},
		{"not an object", []byte(`[]`), "not a JWK Set"},
		{"no keys member", []byte(`{}`), `"keys" must be an array`},
		{"keys is not an array", []byte(`{"keys":{}}`), `"keys" must be an array`},
		{"empty set", keySet(), "no keys"},
		{"a key that is not an object", []byte(`{"keys":[1]}`), "not a JSON object"},
		{"public key only", keySet(okp("k1", nil, pub)), "no private half"},
		{"a public key after the signer", keySet(okp("k1", seed, pub), okp("k2", nil, pub)), "no private half"},
		{"duplicate kid", keySet(okp("k1", seed, pub), okp("k1", seed, pub)), "appears twice"},
		{"no kid", keySet(good(func(k map[string]any) { delete(k, "kid") })), "no kid"},
		{"kid is a number", keySet(good(func(k map[string]any) { k["kid"] = 1 })), `"kid" must be a string`},
		{"RSA", keySet(map[string]any{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}), "want an Ed25519 key"},
		{"X25519", keySet(good(func(k map[string]any) { k["crv"] = "X25519" })), "want an Ed25519 key"},
		{"case-folded kty", keySet(good(func(k map[string]any) { delete(k, "kty"); k["KTY"] = "OKP" })), "want an Ed25519 key"},
		{"alg RS256", keySet(good(func(k map[string]any) { k["alg"] = "RS256" })), "want EdDSA"},
		{"use enc", keySet(good(func(k map[string]any) { k["use"] = "enc" })), "want sig"},
		{"x too short", keySet(good(func(k map[string]any) { k["x"] = b64(pub[:31]) })), "x (the public key)"},
		{"x too long", keySet(good(func(k map[string]any) { k["x"] = b64(append(pub, 0)) })), "x (the public key)"},
		{"x padded", keySet(good(func(k map[string]any) { k["x"] = base64.URLEncoding.EncodeToString(pub) })), "x (the public key)"},
		{"x missing", keySet(good(func(k map[string]any) { delete(k, "x") })), "x (the public key)"},
		{"d too short", keySet(good(func(k map[string]any) { k["d"] = b64(seed[:31]) })), "d (the private key)"},
		{"d is the 64-byte key", keySet(good(func(k map[string]any) { k["d"] = b64(ed25519.NewKeyFromSeed(seed)) })), "d (the private key)"},
		{"d is null", keySet(good(func(k map[string]any) { k["d"] = nil })), `"d" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeySet(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseKeySet = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestParseKeySet_AcceptsKeyPairsWrittenByHandOrByNewKey(t *testing.T) {
	seed, pub := newPair(t)
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	written, _ := json.Marshal(k)
	var fromNewKey map[string]any
	json.Unmarshal(written, &fromNewKey)
	bare := okp("bare", seed, pub)
	delete(bare, "alg")
	delete(bare, "use")
	bare["key_ops"] = []string{"sign"} // members we do not use are ignored (RFC 7517 §4)

	ks, err := ParseKeySet(keySet(fromNewKey, bare))
	if err != nil {
		t.Fatal(err)
	}
	if ks.signer.KeyID != k.KeyID || !ks.PublicKeys()["bare"].Equal(pub) || len(ks.JWKS().Keys) != 2 {
		t.Fatalf("signer %q, keys %v", ks.signer.KeyID, ks.PublicKeys())
	}
	// The signer and the published key are one pair.
	priv := ks.signer.Key.(ed25519.PrivateKey)
	if !ed25519.Verify(ks.PublicKeys()[k.KeyID], []byte("m"), ed25519.Sign(priv, []byte("m"))) {
		t.Fatal("the signing key does not verify under its published key")
	}
}

func TestParsePublicKeySet_RefusesBrokenSets(t *testing.T) {
	seed, pub := newPair(t)
	_, other := newPair(t)
	tests := map[string][]byte{
		"HTML":           []byte("<html>login</html>"),
		"empty object":   []byte(`{}`),
		"no keys":        keySet(),
		"duplicate kid":  keySet(okp("k1", nil, pub), okp("k1", nil, other)),
		"x too short":    keySet(map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": base64.RawURLEncoding.EncodeToString(pub[:16])}),
		"a private key":  keySet(okp("k1", seed, pub)),
		"an RSA key too": keySet(okp("k1", nil, pub), map[string]any{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}),
	}
	for name, data := range tests {
		if keys, err := ParsePublicKeySet(data); err == nil {
			t.Errorf("%s: ParsePublicKeySet accepted it: %v", name, keys)
		}
	}
	keys, err := ParsePublicKeySet(keySet(okp("k1", nil, pub), okp("k2", nil, other)))
	if err != nil || !keys["k1"].Equal(pub) || !keys["k2"].Equal(other) {
		t.Fatalf("a good public set: %v, %v", keys, err)
	}
}

// keys promote needs to know when a key was published, and the set is
// where cmd/admin records it. Login must not care: it ignores the record,
// even a broken one (bookkeeping must not stop login), and the JWKS it
// publishes is built from the keys alone.
func TestPublished_RecordedInTheSetIgnoredByLoginNeverPublished(t *testing.T) {
	a, _ := NewKey()
	b, _ := NewKey()
	at := time.Date(2026, 3, 1, 10, 0, 0, 250e6, time.UTC)
	data, err := MarshalKeySetPublished([]jose.JSONWebKey{a, b}, Published{b.KeyID: at, "gone": at})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ReadPublished(data)
	if err != nil {
		t.Fatal(err)
	}
	// Rounded up to the second: an early record would let a key sign early.
	if want := (Published{b.KeyID: at.Truncate(time.Second).Add(time.Second)}); !cmp.Equal(pub, want) {
		t.Fatalf("ReadPublished = %v, want %v (kids not in the set dropped)", pub, want)
	}
	ks, err := ParseKeySet(data)
	if err != nil {
		t.Fatalf("login's parser refused a set with the record: %v", err)
	}
	jwks, _ := json.Marshal(ks.JWKS())
	if strings.Contains(string(jwks), "published") || strings.Contains(string(jwks), "2026") {
		t.Fatalf("the published JWKS carries the record: %s", jwks)
	}

	var set map[string]any
	json.Unmarshal(data, &set)
	for name, record := range map[string]any{
		"not an object":  "2026-03-01T10:00:00Z",
		"an unknown kid": map[string]any{"other": "2026-03-01T10:00:00Z"},
		"not a time":     map[string]any{b.KeyID: "yesterday"},
		"a null time":    map[string]any{b.KeyID: nil},
		"a number":       map[string]any{b.KeyID: 1},
		"a null record":  nil,
	} {
		set["published"] = record
		broken, _ := json.Marshal(set)
		if _, err := ReadPublished(broken); err == nil {
			t.Errorf("%s: ReadPublished accepted it", name)
		}
		if _, err := ParseKeySet(broken); err != nil {
			t.Errorf("%s: login's parser refused the set over its record: %v", name, err)
		}
	}
}
