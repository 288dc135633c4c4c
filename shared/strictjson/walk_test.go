package strictjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// build makes from Walk's tokens the value Parse builds, and checks on
// the way that Chunks and Unquote read each string alike.
type builder struct {
	data  []byte // the text walked
	stack []any  // open objects (map) and arrays (*[]any)
	keys  []string
	out   any
	err   error
}

func (b *builder) visit(t Token) error {
	var v any
	switch t.Kind {
	case BeginObject:
		b.stack = append(b.stack, map[string]any{})
		return nil
	case BeginArray:
		b.stack = append(b.stack, &[]any{})
		return nil
	case EndObject, EndArray:
		v = b.stack[len(b.stack)-1]
		b.stack = b.stack[:len(b.stack)-1]
		if a, ok := v.(*[]any); ok {
			v = *a
		}
	case Key:
		b.keys = append(b.keys, b.text(t))
		return nil
	case String:
		v = b.text(t)
	case Number:
		b.text(t) // for its offset
		v = json.Number(t.Raw)
	case True, False:
		v = t.Kind == True
	case Null:
		v = nil
	}
	if len(b.stack) == 0 {
		b.out = v
		return nil
	}
	switch top := b.stack[len(b.stack)-1].(type) {
	case map[string]any:
		top[b.keys[len(b.keys)-1]] = v
		b.keys = b.keys[:len(b.keys)-1]
	case *[]any:
		*top = append(*top, v)
	}
	return nil
}

