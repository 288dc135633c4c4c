// Package httpapi is the HTTP edge every function shares: bounded and
// strictly parsed request bodies, RFC 9457 problem responses, panic
// recovery, client addresses, CORS, origin checks and HSTS.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"impo.com.uy/copetes/backend/shared/logging"
	"impo.com.uy/copetes/backend/shared/strictjson"
)

// Error is a failure with the HTTP status and the detail a client may see.
// Err, if set, is the cause: it is logged, never sent.
type Error struct {
	Status     int
	Detail     string
	Err        error
	RetryAfter time.Duration // sets Retry-After when positive
	Header     http.Header   // extra response headers, such as WWW-Authenticate
	// OAuthCode is the RFC 6749 §5.2 error code a token endpoint answers
	// with; when empty, one is chosen from Status.
	OAuthCode string
}

// Error implements error; it includes the cause, for logs.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Detail, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Detail)
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Header builds response headers from name, value pairs, with canonical
// names so that Get and Add on the result behave.
func Header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// Errorf returns an *Error with a formatted detail.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Detail: fmt.Sprintf(format, args...)}
}

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type   string `json:"type,omitempty"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Errors lists field-level problems (validate uses it).
	Errors any `json:"errors,omitempty"`
}

// WriteProblem answers with problem JSON for err. An *Error gives its status
// and detail; anything else is a 500 whose cause is logged, not sent.
func WriteProblem(w http.ResponseWriter, r *http.Request, err error) {
	var he *Error
	if !errors.As(err, &he) {
		he = &Error{Status: http.StatusInternalServerError, Detail: "internal error", Err: err}
	}
	applyHeaders(w, he)
	LogFailure(r, he)
	WriteJSONStatus(w, "application/problem+json", he.Status, Problem{
		Title:  http.StatusText(he.Status),
		Status: he.Status,
		Detail: he.Detail,
	})
}

func applyHeaders(w http.ResponseWriter, he *Error) {
	for k, vs := range he.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if he.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds(he.RetryAfter)))
	}
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// LogFailure logs what a 5xx answer does not show its client: a warning
// for an outage (503), an error otherwise. Handlers that answer with a
// page of their own, not a problem, call it too.
func LogFailure(r *http.Request, he *Error) {
	if he.Status < 500 {
		return
	}
	attrs := []any{"status", he.Status, "method", r.Method, "path", r.URL.Path}
	if he.Err != nil {
		attrs = append(attrs, "error", he.Err.Error())
	}
	level := slog.LevelError
	if he.Status == http.StatusServiceUnavailable {
		level = slog.LevelWarn
	}
	slog.Log(r.Context(), level, he.Detail, attrs...)
}

// WriteJSON answers 200 with v as JSON.
func WriteJSON(w http.ResponseWriter, v any) {
	WriteJSONStatus(w, "application/json", http.StatusOK, v)
}

// WriteJSONStatus answers status with v as JSON of the given content type.
func WriteJSONStatus(w http.ResponseWriter, contentType string, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own response types reach here; a failure is a bug.
		panic(fmt.Sprintf("encode response: %v", err))
	}
	SetCanonical(w.Header(), "Content-Type", contentType)
	SetCanonical(w.Header(), "X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// SetCanonical is http.Header.Set for a key already in canonical form
// ("Content-Type", as textproto.CanonicalMIMEHeaderKey writes it): Set
// works the canonical form out again on every call, on every response.
func SetCanonical(h http.Header, key, value string) {
	h[key] = []string{value}
}

// WriteJSONText answers 200 with a JSON text that the caller encoded,
// final newline included, given in parts written one after the other:
// for a response mostly prepared once and sent many times.
func WriteJSONText(w http.ResponseWriter, parts ...[]byte) {
	SetCanonical(w.Header(), "Content-Type", "application/json")
	SetCanonical(w.Header(), "X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	for _, p := range parts {
		w.Write(p)
	}
}

// WriteOAuthError answers a token endpoint's failure as RFC 6749 §5.2 JSON
// ({"error","error_description"}), never cached.
func WriteOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	var he *Error
	if !errors.As(err, &he) {
		he = &Error{Status: http.StatusInternalServerError, Detail: "internal error", Err: err}
	}
	code := he.OAuthCode
	if code == "" {
		switch he.Status {
		case http.StatusUnauthorized:
			code = "invalid_client"
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			code = "temporarily_unavailable"
		case http.StatusInternalServerError:
			code = "server_error"
		default:
			code = "invalid_request"
		}
	}
	applyHeaders(w, he)
	LogFailure(r, he)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	WriteJSONStatus(w, "application/json", he.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, he.Detail})
}

// Handler adapts a function that returns an error: a nil error means the
// function wrote its response; an error becomes a problem response.
// Panics become a 500 problem and an ERROR log instead of a dropped
// connection, and the request's trace reaches every log record.
func Handler(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return handler(fn, WriteProblem)
}

// OAuthHandler is Handler for token endpoints: errors are RFC 6749 JSON.
func OAuthHandler(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return handler(fn, WriteOAuthError)
}

func handler(fn func(http.ResponseWriter, *http.Request) error, write func(http.ResponseWriter, *http.Request, error)) http.Handler {
	return logging.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetHSTS(w, r)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				slog.ErrorContext(r.Context(), "panic while serving a request",
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()), "path", r.URL.Path)
				write(w, r, &Error{Status: http.StatusInternalServerError, Detail: "internal error"})
			}
		}()
		if err := fn(w, r); err != nil {
			write(w, r, err)
		}
	}))
}

// HSTS is the Strict-Transport-Security policy (RFC 6797) of every HTTPS
// response: a browser that saw it uses only HTTPS with this host, and its
// subdomains, for a year, so that no one on the network can strip TLS
// from a later visit and read the session cookie or a password.
const HSTS = "max-age=31536000; includeSubDomains"

// SetHSTS adds Strict-Transport-Security when r arrived over HTTPS: over
// TLS to this process, or with X-Forwarded-Proto: https from the front end
// that ended TLS (Google's, in front of every Cloud Function). That header
// need not come from a trusted proxy: a forged one only adds the policy to
// a plain-HTTP response, which browsers must ignore (RFC 6797 §8.1).
func SetHSTS(w http.ResponseWriter, r *http.Request) {
	if r.TLS != nil || forwardedHTTPS(r) {
		SetCanonical(w.Header(), "Strict-Transport-Security", HSTS)
	}
}

// forwardedHTTPS reads the scheme the nearest proxy saw: the last value of
// X-Forwarded-Proto.
func forwardedHTTPS(r *http.Request) bool {
	vals := r.Header.Values("X-Forwarded-Proto")
	if len(vals) == 0 {
		return false
	}
	last := vals[len(vals)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}

// CheckMethod returns a 405 error, with Allow set, unless r's method is one
// of allowed.
func CheckMethod(w http.ResponseWriter, r *http.Request, allowed ...string) error {
	for _, m := range allowed {
		if r.Method == m {
			return nil
		}
	}
	return &Error{
		Status: http.StatusMethodNotAllowed,
		Detail: fmt.Sprintf("method %s is not allowed here; use %s", r.Method, strings.Join(allowed, " or ")),
		Header: Header("Allow", strings.Join(allowed, ", ")),
	}
}

// MediaType returns r's Content-Type media type, lower-cased, without
// parameters ("" if absent or unparseable).
func MediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	switch ct { // what clients send, answered without parsing
	case "application/json", "application/x-www-form-urlencoded":
		return ct
	case "application/json; charset=utf-8":
		return "application/json"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "" // we only speak UTF-8 (RFC 8259 §8.1)
	}
	return mt
}

// UnsupportedMediaType is the 415 error naming the accepted types.
func UnsupportedMediaType(r *http.Request, accepted ...string) *Error {
	got := r.Header.Get("Content-Type")
	if got == "" {
		got = "none"
	}
	return Errorf(http.StatusUnsupportedMediaType,
		"Content-Type %q is not accepted; send %s (UTF-8)", got, strings.Join(accepted, " or "))
}

// exactBody is the largest announced body that ReadBody reads into a
// buffer of its size at once. A larger one grows its buffer as its bytes
// arrive: a client that announces megabytes and sends nothing holds no
// more memory than it sent.
const exactBody = 64 << 10

// ReadBody reads at most limit bytes of r's body; a longer body is a 413.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	tooLarge := Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", limit)
	switch {
	case r.ContentLength > limit:
		return nil, tooLarge
	case r.ContentLength >= 0 && r.ContentLength <= exactBody:
		// net/http ends the body at its Content-Length: read that much,
		// into a buffer of that size.
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, &Error{Status: http.StatusBadRequest, Detail: "could not read the request body", Err: err}
		}
		return body, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		return nil, &Error{Status: http.StatusBadRequest, Detail: "could not read the request body", Err: err}
	}
	return body, nil
}

// DecodeObject reads a JSON object body of at most limit bytes in one
// pass, strictly (strictjson.Object): Content-Type application/json (else
// 415), valid UTF-8, one object, no duplicate keys (else 400 saying
// which). member gets each member; an error it returns is a 400 whose
// detail it is, and whose Err it stays, so that a caller can branch on a
// *strictjson.Error's Kind as with DecodeJSON.
func DecodeObject(w http.ResponseWriter, r *http.Request, limit int64, member func(key []byte, v strictjson.Value) error) error {
	if MediaType(r) != "application/json" {
		return UnsupportedMediaType(r, "application/json")
	}
	body, err := ReadBody(w, r, limit)
	if err != nil {
		return err
	}
	if err := strictjson.Object(body, member); err != nil {
		return &Error{Status: http.StatusBadRequest, Detail: fmt.Sprintf("invalid JSON body: %v", err), Err: err}
	}
	return nil
}

// DecodeJSON reads a JSON body of at most limit bytes into v, strictly:
// Content-Type application/json (else 415), valid UTF-8, one value, no
// duplicate keys, no unknown fields (else 400 saying which, whose Err is
// the *strictjson.Error).
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if MediaType(r) != "application/json" {
		return UnsupportedMediaType(r, "application/json")
	}
	body, err := ReadBody(w, r, limit)
	if err != nil {
		return err
	}
	if err := strictjson.Decode(body, v); err != nil {
		// The cause stays reachable, so a caller can branch on its Kind.
		return &Error{Status: http.StatusBadRequest, Detail: fmt.Sprintf("invalid JSON body: %v", err), Err: err}
	}
	return nil
}

// Form is a parsed application/x-www-form-urlencoded body.
type Form url.Values

// Get returns the value of key ("" if absent).
func (f Form) Get(key string) string { return url.Values(f).Get(key) }

// ParseForm reads a form body of at most limit bytes. Parameters may not
// repeat (RFC 6749 §3.1) and values must be valid UTF-8.
func ParseForm(w http.ResponseWriter, r *http.Request, limit int64) (Form, error) {
	if MediaType(r) != "application/x-www-form-urlencoded" {
		return nil, UnsupportedMediaType(r, "application/x-www-form-urlencoded")
	}
	body, err := ReadBody(w, r, limit)
	if err != nil {
		return nil, err
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, "malformed form body: %v", err)
	}
	for k, vs := range vals {
		if len(vs) > 1 {
			return nil, Errorf(http.StatusBadRequest, "form parameter %q appears more than once", k)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(vs[0]) {
			return nil, Errorf(http.StatusBadRequest, "form parameter is not valid UTF-8")
		}
	}
	return Form(vals), nil
}
