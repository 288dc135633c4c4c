// Package password hashes and verifies the secrets that log in: people's
// passwords with argon2id, under a limit on how many hashes run at once,
// and services' machine-made secrets with a salted SHA-256 digest, both
// stored as PHC strings.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// Default is OWASP's floor for argon2id (Password Storage Cheat Sheet):
// 19 MiB, 2 passes, 1 lane.
var Default = Params{Memory: 19456, Time: 2, Threads: 1}

// Bounds on the parameters a hash may carry. Below the floor a hash is too
// cheap to crack; above the ceiling one bad entry in the accounts secret
// could make every login exhaust memory or time.
const (
	maxMemory  = 1 << 20 // 1 GiB
	maxTime    = 16
	maxThreads = 16
	saltLen    = 16
	keyLen     = 32
)

// ErrMalformed: a string is neither an acceptable argon2id PHC hash nor a
// service secret's digest.
var ErrMalformed = errors.New("not an argon2id PHC hash within the accepted parameters, nor a $sha256$ secret digest")

// Cost is the work of one hash with p, in KiB-passes: argon2id fills its
// memory once per pass, whatever the lanes that share the filling.
func (p Params) Cost() uint64 { return uint64(p.Memory) * uint64(p.Time) }

// Check reports whether p is at least Default and within the ceilings.
func (p Params) Check() error {
	switch {
	case p.Memory < Default.Memory || p.Time < Default.Time || p.Threads < 1:
		return fmt.Errorf("%w: m=%d,t=%d,p=%d is below m=%d,t=%d,p=1", ErrMalformed, p.Memory, p.Time, p.Threads, Default.Memory, Default.Time)
	case p.Memory > maxMemory || p.Time > maxTime || p.Threads > maxThreads:
		return fmt.Errorf("%w: m=%d,t=%d,p=%d is above m=%d,t=%d,p=%d", ErrMalformed, p.Memory, p.Time, p.Threads, maxMemory, maxTime, maxThreads)
	}
	return nil
}

var b64 = base64.RawStdEncoding

// Hash returns the PHC string of password with a fresh random salt:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>.
func Hash(password []byte, p Params) (string, error) {
	if err := p.Check(); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, keyLen)
	return format(p, salt, key), nil
}

func format(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Hashed is a parsed hash: argon2id, or the digest of a service's secret
// (see HashSecret).
type Hashed struct {
	Params Params // argon2id's cost; zero for a digest
	salt   []byte
	key    []byte
	digest bool
}

// Fast reports whether h is a service secret's digest, which costs
// microseconds to check and no memory budget, rather than an argon2id
// hash.
func (h Hashed) Fast() bool { return h.digest }

// Parse reads a PHC string: argon2id within the bounds, or a service
// secret's $sha256$ digest.
func Parse(phc string) (Hashed, error) {
	if strings.HasPrefix(phc, digestPrefix) {
		return parseDigest(phc)
	}
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Hashed{}, fmt.Errorf("%w: want $argon2id$v=19$m=…,t=…,p=…$salt$hash", ErrMalformed)
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Hashed{}, fmt.Errorf("%w: want version v=%d", ErrMalformed, argon2.Version)
	}
	var h Hashed
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.Params.Memory, &h.Params.Time, &h.Params.Threads); err != nil || n != 3 ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", h.Params.Memory, h.Params.Time, h.Params.Threads) {
		return Hashed{}, fmt.Errorf("%w: parameters must read m=<KiB>,t=<passes>,p=<lanes>", ErrMalformed)
	}
	if err := h.Params.Check(); err != nil {
		return Hashed{}, err
	}
	var err1, err2 error
	h.salt, err1 = b64.DecodeString(parts[4])
	h.key, err2 = b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(h.salt) < 8 || len(h.salt) > 64 || len(h.key) < 16 || len(h.key) > 64 {
		return Hashed{}, fmt.Errorf("%w: salt or hash is not unpadded base64 of a sensible length", ErrMalformed)
	}
	return h, nil
}

// Matches reports whether password hashes to h, in constant time.
func (h Hashed) Matches(password []byte) bool {
	if h.digest {
		return h.matchesDigest(password)
	}
	key := argon2.IDKey(password, h.salt, h.Params.Time, h.Params.Memory, h.Params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// Dummy returns a hash of a random password with params p. Checking an
// unknown user's password against it costs what a real check costs, so
// response time does not tell who exists. It costs one hash: make it once
// and keep it.
func Dummy(p Params) Hashed {
	secret := make([]byte, 32)
	rand.Read(secret)
	salt := make([]byte, saltLen)
	rand.Read(salt)
	return Hashed{Params: p, salt: salt, key: argon2.IDKey(secret, salt, p.Time, p.Memory, p.Threads, keyLen)}
}
