// Package session is what a session token is: an EdDSA-signed JWT access
// token (RFC 9068) issued by login and verified, by one implementation, in
// every function.
package session

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/strictjson"
)

// KeySet is the session-keys secret: Ed25519 private keys as a JWK Set
// (RFC 7517, RFC 8037). The first key signs; every key verifies, so a
// rotation adds a new key, promotes it once every verifier has it, and
// drops the old one only after the longest token lifetime has passed.
type KeySet struct {
	signer jose.JSONWebKey
	public map[string]ed25519.PublicKey
	jwks   jose.JSONWebKeySet
}

// PublicKeys maps key ids to the public keys that verify session tokens.
type PublicKeys map[string]ed25519.PublicKey

// ErrKeyMismatch is a JWK whose private half ("d", the Ed25519 seed) does
// not derive its public half ("x"). Login would sign with one key and
// publish another: every token it issued would be refused everywhere.
var ErrKeyMismatch = errors.New("its private half (d) does not match its public half (x)")

// ParseKeySet reads and checks a JWK Set of Ed25519 private keys: each key
// is an Ed25519 key pair whose "d" derives its "x", with a kid no other
// key has.
func ParseKeySet(data []byte) (*KeySet, error) {
	keys, err := readJWKSet(data)
	if err != nil {
		return nil, fmt.Errorf("session keys: %w", err)
	}
	ks := &KeySet{public: map[string]ed25519.PublicKey{}}
	for i, k := range keys {
		if k.seed == nil {
			return nil, fmt.Errorf("session keys: key %d (kid %q) has no private half (d): a public key cannot sign, and the signing set holds only key pairs", i, k.kid)
		}
		ks.public[k.kid] = k.pub
		ks.jwks.Keys = append(ks.jwks.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: string(jose.EdDSA), Use: "sig"})
		if i == 0 {
			ks.signer = jose.JSONWebKey{Key: ed25519.NewKeyFromSeed(k.seed), KeyID: k.kid, Algorithm: string(jose.EdDSA)}
		}
	}
	return ks, nil
}

// okpKey is one Ed25519 JWK (RFC 8037 §2).
type okpKey struct {
	kid  string
	pub  ed25519.PublicKey
	seed []byte // nil for a public key
}

// readJWKSet reads a JWK Set of Ed25519 keys, private or public, refusing
// the whole set if any key is broken: a set that is half right is a
// mistake to fix, not a set to use.
func readJWKSet(data []byte) ([]okpKey, error) {
	if err := strictjson.Check(data); err != nil {
		return nil, err
	}
	var set map[string]json.RawMessage
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, errors.New(`not a JWK Set: want a JSON object {"keys":[…]}`)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(set["keys"], &raws); err != nil || set["keys"] == nil {
		return nil, errors.New(`not a JWK Set: "keys" must be an array of keys`)
	}
	if len(raws) == 0 {
		return nil, errors.New("the set has no keys")
	}
	var keys []okpKey
	seen := map[string]bool{}
	for i, raw := range raws {
		k, err := readJWK(raw)
		if err != nil {
			if k.kid != "" {
				return nil, fmt.Errorf("key %d (kid %q): %w", i, k.kid, err)
			}
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if seen[k.kid] {
			return nil, fmt.Errorf("key %d: kid %q appears twice: a token's kid must name one key", i, k.kid)
		}
		seen[k.kid] = true
		keys = append(keys, k)
	}
	return keys, nil
}

// readJWK reads one key member by member, by exact name. It does not go
// through go-jose, which copies "x" and "d" into a key without checking
// their lengths or that they belong together.
func readJWK(raw json.RawMessage) (okpKey, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return okpKey{}, errors.New("not a JSON object")
	}
	var k okpKey
	str := func(name string) (string, bool, error) {
		v, ok := m[name]
		if !ok {
			return "", false, nil
		}
		var s *string // nil for null, which is not a string either
		if err := json.Unmarshal(v, &s); err != nil || s == nil {
			return "", true, fmt.Errorf("%q must be a string", name)
		}
		return *s, true, nil
	}
	var err error
	if k.kid, _, err = str("kid"); err != nil {
		return okpKey{}, err
	}
	kty, _, err := str("kty")
	if err != nil {
		return k, err
	}
	crv, _, err := str("crv")
	if err != nil {
		return k, err
	}
	if kty != "OKP" || crv != "Ed25519" {
		return k, fmt.Errorf("kty %q, crv %q: want an Ed25519 key (kty OKP, crv Ed25519)", kty, crv)
	}
	if k.kid == "" {
		return k, errors.New("no kid")
	}
	for name, want := range map[string]string{"alg": string(jose.EdDSA), "use": "sig"} {
		got, _, err := str(name)
		if err != nil {
			return k, err
		}
		if got != "" && got != want {
			return k, fmt.Errorf("%s is %q: want %s", name, got, want)
		}
	}
	x, _, err := str("x")
	if err != nil {
		return k, err
	}
	if k.pub, err = keyBytes(x); err != nil {
		return k, fmt.Errorf("x (the public key): %w", err)
	}
	d, private, err := str("d")
	if err != nil || !private {
		return k, err
	}
	if k.seed, err = keyBytes(d); err != nil {
		return k, fmt.Errorf("d (the private key): %w", err)
	}
	// RFC 8037 §2: "d" is the seed, from which the public key follows.
	if !ed25519.NewKeyFromSeed(k.seed).Public().(ed25519.PublicKey).Equal(k.pub) {
		return k, ErrKeyMismatch
	}
	return k, nil
}

