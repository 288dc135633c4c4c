package login

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"
	"sync"
)

// The hosted pages are server-rendered, in Spanish, with no script and no
// asset from anywhere: one HTML document with its small stylesheet inline.
// The Content-Security-Policy admits that stylesheet by its hash and
// nothing else, so that an injection that slipped past html/template's
// escaping could still neither run code nor load anything.
var (
	//go:embed page/page.html
	pageHTML string
	//go:embed page/style.css
	pageCSS string

	// pageTemplate is parsed when a page is first shown, not at start:
	// most instances only answer token requests.
	pageTemplate = sync.OnceValue(func() *template.Template {
		return template.Must(template.New("page").Parse(pageHTML))
	})
	// styleSource is the CSP source that admits pageCSS as the content of
	// the page's one <style> element (CSP3 §8.4: the hash of the element's
	// text, exactly as sent).
	styleSource = "'sha256-" + func() string {
		sum := sha256.Sum256([]byte(pageCSS))
		return base64.StdEncoding.EncodeToString(sum[:])
	}() + "'"
)

// page is what a hosted page shows.
type page struct {
	Title   string
	Client  string // the application the person is logging in to, if known
	Message string // for the person: an error, in an element with role="alert"
	Notice  string // for the person: news that is not an error (role="status")
	Detail  string // for the client's developer, when the request is broken
	// Form shows the login form, posting to Action the request's Hidden
	// parameters, the CSRF token and what the person types.
	Form     bool
	Action   string
	Hidden   []field
	CSRF     string
	Username string
}

type field struct{ Name, Value string }

// writePage renders p with status. formAction is the origin a form on the
// page may reach besides this one (the client's redirect URI's origin:
// Chrome applies form-action to the redirect that answers the POST), or
// "" for none. The caller has set the headers every answer of the
// endpoint carries (securityHeaders).
func writePage(w http.ResponseWriter, status int, p page, formAction string) {
	var buf bytes.Buffer
	data := struct {
		page
		CSS template.CSS
	}{p, template.CSS(pageCSS)}
	if err := pageTemplate().Execute(&buf, data); err != nil {
		// Only a bug in the template gets here: the handler's recovery
		// answers 500.
		panic("render the login page: " + err.Error())
	}
	h := w.Header()
	actions := "'none'"
	if p.Form {
		actions = strings.TrimSpace("'self' " + formAction)
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+styleSource+
		"; form-action "+actions+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// securityHeaders are set on every answer of the authorization endpoint,
// pages and redirects alike: nothing is cached (a page holds a CSRF token,
// a redirect a code), no Referer carries the request's parameters to
// another site, no frame shows the page (clickjacking; frame-ancestors
// says it to browsers that read CSP), no content is sniffed.
func securityHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
}
