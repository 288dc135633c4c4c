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
		kind    Kind
	}{
		{"ok", `{"username":"ana","password":"x"}`, "", 0},
		{"invalid UTF-8", "{\"username\":\"an\xffa\"}", "not valid UTF-8 (first bad byte at offset 15)", InvalidUTF8},
		{"duplicate key", `{"username":"ana","username":"root"}`, `/username: duplicate key "username"`, DuplicateKey},
		{"nested duplicate", `{"a":[{"k":1,"k":2}]}`, `/a/0/k: duplicate key`, DuplicateKey},
		{"unknown field", `{"username":"ana","admin":true}`, `unknown field "admin"`, UnknownField},
		{"trailing data", `{"username":"ana"} {}`, "unexpected data after", TrailingData},
		{"empty", ``, "empty or ends too early", Truncated},
		{"truncated", `{"username":`, "ends too early", Truncated},
		{"syntax", `{"username" "ana"}`, "malformed JSON", Syntax},
		{"wrong type", `{"username":1}`, "/username: want a JSON string, got number", WrongType},
		{"not an object", `[1]`, "want a JSON struct, got array", WrongType},
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
			if se.Kind != tt.kind {
				t.Errorf("Decode error %q has kind %v, want %v", err, se.Kind, tt.kind)
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
