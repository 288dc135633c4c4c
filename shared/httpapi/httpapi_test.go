package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/shared/strictjson"
)

func TestHandler_PanicBecomes500Problem(t *testing.T) {
	h := Handler(func(http.ResponseWriter, *http.Request) error { panic("boom") })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var p Problem
	json.Unmarshal(rec.Body.Bytes(), &p)
	if rec.Code != 500 || rec.Header().Get("Content-Type") != "application/problem+json" || p.Status != 500 {
		t.Fatalf("panic: %d %s %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if strings.Contains(rec.Body.String(), "boom") {
		t.Error("the panic value reached the client")
	}
}

func TestWriteProblem(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantDetail string
		wantHeader [2]string
	}{
		{"typed error", Errorf(404, "no such thing"), 404, "no such thing", [2]string{}},
		{"retry after rounds up", &Error{Status: 503, Detail: "busy", RetryAfter: 1500 * time.Millisecond}, 503, "busy", [2]string{"Retry-After", "2"}},
		{"extra header", &Error{Status: 401, Detail: "who?", Header: http.Header{"WWW-Authenticate": {"Bearer"}}}, 401, "who?", [2]string{"WWW-Authenticate", "Bearer"}},
		{"untyped error hides its text", errors.New("db password is hunter2"), 500, "internal error", [2]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteProblem(rec, httptest.NewRequest("GET", "/", nil), tt.err)
			var p Problem
			json.Unmarshal(rec.Body.Bytes(), &p)
			if rec.Code != tt.wantStatus || p.Detail != tt.wantDetail || p.Title != http.StatusText(tt.wantStatus) {
				t.Fatalf("got %d %+v", rec.Code, p)
			}
			if tt.wantHeader[0] != "" && rec.Header().Get(tt.wantHeader[0]) != tt.wantHeader[1] {
				t.Errorf("%s = %q, want %q", tt.wantHeader[0], rec.Header().Get(tt.wantHeader[0]), tt.wantHeader[1])
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	tests := []struct {
		name   string
		remote string
		xff    []string
		hops   int
		want   string
	}{
		{"no proxy", "192.0.2.1:5555", nil, 0, "192.0.2.1"},
		{"no proxy ignores a forged header", "192.0.2.1:5555", []string{"203.0.113.9"}, 0, "192.0.2.1"},
		{"one hop", "10.0.0.1:80", []string{"203.0.113.9, 198.51.100.2"}, 1, "198.51.100.2"},
		{"two hops", "10.0.0.1:80", []string{"203.0.113.9, 198.51.100.2, 10.1.1.1"}, 2, "198.51.100.2"},
		{"hops across header lines", "10.0.0.1:80", []string{"203.0.113.9", "198.51.100.2"}, 1, "198.51.100.2"},
		{"fewer entries than hops", "10.0.0.1:80", []string{"198.51.100.2"}, 2, "10.0.0.1"},
		{"garbage entry", "10.0.0.1:80", []string{"not-an-ip"}, 1, "10.0.0.1"},
		{"IPv6 peer", "[2001:db8::1]:443", nil, 0, "2001:db8::1"},
		{"IPv4-mapped", "[::ffff:192.0.2.1]:443", nil, 0, "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, x := range tt.xff {
				r.Header.Add("X-Forwarded-For", x)
			}
			if got := ClientIP(r, tt.hops); got != tt.want {
				t.Errorf("ClientIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	tests := []struct {
		name, ct, body string
		limit          int64
		wantStatus     int
		kind           strictjson.Kind // of the cause, for a 400
	}{
		{"ok", "application/json", `{"name":"a"}`, 100, 0, 0},
		{"ok with charset", "application/json; charset=UTF-8", `{"name":"a"}`, 100, 0, 0},
		{"wrong type", "text/plain", `{"name":"a"}`, 100, 415, 0},
		{"too large", "application/json", `{"name":"aaaaaaaaaaaa"}`, 10, 413, 0},
		{"unknown field", "application/json", `{"nome":"a"}`, 100, 400, strictjson.UnknownField},
		{"duplicate key", "application/json", `{"name":"a","name":"b"}`, 100, 400, strictjson.DuplicateKey},
		{"malformed", "application/json", `{"name":`, 100, 400, strictjson.Truncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.ct)
			var b body
			err := DecodeJSON(httptest.NewRecorder(), r, tt.limit, &b)
			var he *Error
			switch {
			case tt.wantStatus == 0 && err != nil:
				t.Fatalf("DecodeJSON: %v", err)
			case tt.wantStatus != 0 && (!errors.As(err, &he) || he.Status != tt.wantStatus):
				t.Fatalf("DecodeJSON error = %v, want status %d", err, tt.wantStatus)
			}
			var se *strictjson.Error
			if tt.kind != 0 && (!errors.As(err, &se) || se.Kind != tt.kind || he.Detail != "invalid JSON body: "+se.Error()) {
				t.Fatalf("DecodeJSON error = %v, want a cause of kind %v named in the detail", err, tt.kind)
			}
		})
	}
}

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		name, ct, body string
		limit          int64
		wantStatus     int
		kind           strictjson.Kind // of the cause, for a 400
	}{
		{"ok", "application/json", `{"name":"a"}`, 100, 0, 0},
		{"ok with charset", "application/json; charset=UTF-8", `{"name":"a"}`, 100, 0, 0},
		{"exactly the limit", "application/json", `{"name":"abcd"}`, 15, 0, 0},
		{"wrong type", "text/plain", `{"name":"a"}`, 100, 415, 0},
		{"another charset", "application/json; charset=latin1", `{"name":"a"}`, 100, 415, 0},
		{"one byte over the limit", "application/json", `{"name":"abcde"}`, 15, 413, 0},
		{"unknown field", "application/json", `{"nome":"a"}`, 100, 400, strictjson.UnknownField},
		{"wrong JSON type", "application/json", `{"name":1}`, 100, 400, strictjson.WrongType},
		{"duplicate key", "application/json", `{"name":"a","name":"b"}`, 100, 400, strictjson.DuplicateKey},
		{"malformed", "application/json", `{"name":`, 100, 400, strictjson.Truncated},
		{"not an object", "application/json", `["a"]`, 100, 400, strictjson.WrongType},
	}
	for _, tt := range tests {
		for _, chunked := range []bool{false, true} {
			t.Run(tt.name+map[bool]string{true: ", chunked"}[chunked], func(t *testing.T) {
				r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
				r.Header.Set("Content-Type", tt.ct)
				if chunked {
					r.ContentLength = -1 // no length: read until the end
				}
				var name string
				err := DecodeObject(httptest.NewRecorder(), r, tt.limit, func(key []byte, v strictjson.Value) error {
					if string(key) != "name" {
						return v.UnknownField()
					}
					var ok bool
					if name, ok = v.String(); !ok {
						return v.WrongType("string")
					}
					return nil
				})
				var he *Error
				switch {
				case tt.wantStatus == 0 && err != nil:
					t.Fatalf("DecodeObject: %v", err)
				case tt.wantStatus == 0 && !strings.Contains(tt.body, `"`+name+`"`):
					t.Fatalf("name = %q, from %s", name, tt.body)
				case tt.wantStatus != 0 && (!errors.As(err, &he) || he.Status != tt.wantStatus):
					t.Fatalf("DecodeObject error = %v, want status %d", err, tt.wantStatus)
				}
				var se *strictjson.Error
				if tt.kind != 0 && (!errors.As(err, &se) || se.Kind != tt.kind || he.Detail != "invalid JSON body: "+se.Error()) {
					t.Fatalf("DecodeObject error = %v, want a cause of kind %v named in the detail", err, tt.kind)
				}
			})
		}
	}
}

// MediaType answers the usual spellings without parsing them, as it
// answers the others by parsing.
func TestMediaType(t *testing.T) {
	for ct, want := range map[string]string{
		"application/json":                    "application/json",
		"application/json; charset=utf-8":     "application/json",
		"application/JSON; Charset=\"UTF-8\"": "application/json",
		"application/json; charset=latin1":    "",
		"application/x-www-form-urlencoded":   "application/x-www-form-urlencoded",
		"text/plain":                          "text/plain",
		"":                                    "",
	} {
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("Content-Type", ct)
		if got := MediaType(r); got != want {
			t.Errorf("MediaType(%q) = %q, want %q", ct, got, want)
		}
	}
}

// SetCanonical sets what Set sets, for the keys we give it.
func TestSetCanonical(t *testing.T) {
	for _, key := range []string{"Content-Type", "X-Content-Type-Options", "Strict-Transport-Security", "Cache-Control", "Pragma"} {
		if http.CanonicalHeaderKey(key) != key {
			t.Errorf("%q is not canonical", key)
		}
		a, b := http.Header{}, http.Header{}
		a.Set(key, "v")
		SetCanonical(b, key, "v")
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%q: Set gives %v, SetCanonical %v", key, a, b)
		}
	}
}

// ReadBody reads what Content-Length announces, refuses at once what
// announces more than the limit, and reads an unannounced body to the
// limit.
func TestReadBody(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		length int64 // -1: not announced
		status int
	}{
		{"announced", "0123456789", 10, 0},
		{"empty", "", 0, 0},
		{"announced past the limit", "0123456789abcdef", 16, 413},
		{"shorter than announced", "0123456789", 12, 400},
		{"unannounced, within the limit", "0123456789", -1, 0},
		{"unannounced, past the limit", "0123456789abcdef", -1, 413},
		{"announced, large, within the limit", strings.Repeat("x", exactBody+1), exactBody + 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			r.ContentLength = tt.length
			limit := int64(12)
			if len(tt.body) > exactBody {
				limit = 2 * exactBody
			}
			got, err := ReadBody(httptest.NewRecorder(), r, limit)
			var he *Error
			switch {
			case tt.status == 0 && (err != nil || string(got) != tt.body):
				t.Fatalf("ReadBody = %q, %v; want %q", got, err, tt.body)
			case tt.status != 0 && (!errors.As(err, &he) || he.Status != tt.status):
				t.Fatalf("ReadBody error = %v, want status %d", err, tt.status)
			}
		})
	}
}
