package session

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDeviceToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token, id, exp, err := f.issuer.IssueDevice(ctx, "ana")
	if err != nil || id == "" || !exp.Equal(t0.Add(DeviceTTL).Truncate(time.Second)) {
		t.Fatalf("IssueDevice = %q, %v, %v", id, exp, err)
	}
	if got, err := f.issuer.VerifyDevice(ctx, token, "ana"); err != nil || got != id {
		t.Fatalf("VerifyDevice for its account = %q, %v", got, err)
	}
	session, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	tests := []struct {
		name, token, sub string
	}{
		{"another account", token, "bea"},
		{"a session token", session, "ana"},
		{"garbage", "x.y.z", "ana"},
	}
	for _, tt := range tests {
		if _, err := f.issuer.VerifyDevice(ctx, tt.token, tt.sub); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tt.name, err)
		}
	}
	if _, err := f.verifier.Verify(ctx, token); !errors.Is(err, ErrInvalid) {
		t.Errorf("a device token as a session: %v, want ErrInvalid", err)
	}
	f.clock.Advance(DeviceTTL)
	if _, err := f.issuer.VerifyDevice(ctx, token, "ana"); !errors.Is(err, ErrInvalid) {
		t.Errorf("an expired device token: %v, want ErrInvalid", err)
	}
}
