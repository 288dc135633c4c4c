package session

import (
	"strings"
	"testing"
)

func TestCheckIssuer(t *testing.T) {
	tests := []struct {
		issuer string
		want   string // "" for accepted, else part of the error
	}{
		{"https://login-123456789012.southamerica-east1.run.app", ""},
		{"https://auth.impo.com.uy", ""},
		{"https://api.impo.com.uy/login", ""},
		{"https://auth.impo.com.uy:8443/login", ""},
		{"http://127.0.0.1:8080/Login", ""},
		{"http://127.0.0.1:41234", ""},
		{"http://localhost:8080/Login", ""},
		{"http://[::1]:8080/Login", ""},

		{"impo-copetes-login", "absolute URL"},
		{"", "absolute URL"},
		{"/Login", "absolute URL"},
		{"https://", "absolute URL"},
		{"https:auth.impo.com.uy", "absolute URL"},
		{"http://auth.impo.com.uy", "plain http only for loopback"},
		{"http://10.0.0.1:8080/Login", "plain http only for loopback"},
		{"http://127.0.0.2:8080/Login", "plain http only for loopback"},
		{"ftp://auth.impo.com.uy", "want https"},
		{"https://auth.impo.com.uy/", "trailing slash"},
		{"https://auth.impo.com.uy/login/", "trailing slash"},
		{"https://auth.impo.com.uy?tenant=impo", "no query"},
		{"https://auth.impo.com.uy/login?", "no query"},
		{"https://auth.impo.com.uy#x", "no fragment"},
		{"https://auth.impo.com.uy/login#", "no fragment"},
		{"https://ops@auth.impo.com.uy", "user information"},
		{"https://auth.impo.com.uy:443", "default port"},
		{"http://127.0.0.1:80/Login", "default port"},
		{"https://auth.impo.com.uy:0", "port from 1 to 65535"},
		{"https://auth.impo.com.uy:08443", "port from 1 to 65535"},
		{"https://auth.impo.com.uy:", "empty port"},
		{"https://Auth.Impo.com.uy", "lower-case"},
		{"HTTPS://auth.impo.com.uy", "lower-case"},
		{"https://auth.impo.com.uy/a b", "as a browser writes it"},
		{"https://auth.impo.com.uy/a/../login", "clean path"},
		{"https://auth.impo.com.uy//login", "clean path"},
		{"https://auth.impo.com.uy/" + strings.Repeat("a", MaxIssuer), "at most"},
	}
	for _, tt := range tests {
		err := CheckIssuer(tt.issuer)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckIssuer(%q) = %v, want it accepted", tt.issuer, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckIssuer(%q) = %v, want an error saying %q", tt.issuer, err, tt.want)
		case err != nil && strings.Contains(tt.issuer, ".") && strings.Contains(err.Error(), tt.issuer):
			t.Errorf("CheckIssuer(%q) = %v: the error repeats the value", tt.issuer, err)
		}
	}
}

// LOGIN_ISSUER is the issuer in every function; deployed, it must be
// set and https; SESSION_ISSUER, its old name, stops the process.
func TestConfigFromEnv_Issuer(t *testing.T) {
	tests := []struct {
		name     string
		deployed bool
		env      map[string]string
		want     string // the issuer, or part of the error
		ok       bool
	}{
		{"local, unset: cmd/local's default", false, nil, LocalIssuer, true},
		{"local, a loopback address", false, map[string]string{"LOGIN_ISSUER": "http://127.0.0.1:41234/Login"}, "http://127.0.0.1:41234/Login", true},
		{"local, https", false, map[string]string{"LOGIN_ISSUER": "https://auth.impo.com.uy"}, "https://auth.impo.com.uy", true},
		{"blanks around are trimmed", false, map[string]string{"LOGIN_ISSUER": " https://auth.impo.com.uy\n"}, "https://auth.impo.com.uy", true},
		{"deployed, https", true, map[string]string{"LOGIN_ISSUER": "https://login-123.southamerica-east1.run.app"}, "https://login-123.southamerica-east1.run.app", true},
		{"deployed, unset", true, nil, "environment variable LOGIN_ISSUER: set it to login's https URL", false},
		{"deployed, loopback http", true, map[string]string{"LOGIN_ISSUER": "http://127.0.0.1:8080/Login"}, "environment variable LOGIN_ISSUER: want https", false},
		{"a bad issuer", false, map[string]string{"LOGIN_ISSUER": "https://auth.impo.com.uy/"}, "environment variable LOGIN_ISSUER: want no trailing slash", false},
		{"the old name", false, map[string]string{"SESSION_ISSUER": "impo-copetes-login"}, "environment variable SESSION_ISSUER: no longer read: the issuer is now login's URL, LOGIN_ISSUER", false},
		{"the old name beside the new", true, map[string]string{"SESSION_ISSUER": "https://auth.impo.com.uy", "LOGIN_ISSUER": "https://auth.impo.com.uy"}, "SESSION_ISSUER", false},
		{"the old name, empty, is unset", false, map[string]string{"SESSION_ISSUER": ""}, LocalIssuer, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []string{"SESSION_ISSUER", "LOGIN_ISSUER", "K_SERVICE"} {
				t.Setenv(v, tt.env[v])
			}
			if tt.deployed {
				t.Setenv("K_SERVICE", "login")
			}
			c, err := ConfigFromEnv(false)
			switch {
			case tt.ok && (err != nil || c.Issuer != tt.want):
				t.Errorf("ConfigFromEnv: issuer %q, %v; want %q", c.Issuer, err, tt.want)
			case !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ConfigFromEnv: issuer %q, %v; want an error saying %q", c.Issuer, err, tt.want)
			}
		})
	}
}
