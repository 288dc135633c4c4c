// Package accounts is the list of people and services that may log in, as
// kept in the "accounts" secret.
package accounts

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/password"
	"impo.com.uy/copetes/backend/shared/strictjson"
)

// DefaultSecret is the id of the accounts secret.
const DefaultSecret = "accounts"

// SecretFromEnv names the accounts secret: ACCOUNTS_SECRET, or
// DefaultSecret. login, cmd/local and cmd/admin all ask here.
func SecretFromEnv() string { return env.String("ACCOUNTS_SECRET", DefaultSecret) }

// Kind says whether an account is a person or a service.
type Kind string

// The kinds of account. People log in with a password; services with the
// OAuth2 client-credentials grant.
const (
	User    Kind = "user"
	Service Kind = "service"
)

// Account is one entry of the accounts secret.
type Account struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Hash is an argon2id PHC string; for a service, also the SHA-256
	// digest of its machine-made secret ($sha256$…, password.HashSecret),
	// which login checks at machine speed. A person's is always argon2id.
	Hash     string   `json:"hash"`
	Roles    []string `json:"roles"`
	Disabled bool     `json:"disabled,omitempty"`
}

// word reports whether s is 1 to limit bytes of lower-case ASCII letters,
// digits and the bytes in punct, starting with a letter or digit. Checked
// by hand, not by a compiled regular expression: every login starts by
// loading this package, and compiling costs at each cold start.
func word(s string, limit int, punct string) bool {
	if len(s) == 0 || len(s) > limit {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && strings.IndexByte(punct, c) >= 0:
		default:
			return false
		}
	}
	return true
}

func validName(s string) bool { return word(s, 128, "._@+-") }
func validRole(s string) bool { return word(s, 64, "._:-") }

// NormalizeName lower-cases and trims a name as typed, so that "Ana" and
// "ana " name one account.
func NormalizeName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// CheckName reports whether name is an acceptable account name.
func CheckName(name string) error {
	if !validName(name) {
		return fmt.Errorf("account name %q: want 1-128 lower-case letters, digits and . _ @ + -, starting with a letter or digit", name)
	}
	return nil
}

// Validate checks one account.
func (a Account) Validate() error {
	if err := CheckName(a.Name); err != nil {
		return err
	}
	if a.Kind != User && a.Kind != Service {
		return fmt.Errorf("account %q: kind must be %q or %q", a.Name, User, Service)
	}
	h, err := password.Parse(a.Hash)
	if err != nil {
		return fmt.Errorf("account %q: hash: %w", a.Name, err)
	}
	if h.Fast() && a.Kind != Service {
		// A fast digest is safe only for a secret nobody can guess: a
		// person's password needs the slow hash.
		return fmt.Errorf("account %q: a person's password must be hashed with argon2id, not a $sha256$ digest (that is for services' generated secrets)", a.Name)
	}
	for _, r := range a.Roles {
		if !validRole(r) {
			return fmt.Errorf("account %q: role %q: want lower-case letters, digits and . _ : -", a.Name, r)
		}
	}
	return nil
}

// List is a parsed accounts secret.
type List struct {
	byName map[string]entry
	// costliest is, per kind, the parameters of its costliest argon2id
	// hash; a kind without any has no entry.
	costliest map[Kind]password.Params
}

type entry struct {
	Account
	hash password.Hashed
}

// Parse reads and checks an accounts secret: a JSON array of accounts with
// unique names.
func Parse(data []byte) (*List, error) {
	var accts []Account
	if err := strictjson.Decode(data, &accts); err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	l := &List{byName: make(map[string]entry, len(accts)), costliest: map[Kind]password.Params{}}
	for _, a := range accts {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		if _, dup := l.byName[a.Name]; dup {
			return nil, fmt.Errorf("accounts: name %q appears twice", a.Name)
		}
		h, _ := password.Parse(a.Hash)
		l.byName[a.Name] = entry{a, h}
		if best, ok := l.costliest[a.Kind]; !h.Fast() && (!ok || h.Params.Cost() > best.Cost()) {
			l.costliest[a.Kind] = h.Params
		}
	}
	return l, nil
}

// Lookup returns the account called name (normalized first) and its parsed
// hash.
func (l *List) Lookup(name string) (Account, password.Hashed, bool) {
	e, ok := l.byName[NormalizeName(name)]
	return e.Account, e.hash, ok
}

// CostliestHash returns the parameters of the most expensive argon2id
// hash (memory × passes) among the accounts of kind, and false when none
// of them has one (every service already holds a secret's digest). An
// unknown name is checked at this cost, so that no account of the kind
// answers slower than a name that does not exist.
func (l *List) CostliestHash(kind Kind) (password.Params, bool) {
	p, ok := l.costliest[kind]
	return p, ok
}

// Len is the number of accounts.
func (l *List) Len() int { return len(l.byName) }

// Marshal encodes accounts as the secret's JSON, sorted by name, one
// account per line so that a diff of two versions reads well.
func Marshal(accts []Account) ([]byte, error) {
	accts = slices.Clone(accts)
	slices.SortFunc(accts, func(a, b Account) int { return strings.Compare(a.Name, b.Name) })
	for i := range accts {
		if err := accts[i].Validate(); err != nil {
			return nil, err
		}
		if accts[i].Roles == nil {
			accts[i].Roles = []string{}
		}
	}
	return strictjson.MarshalLines(accts)
}

// Unmarshal decodes the secret's JSON into accounts, checking them as Parse
// does, for tools that edit the list.
func Unmarshal(data []byte) ([]Account, error) {
	if _, err := Parse(data); err != nil {
		return nil, err
	}
	var accts []Account
	err := json.Unmarshal(data, &accts)
	return accts, err
}

// MinServiceSecretBits is the least entropy a service's secret may have.
// At 256 bits nobody can guess it, so a service account needs no lock-out
// of its own (its failures are limited by address only).
const MinServiceSecretBits = 256

// NewServiceSecret returns a secret of 384 random bits, base64url (64
// characters): past the 256 asked, so that CheckServiceSecret's
// character-class estimate passes it whatever classes it happens to use.
func NewServiceSecret() string {
	b := make([]byte, 48)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CheckServiceSecret refuses a secret that may hold less than 256 bits of
// entropy. It cannot measure what a person chose, so it is deliberately
// strict: the length times the bits of the character classes it uses
// (lower, upper, digits, others), and at least 16 distinct characters.
// NewServiceSecret's always pass.
func CheckServiceSecret(secret string) error {
	var lower, upper, digit, other bool
	distinct := map[rune]bool{}
	n := 0
	for _, r := range secret {
		n++
		distinct[r] = true
		switch {
		case 'a' <= r && r <= 'z':
			lower = true
		case 'A' <= r && r <= 'Z':
			upper = true
		case '0' <= r && r <= '9':
			digit = true
		default:
			other = true
		}
	}
	pool := 0
	for _, c := range []struct {
		used bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 32}} {
		if c.used {
			pool += c.size
		}
	}
	if bits := float64(n) * math.Log2(float64(max(pool, 1))); bits < MinServiceSecretBits || len(distinct) < 16 {
		return fmt.Errorf("a service secret needs at least %d bits of entropy (for example 64 random base64url characters, as --generate-secret makes); this one may have %.0f", MinServiceSecretBits, bits)
	}
	return nil
}
