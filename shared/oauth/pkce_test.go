package oauth_test

import (
	"strings"
	"testing"

	"impo.com.uy/copetes/backend/shared/oauth"
)

func TestS256_RFC7636AppendixB(t *testing.T) {
	if got := oauth.S256(verifier); got != challenge {
		t.Fatalf("S256(%q) = %q, want %q", verifier, got, challenge)
	}
	if err := oauth.CheckVerifier(verifier); err != nil {
		t.Errorf("the RFC's verifier refused: %v", err)
	}
	if err := oauth.CheckChallenge(challenge); err != nil {
		t.Errorf("the RFC's challenge refused: %v", err)
	}
}

func TestCheckChallenge(t *testing.T) {
	for _, c := range []struct {
		name, challenge string
		ok              bool
	}{
		{"S256 output", challenge, true},
		{"another S256 output", oauth.S256(strings.Repeat("a", 43)), true},
		{"empty", "", false},
		{"42 characters", challenge[:42], false},
		{"padded", challenge + "=", false},
		{"standard base64", strings.ReplaceAll(challenge, "-", "+"), false},
		// 43 characters carry 258 bits: an S256 output leaves the last two zero.
		{"bits past the 256th", challenge[:42] + "N", false},
		{"a plain challenge", verifier[:42] + ".", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := oauth.CheckChallenge(c.challenge); (err == nil) != c.ok {
				t.Errorf("CheckChallenge(%q) = %v; want ok %v", c.challenge, err, c.ok)
			}
		})
	}
}

func TestCheckVerifier(t *testing.T) {
	for _, c := range []struct {
		name, verifier string
		ok             bool
	}{
		{"43 characters", strings.Repeat("a", 43), true},
		{"128 characters", strings.Repeat("Z", 128), true},
		{"every allowed kind", "AZaz09-._~" + strings.Repeat("x", 33), true},
		{"42 characters", strings.Repeat("a", 42), false},
		{"129 characters", strings.Repeat("a", 129), false},
		{"plus", "+" + strings.Repeat("a", 42), false},
		{"space", " " + strings.Repeat("a", 42), false},
		{"slash", "/" + strings.Repeat("a", 42), false},
		{"non-ASCII", "ñ" + strings.Repeat("a", 42), false},
		{"empty", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := oauth.CheckVerifier(c.verifier); (err == nil) != c.ok {
				t.Errorf("CheckVerifier(%q) = %v; want ok %v", c.verifier, err, c.ok)
			}
		})
	}
}
