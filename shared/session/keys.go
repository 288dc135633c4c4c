// Package session is what a session token is: an EdDSA-signed JWT access
// token (RFC 9068) issued by login and verified, by one implementation, in
// every function.
package session

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/strictjson"
)

// KeySet is the session-keys secret: private keys as a JWK Set (RFC 7517),
// Ed25519 (RFC 8037) and P-256 (RFC 7518 §6.2). Every key verifies; one
// key per algorithm signs. The first Ed25519 key signs session tokens;
// the first P-256 key signs ES256 (ID tokens, and consumers that cannot
// verify EdDSA), but only once promoted in front of that Ed25519 key. So
// a rotation of either algorithm is the same: add a new key last, where
// it only verifies; promote it once every verifier has it; drop the old
// one only after the longest lifetime of what it signed has passed.
type KeySet struct {
	signer jose.JSONWebKey // EdDSA: session and device tokens
	es256  jose.JSONWebKey // ES256; Key is nil when no P-256 key signs
	public map[string]ed25519.PublicKey
	ec     map[string]*ecdsa.PublicKey
	jwks   jose.JSONWebKeySet
}

// PublicKeys maps key ids to the public keys that verify session tokens:
// Ed25519 keys only, so that no other key of the set can ever verify a
// session token, whatever its header says.
type PublicKeys map[string]ed25519.PublicKey

// ErrKeyMismatch is a JWK whose private half ("d") does not derive its
// public half ("x", and "y" for P-256). Login would sign with one key and
// publish another: everything it signed would be refused everywhere.
var ErrKeyMismatch = errors.New("its private half (d) does not match its public half")

// ErrNoES256Key is a set with no P-256 key that signs: none at all, or
// only keys added and not yet promoted.
var ErrNoES256Key = errors.New("no ES256 signing key: add one (cmd/admin keys add --alg ES256), publish it, wait, and promote it (keys promote --alg ES256)")

// KeyAlgorithms are the algorithms of the keys a set may hold: EdDSA
// first, the one a set must have.
var KeyAlgorithms = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256}

