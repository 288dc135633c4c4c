package main

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
)

// The example page: a browser client of login for the dev client,
// logging in with the authorization code flow and PKCE (example/app.js).
// cmd/local serves it under /example/, a path no function has, so that no
// deployed function ever serves it.
//
//go:embed example
var exampleFiles embed.FS

var examplePage = template.Must(template.ParseFS(exampleFiles, "example/index.html"))

// exampleHandler serves the page at /example/ and at its callback, and
// its script and style. The page learns the issuer, the client id and
// GetToken's address from <meta> elements filled here: a script's text
// stays constant, as the Content-Security-Policy wants ('self', no inline
// script).
func exampleHandler(issuer, clientID, getToken string) (http.Handler, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("LOGIN_ISSUER %q is not an absolute URL", issuer)
	}
	var page bytes.Buffer
	if err := examplePage.Execute(&page, struct{ Issuer, ClientID, GetToken string }{issuer, clientID, getToken}); err != nil {
		return nil, err
	}
	script, err := exampleFiles.ReadFile("example/app.js")
	if err != nil {
		return nil, err
	}
	style, err := exampleFiles.ReadFile("example/app.css")
	if err != nil {
		return nil, err
	}
	// fetch reaches the token and revocation endpoints at the issuer and
	// GetToken here; the page navigates to the issuer, which CSP does not
	// restrict, and posts the logout form there, which comes back here.
	issuerOrigin := u.Scheme + "://" + u.Host
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' " + issuerOrigin +
		"; form-action 'self' " + issuerOrigin + "; frame-ancestors 'none'; base-uri 'none'"
	files := map[string]struct {
		contentType string
		body        []byte
	}{
		"/example/":         {"text/html; charset=utf-8", page.Bytes()},
		"/example/callback": {"text/html; charset=utf-8", page.Bytes()}, // the script tells them apart
		"/example/app.js":   {"text/javascript; charset=utf-8", script},
		"/example/app.css":  {"text/css; charset=utf-8", style},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// The callback's address holds the code until the script drops it.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store") // a new build's script at once
		if r.Method == http.MethodGet {
			w.Write(f.body)
		}
	}), nil
}
