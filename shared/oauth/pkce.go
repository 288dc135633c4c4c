package oauth

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// S256 is RFC 7636's S256 transform: the challenge a client sends to
// /authorize for the verifier it keeps, base64url(SHA-256(verifier)).
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CheckChallenge accepts only what S256 can produce: 43 base64url
// characters that decode to 32 bytes. Anything else (a plain challenge, a
// padded or standard base64 one) is a client bug, refused at /authorize
// rather than as an unexplained invalid_grant at /token.
func CheckChallenge(s string) error {
	if len(s) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return fmt.Errorf("code_challenge: %d characters, want the 43 of an S256 challenge", len(s))
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(s); err != nil || len(b) != sha256.Size {
		return errors.New("code_challenge: not base64url without padding (RFC 7636 §4.2)")
	}
	return nil
}

// CheckVerifier applies RFC 7636 §4.1: 43 to 128 characters of
// [A-Za-z0-9-._~]. The lower bound keeps verifiers beyond guessing.
func CheckVerifier(s string) error {
	if len(s) < 43 || len(s) > 128 {
		return fmt.Errorf("code_verifier: %d characters, want 43 to 128", len(s))
	}
	for i := range len(s) {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return fmt.Errorf("code_verifier: character %d is not one of [A-Za-z0-9-._~]", i+1)
		}
	}
	return nil
}
