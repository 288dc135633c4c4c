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

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/strictjson"
)

// KeySet is the session-keys secret: Ed25519 private keys as a JWK Set
// (RFC 7517, RFC 8037). The first key signs; every key verifies, so a
// rotation puts a new key first and drops the old one only after the
// longest token lifetime has passed.
type KeySet struct {
	signer jose.JSONWebKey
	public map[string]ed25519.PublicKey
	jwks   jose.JSONWebKeySet
}

// PublicKeys maps key ids to the public keys that verify session tokens.
type PublicKeys map[string]ed25519.PublicKey

// ParseKeySet reads and checks a JWK Set of Ed25519 private keys.
func ParseKeySet(data []byte) (*KeySet, error) {
	if err := strictjson.Check(data); err != nil {
		return nil, fmt.Errorf("session keys: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("session keys: not a JWK Set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("session keys: the set has no keys")
	}
	ks := &KeySet{public: map[string]ed25519.PublicKey{}}
	for i, k := range set.Keys {
		priv, ok := k.Key.(ed25519.PrivateKey)
		switch {
		case !ok:
			return nil, fmt.Errorf("session keys: key %d is not an Ed25519 private key (kty OKP, crv Ed25519, with d)", i)
		case k.KeyID == "":
			return nil, fmt.Errorf("session keys: key %d has no kid", i)
		case k.Algorithm != "" && k.Algorithm != string(jose.EdDSA):
			return nil, fmt.Errorf("session keys: key %q: alg must be EdDSA", k.KeyID)
		case k.Use != "" && k.Use != "sig":
			return nil, fmt.Errorf("session keys: key %q: use must be sig", k.KeyID)
		}
		if _, dup := ks.public[k.KeyID]; dup {
			return nil, fmt.Errorf("session keys: kid %q appears twice", k.KeyID)
		}
		pub := priv.Public().(ed25519.PublicKey)
		ks.public[k.KeyID] = pub
		ks.jwks.Keys = append(ks.jwks.Keys, jose.JSONWebKey{Key: pub, KeyID: k.KeyID, Algorithm: string(jose.EdDSA), Use: "sig"})
		if i == 0 {
			ks.signer = jose.JSONWebKey{Key: priv, KeyID: k.KeyID, Algorithm: string(jose.EdDSA)}
		}
	}
	return ks, nil
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
	data, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: keys}, "", "  ")
	if err != nil {
		return nil, err
	}
	if _, err := ParseKeySet(data); err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
