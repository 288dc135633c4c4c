package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExampleHandler(t *testing.T) {
	h, err := exampleHandler("http://127.0.0.1:9000/Login", "impo-web-dev", "http://127.0.0.1:9000/GetToken")
	if err != nil {
		t.Fatal(err)
	}
	get := func(method, path string) *http.Response {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w.Result()
	}
	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string
		body         []string // each in the body
	}{
		{"GET", "/example/", 200, "text/html; charset=utf-8", []string{
			`<html lang="es">`,
			`<meta name="impo-issuer" content="http://127.0.0.1:9000/Login">`,
			`<meta name="impo-client-id" content="impo-web-dev">`,
			`<meta name="impo-gettoken" content="http://127.0.0.1:9000/GetToken">`,
			`<script src="/example/app.js" defer></script>`,
			`id="entrar"`, `id="gettoken"`, `id="renovar"`, `id="salir"`, `role="alert"`,
		}},
		{"GET", "/example/callback", 200, "text/html; charset=utf-8", []string{`id="entrar"`}},
		{"GET", "/example/app.js", 200, "text/javascript; charset=utf-8", []string{
			`crypto.getRandomValues`, `crypto.subtle.digest("SHA-256"`, `code_challenge_method: "S256"`,
		}},
		{"GET", "/example/app.css", 200, "text/css; charset=utf-8", nil},
		{"HEAD", "/example/", 200, "text/html; charset=utf-8", nil},
		{"GET", "/example/index.html", 404, "", nil},
		{"POST", "/example/", 405, "", nil},
	} {
		resp := get(tc.method, tc.path)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != tc.contentType {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, got, tc.contentType)
		}
		for _, want := range tc.body {
			if !strings.Contains(string(body), want) {
				t.Errorf("%s %s: body lacks %q", tc.method, tc.path, want)
			}
		}
		if tc.method == "HEAD" && len(body) != 0 {
			t.Errorf("HEAD %s has a body", tc.path)
		}
		for name, want := range map[string]string{
			// No inline script, and fetch only here and at the issuer.
			"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' http://127.0.0.1:9000; form-action 'self' http://127.0.0.1:9000; frame-ancestors 'none'; base-uri 'none'",
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("%s %s: %s = %q, want %q", tc.method, tc.path, name, got, want)
			}
		}
	}
}

// The page holds no inline script or style: its CSP would block them.
func TestExamplePage_NoInlineScriptOrStyle(t *testing.T) {
	page, err := exampleFiles.ReadFile("example/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, inline := range []string{"<script>", "<style", " style=", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(string(page), inline) {
			t.Errorf("index.html has %q", inline)
		}
	}
}

func TestExampleHandler_RefusesARelativeIssuer(t *testing.T) {
	for _, issuer := range []string{"", "impo-copetes-login", "/Login"} {
		if _, err := exampleHandler(issuer, "impo-web-dev", "/GetToken"); err == nil {
			t.Errorf("issuer %q accepted", issuer)
		}
	}
}

func TestReachable(t *testing.T) {
	for host, want := range map[string]string{
		"127.0.0.1": "127.0.0.1", "0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "::1": "::1", "localhost": "localhost",
	} {
		if got := reachable(host); got != want {
			t.Errorf("reachable(%q) = %q, want %q", host, got, want)
		}
	}
}
