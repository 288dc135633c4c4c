package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheck_AgreesWithEncodingJSON(t *testing.T) {
	valid := []string{
		`{}`, `[]`, `0`, `-0`, `1.5e-3`, `-12E+7`, `"a\"b\\c\/\b\f\n\r\t\u00e9"`, `true`, `false`, `null`,
		` { "a" : [ 1 , 2 , { "b" : null } ] } `, `"ñandú"`, `[[[[]]]]`, `{"a":{"a":{"a":1}}}`,
	}
	invalid := []string{
		`{`, `[1,]`, `{"a":1,}`, `01`, `1.`, `-`, `1e`, `.5`, `+1`, `tru`, `nul`, `"\x"`, `"\u12"`, `"\u12G4"`,
		"\"a\tb\"", `{"a" 1}`, `{1:2}`, `[1 2]`, `"unterminated`, `{"a":1}}`, `NaN`, `'a'`,
	}
	for _, in := range valid {
		if err := Check([]byte(in)); err != nil || !json.Valid([]byte(in)) {
			t.Errorf("Check(%q) = %v, json.Valid = %v; want both to accept", in, err, json.Valid([]byte(in)))
		}
	}
	for _, in := range invalid {
		if err := Check([]byte(in)); err == nil || json.Valid([]byte(in)) {
			t.Errorf("Check(%q) = %v, json.Valid = %v; want both to refuse", in, err, json.Valid([]byte(in)))
		}
	}
}

func TestCheck_DuplicateKeys(t *testing.T) {
	tests := []struct{ in, ptr string }{
		{`{"a":1,"a":2}`, "/a"},
		{`{"a":1,"\u0061":2}`, "/a"}, // the same key, escaped
		{`{"x":[{"k":1},{"k":1,"k":2}]}`, "/x/1/k"},
		{`{"a/b":{"c~":0,"c~":1}}`, "/a~1b/c~0"},
	}
	for _, tt := range tests {
		err := Check([]byte(tt.in))
		var se *Error
		if !errors.As(err, &se) || se.Pointer != tt.ptr || !strings.Contains(se.Msg, "duplicate key") || se.Kind != DuplicateKey {
			t.Errorf("Check(%q) = %v, want a duplicate key at %s", tt.in, err, tt.ptr)
		}
	}
	if err := Check([]byte(`[{"a":1},{"a":2}]`)); err != nil {
		t.Errorf("the same key in two objects: %v", err)
	}
}

func TestCheck_DeepNestingIsRefused(t *testing.T) {
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	var se *Error
	if err := Check([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested more than") || !errors.As(err, &se) || se.Kind != TooDeep {
		t.Fatalf("Check of %d nested arrays: %v", maxDepth+1, err)
	}
	ok := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if err := Check([]byte(ok)); err != nil {
		t.Fatalf("Check of %d nested arrays: %v", maxDepth, err)
	}
}

// FuzzCheck: Check never accepts what encoding/json refuses, and refuses
// valid JSON only for a duplicate key, deep nesting or invalid UTF-8
// (which encoding/json's Valid lets through).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x",null]}`, `{"a":1,"a":2}`, `"\u00e9"`, `[`, `1e5`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data)
		if err == nil && !json.Valid(data) {
			t.Fatalf("Check accepted %q, which encoding/json refuses", data)
		}
		var se *Error
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("Check(%q) = %v, not an *Error", data, err)
		}
		if err != nil && json.Valid(data) && se.Kind != DuplicateKey && se.Kind != TooDeep && se.Kind != InvalidUTF8 {
			t.Fatalf("Check refused valid JSON %q: %v (%v)", data, err, se.Kind)
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	doc := []byte(`{"document_id":"ley-20212","type":"ley","number":"20.212","date":"2023-11-06","title":"` +
		strings.Repeat("Rendición de cuentas ", 20) + `","text":"` + strings.Repeat("Artículo 1. Texto. ", 200) + `","metadata":{"a":[1,2,3]}}`)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if err := Check(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalBaseline(b *testing.B) {
	doc := []byte(`{"document_id":"ley-20212","type":"ley","number":"20.212","date":"2023-11-06","title":"` +
		strings.Repeat("Rendición de cuentas ", 20) + `","text":"` + strings.Repeat("Artículo 1. Texto. ", 200) + `","metadata":{"a":[1,2,3]}}`)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		var v map[string]any
		if err := json.Unmarshal(doc, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCheck_Kinds: each problem Check finds has its Kind, and the place
// (pointer and byte offset) a caller needs to show it, whatever the
// message says.
func TestCheck_Kinds(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		kind   Kind
		ptr    string
		offset int64
	}{
		{"character out of place", `{"a" 1}`, Syntax, "", 5},
		{"bad escape", `["\x"]`, Syntax, "", 2},
		{"raw control character", "[\"a\x01\"]", Syntax, "", 3},
		{"bad literal", `[tru]`, Syntax, "", 1},
		{"bad number", `[1.]`, Syntax, "", 3},
		{"empty", ``, Truncated, "", 0},
		{"ends inside an object", `{"a":`, Truncated, "", 5},
		{"ends inside a string", `["ab`, Truncated, "", 4},
		{"invalid UTF-8", "[\"a\xffb\"]", InvalidUTF8, "", 3},
		{"too deep", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), TooDeep, "/0", maxDepth},
		{"too deep in an object", `{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`, TooDeep, "/a", 5 + maxDepth - 1},
		{"trailing data", `{} {}`, TrailingData, "", 3},
		{"duplicate key", `{"a":1,"b":{"c":1,"c":2}}`, DuplicateKey, "/b/c", 18},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.in))
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Check = %v, want an *Error", err)
			}
			if se.Kind != tt.kind || se.Pointer != tt.ptr || se.Offset != tt.offset {
				t.Errorf("Check = %v: kind %v, pointer %q, offset %d; want %v, %q, %d", err, se.Kind, se.Pointer, se.Offset, tt.kind, tt.ptr, tt.offset)
			}
		})
	}
}
