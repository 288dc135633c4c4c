package httpapi

import (
	"fmt"
	"net/http"
	"slices"
)

// FromBrowser reports whether r carries what browsers add on their own and
// other clients have no reason to send: an Origin header (every browser
// sends it on a POST) or Fetch Metadata (Sec-Fetch-Site and its siblings).
func FromBrowser(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" ||
		r.Header.Get("Sec-Fetch-Mode") != "" || r.Header.Get("Sec-Fetch-Dest") != ""
}

// TrustedOrigin reports whether a browser vouches that r comes from a page
// the backend trusts: Sec-Fetch-Site: same-origin (a page served from this
// very host), or an Origin in allowed. A page cannot forge either header,
// and a client outside a browser that forges them holds no victim's
// cookie. Origin "null" (sandboxed frames, cross-origin redirects, file:
// pages) is never trusted, even if listed. Without either header, nothing
// vouches for the request: false.
func TrustedOrigin(r *http.Request, allowed []string) bool {
	if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return true
	}
	o := r.Header.Get("Origin")
	return o != "" && o != "null" && slices.Contains(allowed, o)
}

// CheckOrigin is TrustedOrigin as an error: nil when r's origin is trusted,
// else a 403 saying that a browser page there may not do what: "log in",
// "use the session cookie".
func CheckOrigin(r *http.Request, allowed []string, what string) error {
	if TrustedOrigin(r, allowed) {
		return nil
	}
	detail := fmt.Sprintf("a request without Origin (or Sec-Fetch-Site: same-origin) may not %s", what)
	if o := r.Header.Get("Origin"); o != "" {
		detail = fmt.Sprintf("origin %q may not %s: only this origin and those in CORS_ALLOWED_ORIGINS may", o, what)
	}
	// unauthorized_client (RFC 6749 §5.2): the page is not a client that
	// may use this grant; problem responses ignore the code.
	return &Error{Status: http.StatusForbidden, OAuthCode: "unauthorized_client", Detail: detail}
}
