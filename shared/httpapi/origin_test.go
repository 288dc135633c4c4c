package httpapi

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTrustedOrigin(t *testing.T) {
	allowed := []string{"https://portal.impo.test", "null"}
	tests := []struct {
		name    string
		header  []string
		browser bool
		trusted bool
	}{
		{"service client: no browser headers", nil, false, false},
		{"cross-site page", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, true, false},
		{"sibling subdomain", []string{"Origin", "https://evil.impo.test", "Sec-Fetch-Site", "same-site"}, true, false},
		{"null origin, even when listed", []string{"Origin", "null"}, true, false},
		{"fetch metadata without origin", []string{"Sec-Fetch-Mode", "navigate"}, true, false},
		{"cross-site without origin", []string{"Sec-Fetch-Site", "cross-site"}, true, false},
		{"listed origin", []string{"Origin", "https://portal.impo.test", "Sec-Fetch-Site", "same-site"}, true, true},
		{"listed origin, no fetch metadata", []string{"Origin", "https://portal.impo.test"}, true, true},
		{"listed origin differs in scheme", []string{"Origin", "http://portal.impo.test"}, true, false},
		{"same-origin page", []string{"Origin", "https://api.impo.test", "Sec-Fetch-Site", "same-origin"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			for i := 0; i+1 < len(tt.header); i += 2 {
				r.Header.Set(tt.header[i], tt.header[i+1])
			}
			if got := FromBrowser(r); got != tt.browser {
				t.Errorf("FromBrowser = %v, want %v", got, tt.browser)
			}
			if got := TrustedOrigin(r, allowed); got != tt.trusted {
				t.Errorf("TrustedOrigin = %v, want %v", got, tt.trusted)
			}
			err := CheckOrigin(r, allowed, "log in")
			var he *Error
			switch {
			case tt.trusted && err != nil:
				t.Errorf("CheckOrigin = %v, want nil", err)
			case !tt.trusted && (!errors.As(err, &he) || he.Status != 403 || he.OAuthCode != "unauthorized_client"):
				t.Errorf("CheckOrigin = %v, want a 403 unauthorized_client", err)
			}
		})
	}
}

func TestSetHSTS_OnlyOnHTTPS(t *testing.T) {
	tests := []struct {
		name  string
		tls   bool
		proto []string
		want  bool
	}{
		{"plain HTTP", false, nil, false},
		{"TLS to this process", true, nil, true},
		{"Google's front end ended TLS", false, []string{"https"}, true},
		{"front end saw HTTP", false, []string{"http"}, false},
		{"nearest proxy's value counts", false, []string{"https, http"}, false},
		{"nearest proxy's value counts, https", false, []string{"http", "HTTPS"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Handler(func(w http.ResponseWriter, r *http.Request) error {
				WriteJSON(w, struct{}{})
				return nil
			})
			r := httptest.NewRequest("GET", "/", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for _, p := range tt.proto {
				r.Header.Add("X-Forwarded-Proto", p)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			got := rec.Header().Get("Strict-Transport-Security")
			if (got == HSTS) != tt.want || (!tt.want && got != "") {
				t.Errorf("Strict-Transport-Security = %q, want it: %v", got, tt.want)
			}
		})
	}
}

// TestSetHSTS_OnErrorsAndPreflights: the policy goes on every HTTPS
// response, including failures and the preflights CORS answers itself.
func TestSetHSTS_OnErrorsAndPreflights(t *testing.T) {
	failing := Handler(func(http.ResponseWriter, *http.Request) error { return Errorf(403, "no") })
	h := CORS{Origins: []string{"https://portal.impo.test"}, Methods: []string{"POST"}}.Wrap(failing)
	for _, r := range []*http.Request{
		httptest.NewRequest("POST", "/", nil),
		httptest.NewRequest("OPTIONS", "/", nil),
	} {
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("Origin", "https://portal.impo.test")
		r.Header.Set("Access-Control-Request-Method", "POST")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Header().Get("Strict-Transport-Security") != HSTS {
			t.Errorf("%s answered %d without HSTS", r.Method, rec.Code)
		}
	}
}