func (b *builder) text(t Token) string {
	if b.data != nil && string(b.data[t.Offset:t.Offset+len(t.Raw)]) != string(t.Raw) {
		b.err = fmt.Errorf("%q is not at offset %d", t.Raw, t.Offset)
	}
	var s strings.Builder
	for plain, r := range t.Chunks() {
		switch {
		case plain != nil && (r >= 0 || len(plain) == 0 || strings.Contains(string(plain), `\`)):
			b.err = fmt.Errorf("chunk %q, %d", plain, r)
		case plain != nil:
			s.Write(plain)
		default:
			s.WriteRune(r)
		}
	}
	if s.String() != t.Unquote() {
		b.err = fmt.Errorf("chunks read %q, Unquote %q", s.String(), t.Unquote())
	}
	if !t.Escaped && s.String() != string(t.Raw) {
		b.err = fmt.Errorf("%q is not escaped but reads as %q", t.Raw, s.String())
	}
	return s.String()
}

func TestWalk_Tokens(t *testing.T) {
	var got []string
	err := Walk([]byte(` {"a\u00e9" : [1, "x\n", true, false, null, {}], "b": -2.5e3} `), Options{}, func(t Token) error {
		got = append(got, fmt.Sprintf("%d %s %v", t.Kind, t.Raw, t.Escaped))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprint(BeginObject, "  false"), fmt.Sprint(Key, ` a\u00e9 true`), fmt.Sprint(BeginArray, "  false"),
		fmt.Sprint(Number, " 1 false"), fmt.Sprint(String, ` x\n true`), fmt.Sprint(True, "  false"),
		fmt.Sprint(False, "  false"), fmt.Sprint(Null, "  false"), fmt.Sprint(BeginObject, "  false"),
		fmt.Sprint(EndObject, "  false"), fmt.Sprint(EndArray, "  false"), fmt.Sprint(Key, " b false"),
		fmt.Sprint(Number, " -2.5e3 false"), fmt.Sprint(EndObject, "  false"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tokens (-want +got):\n%s", diff)
	}
}

func TestWalk_VisitErrorEndsTheReading(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := Walk([]byte(`[1,2,3]`), Options{}, func(t Token) error {
		if n++; t.Kind == Number {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Fatalf("Walk = %v after %d tokens, want stop after 2", err, n)
	}
}

// TestWalk_RuleProblemsEndTheReading: what Parse reports and reads on
// past, Walk refuses, with the same kind.
func TestWalk_RuleProblemsEndTheReading(t *testing.T) {
	tests := map[string]Kind{
		`{"a":1,"a":2}`:          DuplicateKey,
		`{"a":1,"\u0061":2}`:     DuplicateKey,
		"\xEF\xBB\xBF{}":         BOM,
		`[1e999]`:                NumberOutOfRange,
		`["\ud800"]`:             LoneSurrogate,
		`{"\udc00":1}`:           LoneSurrogate,
		`[1,2,3,4]`:              TooManyValues,
		`{"k":"` + "\xff" + `"}`: InvalidUTF8,
	}
	for in, kind := range tests {
		err := Walk([]byte(in), Options{IJSON: true, MaxValues: 4}, func(Token) error { return nil })
		var se *Error
		if !errors.As(err, &se) || se.Kind != kind {
			t.Errorf("Walk(%q) = %v, want %v", in, err, kind)
		}
	}
}

// TestCheck_ManyKeysStillFindDuplicates: past the few keys compared one
// by one, duplicates are looked up in a set, escaped or not.
func TestCheck_ManyKeysStillFindDuplicates(t *testing.T) {
	for _, n := range []int{fewKeys - 1, fewKeys, fewKeys + 1, 3 * fewKeys} {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		ok := b.String() + `"z":0}`
		if err := Check([]byte(ok)); err != nil {
			t.Errorf("%d keys: %v", n, err)
		}
		for _, dup := range []string{`"k0"`, `"k\u0030"`, fmt.Sprintf(`"k%d"`, n-1)} {
			err := Check([]byte(b.String() + dup + `:0}`))
			var se *Error
			if !errors.As(err, &se) || se.Kind != DuplicateKey {
				t.Errorf("%d keys, then %s again: %v", n, dup, err)
			}
		}
	}
}

// TestPointer_LongEscapedKeyIsNotDecodedWhole: a pointer through a key of
// a megabyte, escaped, names its parent and decodes no more than fits.
func TestPointer_LongEscapedKeyIsNotDecodedWhole(t *testing.T) {
	key := strings.Repeat(`\u00e9`, 1<<20)
	err := Check([]byte(`{"a":{"` + key + `":{"b":1,"b":2}}}`))
	var se *Error
	if !errors.As(err, &se) || se.Pointer != "/a" {
		t.Fatalf("Check = %v, want a duplicate under /a", err)
	}
	err = Check([]byte(`{"a/\u00e9~":{"b":1,"b":2}}`))
	if !errors.As(err, &se) || se.Pointer != "/a~1é~0/b" {
		t.Fatalf("Check = %v, want a duplicate at /a~1é~0/b", err)
	}
}

// FuzzWalk: Walk accepts what Parse accepts with no report, refuses with
// the same kind what it refuses, and its tokens make the value Parse
// builds; each string's Chunks read as its Unquote.
func FuzzWalk(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x",null,{"b":true}]}`, `{"a":1,"a":2}`, `"\ud800\udc00\ud800"`, `[1e999,-0.5e-3]`,
		"\xEF\xBB\xBF[]", `"\u00e9\n\/\"\\"`, `{"\u0061":1,"a":2}`, `"` + strings.Repeat("é", 20) + `\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o := Options{IJSON: true, MaxValues: 50}
		want, perr := Parse(data, o, nil)
		b := &builder{data: data}
		err := Walk(data, o, b.visit)
		var pe, we *Error
		if errors.As(perr, &pe) != errors.As(err, &we) || (perr == nil) != (err == nil) || pe != nil && pe.Kind != we.Kind {
			t.Fatalf("Walk(%q) = %v, Parse = %v", data, err, perr)
		}
		if b.err != nil {
			t.Fatal(b.err)
		}
		if err == nil {
			if diff := cmp.Diff(want, b.out); diff != "" {
				t.Fatalf("Walk(%q) built (-Parse +Walk):\n%s", data, diff)
			}
		}
		if utf8.Valid(data) && len(data) < 200 && !strings.ContainsAny(string(data), "\"\\") {
			// A string of any valid text but quotes and backslashes: as written.
			if s := string(data); !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) {
				var got string
				if Walk([]byte(`"`+s+`"`), Options{}, func(t Token) error { got = t.Unquote(); return nil }) != nil || got != s {
					t.Fatalf("%q read as %q", s, got)
				}
			}
		}
	})
}

func BenchmarkWalk(b *testing.B) {
	b.SetBytes(int64(len(benchDoc)))
	for b.Loop() {
		if err := Walk(benchDoc, Options{IJSON: true, MaxValues: 100_000}, func(Token) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
