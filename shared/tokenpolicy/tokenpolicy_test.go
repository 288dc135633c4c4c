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
	"pipeline": {"service_account": "vend-pipeline@impo-prod.iam.gserviceaccount.com", "scopes": ["` + cloudPlatform + `"], "audiences": ["https://validate.run.app"], "max_lifetime": "30m"},
	"reader":   {"service_account": "vend-reader@impo-prod.iam.gserviceaccount.com", "scopes": ["` + storageRead + `"]},
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
		account  string
		denied   string
	}{
		{"scope of the role", []string{"pipeline"}, []string{cloudPlatform}, "", 30 * time.Minute, "vend-pipeline@impo-prod.iam.gserviceaccount.com", ""},
		{"default lifetime", []string{"reader"}, []string{storageRead}, "", time.Hour, "vend-reader@impo-prod.iam.gserviceaccount.com", ""},
		{"scope of another role", []string{"reader"}, []string{cloudPlatform}, "", 0, "", "none of the roles [reader] allows scopes"},
		{"scopes are not gathered across roles", []string{"reader", "pipeline"}, []string{cloudPlatform, storageRead}, "", 0, "", "allows scopes"},
		{"the longest allowing role wins, with its account", []string{"dev", "reader"}, []string{storageRead}, "", time.Hour, "vend-reader@impo-prod.iam.gserviceaccount.com", ""},
		{"wildcard", []string{"dev"}, []string{"https://www.googleapis.com/auth/anything"}, "", 15 * time.Minute, "", ""},
		{"audience", []string{"pipeline"}, nil, "https://validate.run.app", 30 * time.Minute, "vend-pipeline@impo-prod.iam.gserviceaccount.com", ""},
		{"audience not listed", []string{"pipeline"}, nil, "https://other.run.app", 0, "", "audience https://other.run.app"},
		{"no roles", nil, []string{storageRead}, "", 0, "", "none of the roles"},
		{"unknown role", []string{"ghost"}, nil, "https://validate.run.app", 0, "", "none of the roles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Grant
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
			if err != nil || got.MaxLifetime != tt.want || got.ServiceAccount != tt.account {
				t.Fatalf("= %+v, %v; want %v for %q", got, err, tt.want, tt.account)
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
		"unknown field":     `{"roles":{"a":{"scope":["x"]}}}`,
		"scope not URL":     `{"roles":{"a":{"scopes":["cloud-platform"]}}}`,
		"empty audience":    `{"roles":{"a":{"audiences":[""]}}}`,
		"lifetime too big":  `{"roles":{"a":{"max_lifetime":"24h"}}}`,
		"lifetime number":   `{"roles":{"a":{"max_lifetime":3600}}}`,
		"duplicate role":    `{"roles":{"a":{},"a":{}}}`,
		"account not email": `{"roles":{"a":{"service_account":"vend-a"}}}`,
		"user as account":   `{"roles":{"a":{"service_account":"ana@impo.com.uy"}}}`,
	} {
		if _, err := Parse([]byte(data)); err == nil {
			t.Errorf("%s: Parse accepted it", name)
		}
	}
}

func TestAccounts(t *testing.T) {
	p, err := Parse(policy)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"vend-pipeline@impo-prod.iam.gserviceaccount.com", "vend-reader@impo-prod.iam.gserviceaccount.com"}
	if got := p.Accounts(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Accounts = %v, want %v", got, want)
	}
	if got := p.Unaccounted(); len(got) != 1 || got[0] != "dev" {
		t.Errorf("Unaccounted = %v, want [dev]", got)
	}
}

// Among roles that allow a request with the same lifetime, the first by
// name wins, in whatever order the token lists them.
func TestAllow_TiesGoToTheFirstRoleByName(t *testing.T) {
	p, err := Parse([]byte(`{"roles": {
		"b": {"service_account": "vend-b@impo-prod.iam.gserviceaccount.com", "scopes": ["` + storageRead + `"]},
		"a": {"service_account": "vend-a@impo-prod.iam.gserviceaccount.com", "scopes": ["` + storageRead + `"]},
		"c": {"service_account": "vend-c@impo-prod.iam.gserviceaccount.com", "scopes": ["` + storageRead + `"], "max_lifetime": "30m"}
	}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, roles := range [][]string{{"a", "b", "c"}, {"c", "b", "a"}, {"b", "c", "a", "b"}} {
		if g, err := p.AllowScopes(roles, []string{storageRead}); err != nil || g.Role != "a" {
			t.Errorf("roles %v: %+v, %v; want role a", roles, g, err)
		}
	}
}
