package tokenpolicy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	cloudPlatform = "https://www.googleapis.com/auth/cloud-platform"
	storageRead   = "https://www.googleapis.com/auth/devstorage.read_only"
)

var policy = []byte(`{"roles": {
	"pipeline": {"scopes": ["` + cloudPlatform + `"], "audiences": ["https://validate.run.app"], "max_lifetime": "30m"},
	"reader":   {"scopes": ["` + storageRead + `"]},
	"dev":      {"scopes": ["*"], "audiences": ["*"], "max_lifetime": "15m"}
}}`)

func TestAllow(t *testing.T) {
	p, err := Parse(policy)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		roles    []string
		scopes   []string
		audience string
		want     time.Duration
		denied   string
	}{
		{"scope of the role", []string{"pipeline"}, []string{cloudPlatform}, "", 30 * time.Minute, ""},
		{"default lifetime", []string{"reader"}, []string{storageRead}, "", time.Hour, ""},
		{"scope of another role", []string{"reader"}, []string{cloudPlatform}, "", 0, "none of the roles [reader] allows scopes"},
		{"scopes are not gathered across roles", []string{"reader", "pipeline"}, []string{cloudPlatform, storageRead}, "", 0, "allows scopes"},
		{"the longest allowing role wins", []string{"dev", "reader"}, []string{storageRead}, "", time.Hour, ""},
		{"wildcard", []string{"dev"}, []string{"https://www.googleapis.com/auth/anything"}, "", 15 * time.Minute, ""},
		{"audience", []string{"pipeline"}, nil, "https://validate.run.app", 30 * time.Minute, ""},
		{"audience not listed", []string{"pipeline"}, nil, "https://other.run.app", 0, "audience https://other.run.app"},
		{"no roles", nil, []string{storageRead}, "", 0, "none of the roles"},
		{"unknown role", []string{"ghost"}, nil, "https://validate.run.app", 0, "none of the roles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got time.Duration
			var err error
			if tt.audience != "" {
				got, err = p.AllowAudience(tt.roles, tt.audience)
			} else {
				got, err = p.AllowScopes(tt.roles, tt.scopes)
			}
			if tt.denied != "" {
				if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), tt.denied) {
					t.Fatalf("error = %v, want ErrDenied mentioning %q", err, tt.denied)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if w := p.Wildcards(); len(w) != 1 || w[0] != "dev" {
		t.Errorf("Wildcards = %v", w)
	}
}

func TestEmptyPolicyRefusesEverythingClearly(t *testing.T) {
	for name, p := range map[string]*Policy{"missing": nil, "empty": {}} {
		_, err := p.AllowScopes([]string{"dev"}, []string{cloudPlatform})
		if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "no policy is configured") {
			t.Errorf("%s policy: %v", name, err)
		}
	}
}

func TestParse_Rejects(t *testing.T) {
	for name, data := range map[string]string{
		"unknown field":    `{"roles":{"a":{"scope":["x"]}}}`,
		"scope not URL":    `{"roles":{"a":{"scopes":["cloud-platform"]}}}`,
		"empty audience":   `{"roles":{"a":{"audiences":[""]}}}`,
		"lifetime too big": `{"roles":{"a":{"max_lifetime":"24h"}}}`,
		"lifetime number":  `{"roles":{"a":{"max_lifetime":3600}}}`,
		"duplicate role":   `{"roles":{"a":{},"a":{}}}`,
	} {
		if _, err := Parse([]byte(data)); err == nil {
			t.Errorf("%s: Parse accepted it", name)
		}
	}
}