// keyBytes decodes an Ed25519 key member: 32 bytes, unpadded base64url
// (RFC 7515 §2) in its one canonical spelling.
func keyBytes(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("want 32 bytes as unpadded base64url")
	}
	return b, nil
}

// PublicKeys returns the verification keys by id.
func (ks *KeySet) PublicKeys() PublicKeys { return ks.public }

// JWKS returns the public half of the set, for GET /jwks.
func (ks *KeySet) JWKS() jose.JSONWebKeySet { return ks.jwks }

// NewKey makes an Ed25519 signing key as a JWK whose kid is its RFC 7638
// thumbprint.
func NewKey() (jose.JSONWebKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k := jose.JSONWebKey{Key: priv, Algorithm: string(jose.EdDSA), Use: "sig"}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return k, nil
}

// MarshalKeySet encodes private keys as the session-keys secret.
func MarshalKeySet(keys []jose.JSONWebKey) ([]byte, error) {
	return MarshalKeySetPublished(keys, nil)
}

// Published records, by kid, when a session-keys set holding each key was
// last published where login reads it. cmd/admin keeps it in the set's
// "published" member so that keys promote can refuse to make a key sign
// before every verifier has had time to learn it. RFC 7517 §5 lets a set
// carry members a reader does not use: ParseKeySet ignores this one,
// whatever it holds (bookkeeping must not stop login), and the JWKS login
// publishes is built from the keys alone, so it never carries it.
type Published map[string]time.Time

// publishedMember is the key set's member that holds Published.
const publishedMember = "published"

// ReadPublished reads the set's Published record, strictly: an object
// from kids of the set to RFC 3339 times. A set without it has an empty
// record.
func ReadPublished(data []byte) (Published, error) {
	if _, err := ParseKeySet(data); err != nil {
		return nil, err
	}
	var set map[string]json.RawMessage
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, err
	}
	pub := Published{}
	raw, ok := set[publishedMember]
	if !ok {
		return pub, nil
	}
	var times map[string]*string
	if err := json.Unmarshal(raw, &times); err != nil || times == nil {
		return nil, fmt.Errorf("session keys: %q must be an object from kids to RFC 3339 times", publishedMember)
	}
	keys, _ := readJWKSet(data)
	known := map[string]bool{}
	for _, k := range keys {
		known[k.kid] = true
	}
	for kid, s := range times {
		if !known[kid] {
			return nil, fmt.Errorf("session keys: %q names kid %q, which is not in the set", publishedMember, kid)
		}
		var at time.Time
		var err error
		if s != nil {
			at, err = time.Parse(time.RFC3339, *s)
		}
		if s == nil || err != nil {
			return nil, fmt.Errorf("session keys: %q of kid %q: want an RFC 3339 time", publishedMember, kid)
		}
		pub[kid] = at
	}
	return pub, nil
}

// MarshalKeySetPublished encodes private keys as the session-keys secret,
// with the record of when each was published (entries for kids not in
// keys are dropped). Times are kept to the second, rounded up: a record
// that is early would let a key sign early.
func MarshalKeySetPublished(keys []jose.JSONWebKey, pub Published) ([]byte, error) {
	set := struct {
		Keys      []jose.JSONWebKey `json:"keys"`
		Published map[string]string `json:"published,omitempty"`
	}{Keys: keys}
	for _, k := range keys {
		if at, ok := pub[k.KeyID]; ok {
			if set.Published == nil {
				set.Published = map[string]string{}
			}
			if r := at.Truncate(time.Second); r.Before(at) {
				at = r.Add(time.Second)
			}
			set.Published[k.KeyID] = at.UTC().Format(time.RFC3339)
		}
	}
	data, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, err
	}
	if _, err := ReadPublished(data); err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
