package session

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// A verifier used to take exp at its word: with a leaked key, a token
// signed today could say it expires in ten years, and outlive the
// rotation that retires the key for as long as any verifier still knew
// it. exp may now be at most MaxLifetime after iat, and iat not in the
// future beyond the leeway.
func TestVerify_RefusesLifetimesNoSessionHas(t *testing.T) {
	f := newFixture(t)
	h := f.header()
	with := func(iat, exp int64) string {
		c := f.claims()
		c["iat"], c["exp"] = iat, exp
		return sign(h, c, f.priv)
	}
	now := t0.Unix()
	max := int64(MaxLifetime / time.Second)
	leeway := int64(f.verifier.Leeway / time.Second)

	// The attack: a token minted with the signing key, valid in every
	// other way, that lives ten years.
	forged := with(now, now+10*365*24*3600)

	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"ten years", forged, false},
		{"one second over the maximum", with(now, now+max+1), false},
		{"the maximum", with(now, now+max), true},
		{"the maximum, issued 11h ago", with(now-11*3600, now-11*3600+max), true},
		{"iat before 1970, so exp - iat would overflow", with(math.MinInt64+1, now+3600), false},
		{"iat within the leeway ahead", with(now+leeway, now+3600), true},
		{"iat past the leeway ahead", with(now+leeway+1, now+3600), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.verifier.Verify(context.Background(), tt.token)
			if tt.ok && err != nil {
				t.Fatalf("Verify = %v, want the token accepted", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
		})
	}
}

// login never issues what its verifiers refuse: SESSION_TTL stops at
// MaxLifetime.
func TestConfig_SessionTTLStopsAtTheMaximumLifetime(t *testing.T) {
	t.Setenv("SESSION_TTL", (MaxLifetime + time.Minute).String())
	if _, err := ConfigFromEnv(false); err == nil {
		t.Fatalf("SESSION_TTL=%s accepted", MaxLifetime+time.Minute)
	}
	t.Setenv("SESSION_TTL", MaxLifetime.String())
	if c, err := ConfigFromEnv(false); err != nil || c.TTL != MaxLifetime {
		t.Fatalf("SESSION_TTL=%s: %v, %v", MaxLifetime, c.TTL, err)
	}
}
