package strictjson

import (
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type login struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means success
	}{
		{"ok", `{"username":"ana","password":"x"}`, ""},
		{"invalid UTF-8", "{\"username\":\"an\xffa\"}", "not valid UTF-8 (first bad byte at offset 15)"},
		{"duplicate key", `{"username":"ana","username":"root"}`, `/username: duplicate key "username"`},
		{"nested duplicate", `{"a":[{"k":1,"k":2}]}`, `/a/0/k: duplicate key`},
		{"unknown field", `{"username":"ana","admin":true}`, `unknown field "admin"`},
		{"trailing data", `{"username":"ana"} {}`, "unexpected data after"},
		{"empty", ``, "empty or ends too early"},
		{"truncated", `{"username":`, "ends too early"},
		{"syntax", `{"username" "ana"}`, "malformed JSON"},
		{"wrong type", `{"username":1}`, "/username: want a JSON string, got number"},
		{"not an object", `[1]`, "want a JSON struct, got array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v login
			err := Decode([]byte(tt.in), &v)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Decode error = %v, want *Error", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Decode error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheck_KeyWithSlashIsEscapedInPointer(t *testing.T) {
	err := Check([]byte(`{"a/b~":{"x":1,"x":2}}`))
	var se *Error
	if !errors.As(err, &se) || se.Pointer != "/a~1b~0/x" {
		t.Fatalf("Check error = %v, want pointer /a~1b~0/x", err)
	}
}