// ParseKeySet reads and checks a JWK Set of private keys: each key is an
// Ed25519 or a P-256 key pair whose "d" derives its public half, with a
// kid no other key has, and at least one is Ed25519 (login signs every
// session token with it).
func ParseKeySet(data []byte) (*KeySet, error) {
	keys, err := readJWKSet(data)
	if err != nil {
		return nil, fmt.Errorf("session keys: %w", err)
	}
	ks := &KeySet{public: map[string]ed25519.PublicKey{}, ec: map[string]*ecdsa.PublicKey{}}
	for i, k := range keys {
		if !k.private() {
			return nil, fmt.Errorf("session keys: key %d (kid %q) has no private half (d): a public key cannot sign, and the signing set holds only key pairs", i, k.kid)
		}
		switch k.alg {
		case jose.EdDSA:
			ks.public[k.kid] = k.ed
			ks.jwks.Keys = append(ks.jwks.Keys, jose.JSONWebKey{Key: k.ed, KeyID: k.kid, Algorithm: string(jose.EdDSA), Use: "sig"})
			if ks.signer.Key == nil {
				ks.signer = jose.JSONWebKey{Key: ed25519.NewKeyFromSeed(k.edSeed), KeyID: k.kid, Algorithm: string(jose.EdDSA)}
			}
		case jose.ES256:
			// Only the first P-256 key may sign, and only in front of the
			// session signer: a first P-256 key added last verifies until
			// keys promote moves it there, as any new key does.
			if len(ks.ec) == 0 && ks.signer.Key == nil {
				ks.es256 = jose.JSONWebKey{Key: k.ecPriv, KeyID: k.kid, Algorithm: string(jose.ES256)}
			}
			ks.ec[k.kid] = k.ec
			ks.jwks.Keys = append(ks.jwks.Keys, jose.JSONWebKey{Key: k.ec, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
		}
	}
	if ks.signer.Key == nil {
		return nil, errors.New("session keys: no Ed25519 key: login signs every session token with EdDSA (cmd/admin keys init makes a set with one)")
	}
	return ks, nil
}

// jwk is one key of a set, read strictly: Ed25519 (RFC 8037 §2) or P-256
// (RFC 7518 §6.2), public or private.
type jwk struct {
	kid string
	alg jose.SignatureAlgorithm // EdDSA or ES256, from kty and crv

	ed     ed25519.PublicKey
	edSeed []byte // nil for a public key

	ec     *ecdsa.PublicKey
	ecPriv *ecdsa.PrivateKey // nil for a public key
}

func (k jwk) private() bool { return k.edSeed != nil || k.ecPriv != nil }

// readJWKSet reads a JWK Set of Ed25519 and P-256 keys, private or
// public, refusing the whole set if any key is broken: a set that is half
// right is a mistake to fix, not a set to use.
func readJWKSet(data []byte) ([]jwk, error) {
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
	var keys []jwk
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
func readJWK(raw json.RawMessage) (jwk, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return jwk{}, errors.New("not a JSON object")
	}
	var k jwk
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
		return jwk{}, err
	}
	kty, _, err := str("kty")
	if err != nil {
		return k, err
	}
	crv, _, err := str("crv")
	if err != nil {
		return k, err
	}
	switch {
	case kty == "OKP" && crv == "Ed25519":
		k.alg = jose.EdDSA
	case kty == "EC" && crv == "P-256":
		k.alg = jose.ES256
	default:
		return k, fmt.Errorf("kty %q, crv %q: want an Ed25519 key (kty OKP, crv Ed25519) or a P-256 key (kty EC, crv P-256)", kty, crv)
	}
	if k.kid == "" {
		return k, errors.New("no kid")
	}
	for name, want := range map[string]string{"alg": string(k.alg), "use": "sig"} {
		got, _, err := str(name)
		if err != nil {
			return k, err
		}
		if got != "" && got != want {
			return k, fmt.Errorf("%s is %q: want %s", name, got, want)
		}
	}
	// Every member is 32 bytes: an Ed25519 key or seed (RFC 8037 §2), or
	// a P-256 coordinate or scalar at the curve's full size (RFC 7518
	// §6.2.1.2, §6.2.2.1).
	member := func(name, what string) ([]byte, bool, error) {
		s, present, err := str(name)
		if err != nil || !present && name == "d" {
			return nil, false, err
		}
		b, err := keyBytes(s)
		if err != nil {
			return nil, true, fmt.Errorf("%s (%s): %w", name, what, err)
		}
		return b, true, nil
	}
	if k.alg == jose.EdDSA {
		if k.ed, _, err = member("x", "the public key"); err != nil {
			return k, err
		}
		var private bool
		if k.edSeed, private, err = member("d", "the private key"); err != nil || !private {
			return k, err
		}
		// RFC 8037 §2: "d" is the seed, from which the public key follows.
		if !ed25519.NewKeyFromSeed(k.edSeed).Public().(ed25519.PublicKey).Equal(k.ed) {
			return k, fmt.Errorf("%w (x)", ErrKeyMismatch)
		}
		return k, nil
	}
	x, _, err := member("x", "the public point's x")
	if err != nil {
		return k, err
	}
	y, _, err := member("y", "the public point's y")
	if err != nil {
		return k, err
	}
	// An uncompressed point (SEC 1 §2.3.3), refused off the curve: a key
	// that is not a point of P-256 is an invalid-curve attack's way in.
	if k.ec, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...)); err != nil {
		return k, errors.New("x and y are not a point of P-256")
	}
	d, private, err := member("d", "the private key")
	if err != nil || !private {
		return k, err
	}
	if k.ecPriv, err = ecdsa.ParseRawPrivateKey(elliptic.P256(), d); err != nil {
		return k, errors.New("d (the private key): not a P-256 private key (zero, or not below the curve's order)")
	}
	if !k.ecPriv.PublicKey.Equal(k.ec) {
		return k, fmt.Errorf("%w (x, y)", ErrKeyMismatch)
	}
	return k, nil
}

// keyBytes decodes a key member: 32 bytes, unpadded base64url (RFC 7515
// §2) in its one canonical spelling.
func keyBytes(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 32 {
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
func NewKey() (jose.JSONWebKey, error) { return NewKeyFor(jose.EdDSA) }

// NewKeyFor makes a signing key for alg, one of KeyAlgorithms, as a JWK
// whose kid is its RFC 7638 thumbprint.
func NewKeyFor(alg jose.SignatureAlgorithm) (jose.JSONWebKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return jose.JSONWebKey{}, fmt.Errorf("session keys: algorithm %q: want one of %v", alg, KeyAlgorithms)
	}
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k := jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "sig"}
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
