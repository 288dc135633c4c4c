package session

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestVerify_WithKeysFromThePublishedJWKS(t *testing.T) {
	f := newFixture(t)
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		json.NewEncoder(w).Encode(f.keys.JWKS())
	}))
	defer srv.Close()
	f.verifier.Keys = jwksKeys(srv.URL, time.Minute, time.Hour)
	ctx := context.Background()
	for range 3 {
		token, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
		if _, err := f.verifier.Verify(ctx, token); err != nil {
			t.Fatalf("a token verified against the JWKS: %v", err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times for three verifications, want 1 (cached)", n)
	}
	h, c := f.header(), f.claims()
	h["kid"] = "not-published"
	if _, err := f.verifier.Verify(ctx, sign(h, c, f.priv)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a kid absent from the JWKS: %v", err)
	}
}

func TestParsePublicKeySet_RefusesPrivateKeys(t *testing.T) {
	k, _ := NewKey()
	private, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k}})
	public, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Public()}})
	if _, err := ParsePublicKeySet(private); err == nil {
		t.Error("a JWKS with a private key was accepted")
	}
	if _, err := ParsePublicKeySet([]byte(`{"keys":[]}`)); err == nil {
		t.Error("an empty JWKS was accepted")
	}
	if keys, err := ParsePublicKeySet(public); err != nil || len(keys) != 1 {
		t.Errorf("a public JWKS: %v, %v", keys, err)
	}
}

func TestCheckJWKSURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://login-abc.a.run.app/jwks": true,
		"http://127.0.0.1:8080/Login/jwks": true,
		"http://localhost/jwks":            true,
		"http://login.example/jwks":        false,
		"/jwks":                            false,
		"ftp://x/jwks":                     false,
	} {
		if err := CheckJWKSURL(u); (err == nil) != ok {
			t.Errorf("CheckJWKSURL(%q) = %v", u, err)
		}
	}
}
