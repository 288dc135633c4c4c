package password

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
)

// A service's secret is made by a machine (cmd/admin: 384 random bits;
// accounts.CheckServiceSecret refuses fewer than 256). Nobody can guess
// such a secret, online or offline from a leaked digest: 2^256 tries of
// anything are out of reach. The slow, memory-hard hash that protects a
// person's password, which a person chose and a dictionary may hold,
// would buy a service nothing but a toll of 30 ms of CPU and 19 MiB on
// every token it asks for. One SHA-256 is enough, and is checked at
// machine speed. The random salt keeps two accounts (or two deployments)
// that share a secret from sharing a digest. There is no key (an HMAC
// with a pepper kept elsewhere): it would be one more secret to keep and
// rotate, for nothing at this entropy.
//
// Only for secrets a machine made: a person's password stays argon2id
// (accounts refuses a digest for a person's account).

// digestPrefix opens a service secret's digest; "v=1" leaves room for
// another construction without guessing from the length.
const digestPrefix = "$sha256$v=1$"

// HashSecret returns the digest of a service's machine-made secret, in a
// PHC-like string: $sha256$v=1$<salt>$<SHA-256(salt ‖ secret)>, both in
// unpadded base64. Never use it for a password a person chose.
func HashSecret(secret []byte) string {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	sum := digestOf(salt, secret)
	return digestPrefix + b64.EncodeToString(salt) + "$" + b64.EncodeToString(sum[:])
}

// parseDigest reads what HashSecret writes, and nothing looser: a salt of
// exactly 16 bytes (so that salt ‖ secret reads one way only) and a
// digest of 32.
func parseDigest(s string) (Hashed, error) {
	salt, sum, ok := strings.Cut(strings.TrimPrefix(s, digestPrefix), "$")
	if !ok || strings.Contains(sum, "$") {
		return Hashed{}, fmt.Errorf("%w: want $sha256$v=1$salt$digest", ErrMalformed)
	}
	var err1, err2 error
	h := Hashed{digest: true}
	h.salt, err1 = b64.DecodeString(salt)
	h.key, err2 = b64.DecodeString(sum)
	if err1 != nil || err2 != nil || len(h.salt) != saltLen || len(h.key) != sha256.Size {
		return Hashed{}, fmt.Errorf("%w: the salt must be 16 bytes and the digest 32, in unpadded base64", ErrMalformed)
	}
	return h, nil
}

func digestOf(salt, secret []byte) [sha256.Size]byte {
	d := sha256.New()
	d.Write(salt)
	d.Write(secret)
	var out [sha256.Size]byte
	d.Sum(out[:0])
	return out
}

// matchesDigest compares in constant time: how far a guess matches the
// digest must not show in the time it takes.
func (h Hashed) matchesDigest(secret []byte) bool {
	sum := digestOf(h.salt, secret)
	return subtle.ConstantTimeCompare(sum[:], h.key) == 1
}

// DummySecret returns the digest of a random secret. Checking an unknown
// client id against it costs what checking a service's secret costs, so
// response time does not tell which client ids exist.
func DummySecret() Hashed {
	secret := make([]byte, 32)
	rand.Read(secret)
	h, _ := parseDigest(HashSecret(secret))
	return h
}
