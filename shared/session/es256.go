package session

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"

	"github.com/go-jose/go-jose/v4"
)

// SigningKeyID returns the kid of the key that signs for alg (EdDSA or
// ES256), or "" when none does.
func (ks *KeySet) SigningKeyID(alg jose.SignatureAlgorithm) string {
	switch {
	case alg == jose.EdDSA:
		return ks.signer.KeyID
	case alg == jose.ES256 && ks.es256.Key != nil:
		return ks.es256.KeyID
	}
	return ""
}

// ES256PublicKeys maps key ids to the set's P-256 public keys, each of
// which verifies what the set's ES256 keys signed (an ID token given back
// as an id_token_hint, say). They never verify a session token.
func (ks *KeySet) ES256PublicKeys() map[string]*ecdsa.PublicKey { return ks.ec }

// SignES256 signs claims, which must encode as a JSON object, as a JWT
// (compact JWS) with the set's ES256 signing key: header alg ES256, its
// kid, and typ when typ is not empty. It returns ErrNoES256Key when no
// P-256 key signs. It is for what a session verifier must never take:
// ID tokens, and tokens for consumers that cannot verify EdDSA. Session
// tokens are EdDSA only (Issuer.Issue).
func (ks *KeySet) SignES256(typ string, claims any) (string, error) {
	if ks.es256.Key == nil {
		return "", ErrNoES256Key
	}
	return ks.sign(ks.es256, typ, claims)
}

// SignES256 signs claims with the current key set's ES256 signing key
// (KeySet.SignES256): for login's ID tokens, never its session tokens.
func (is *Issuer) SignES256(ctx context.Context, typ string, claims any) (string, error) {
	ks, err := is.Keys(ctx)
	if err != nil {
		return "", err
	}
	return ks.SignES256(typ, claims)
}

// KeyAlgorithm returns the algorithm a key of the set signs with, from
// its type (a JWK written by hand need not say it): EdDSA for Ed25519,
// ES256 for P-256, "" for anything else.
func KeyAlgorithm(k jose.JSONWebKey) jose.SignatureAlgorithm {
	switch key := k.Key.(type) {
	case ed25519.PrivateKey, ed25519.PublicKey:
		return jose.EdDSA
	case *ecdsa.PrivateKey:
		if key.Curve == elliptic.P256() {
			return jose.ES256
		}
	case *ecdsa.PublicKey:
		if key.Curve == elliptic.P256() {
			return jose.ES256
		}
	}
	return ""
}
