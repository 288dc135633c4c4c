package env

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"", time.Hour, false},
		{"90s", 90 * time.Second, false},
		{"13h", 0, true},
		{"-1s", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		t.Setenv("SESSION_TTL", tt.value)
		got, err := Duration("SESSION_TTL", time.Hour, time.Minute, 12*time.Hour)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("Duration(%q) = %v, %v", tt.value, got, err)
		}
	}
}

func TestError_NamesTheVariableNotTheValue(t *testing.T) {
	t.Setenv("LOGIN_MAX_FAILURES", "s3cr3t-looking-value")
	_, err := Int("LOGIN_MAX_FAILURES", 5, 1, 1000)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "LOGIN_MAX_FAILURES") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error = %v", err)
	}
}

func TestOneOfAndList(t *testing.T) {
	t.Setenv("SECRETS_SOURCE", "vault")
	if _, err := OneOf("SECRETS_SOURCE", "dir", "dir", "secretmanager"); err == nil {
		t.Error("OneOf accepted a value outside the list")
	}
	t.Setenv("CORS_ALLOWED_ORIGINS", " https://a.uy, ,https://b.uy ")
	if got := List("CORS_ALLOWED_ORIGINS"); len(got) != 2 || got[0] != "https://a.uy" || got[1] != "https://b.uy" {
		t.Errorf("List = %q", got)
	}
	t.Setenv("FLAG", "maybe")
	if _, err := Bool("FLAG", false); err == nil {
		t.Error("Bool accepted maybe")
	}
}
