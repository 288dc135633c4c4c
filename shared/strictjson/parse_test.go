package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeUseNumber is what Parse must agree with: encoding/json's Decoder
// with UseNumber, as the schema library decodes.
func decodeUseNumber(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// TestParse_AgreesWithEncodingJSON: what Parse builds is what
// encoding/json decodes, escapes, surrogates and duplicate keys included,
// so that a schema sees the value any Go reader would.
func TestParse_AgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `0`, `-0`, `1.5e-3`, `-12E+7`, `true`, `false`, `null`, `""`,
		`"a\"b\\c\/\b\f\n\r\t\u00e9"`, `"ñandú"`, `"\ud83d\ude00 and 😀"`,
		`"\ud800"`, `"\udc00x"`, `"\ud800\ud800\udc00"`, `"\ud800\u0041"`, `"\uD800\uDC00"`,
		` { "a" : [ 1 , 2 , { "b" : null } ] , "c": {"d": [[], {}]} } `,
		`{"a":1,"a":{"x":2}}`, `{"\u0061":1,"a":2}`, `{"é":"\u00e9"}`,
	} {
		want, err := decodeUseNumber([]byte(in))
		if err != nil {
			t.Fatalf("encoding/json refuses %q: %v", in, err)
		}
		got, err := Parse([]byte(in), Options{}, func(*Error) {})
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Parse(%q) (-encoding/json +Parse):\n%s", in, diff)
		}
	}
}

// TestParse_ReadsOnPastRuleProblems: problems that leave the text JSON
// are each reported, in text order and at their own pointer, and the
// value is still built; without a report the first one ends the reading,
// as in Check.
func TestParse_ReadsOnPastRuleProblems(t *testing.T) {
	in := "\xEF\xBB\xBF" + `{"id":"x","a":1,"a":2,"a":3,"n":[1e999,12345678901234567890],"s":"\ud800","\udc00":0,"o":{"a":1,"a":2}}`
	var got []Error
	v, err := Parse([]byte(in), Options{IJSON: true}, func(e *Error) { got = append(got, *e) })
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []Error{
		{Kind: BOM, Msg: "starts with a UTF-8 byte order mark; remove it"},
		{Kind: DuplicateKey, Pointer: "/a", Offset: 19, Msg: `duplicate key "a"`},
		{Kind: NumberOutOfRange, Pointer: "/n/0", Offset: 36, Msg: "1e999 is too large for a double (IEEE 754)"},
		{Kind: NumberOutOfRange, Pointer: "/n/1", Offset: 42, Msg: "the integer 12345678901234567890 is outside ±9007199254740991 (2^53−1), the integers a double holds exactly"},
		{Kind: LoneSurrogate, Pointer: "/s", Offset: 69, Msg: `contains \ud800, a lone UTF-16 surrogate (half of a pair), which is not a character`},
		{Kind: LoneSurrogate, Pointer: "/\uFFFD", Offset: 78, Msg: `contains \udc00, a lone UTF-16 surrogate (half of a pair), which is not a character`},
		{Kind: DuplicateKey, Pointer: "/o/a", Offset: 99, Msg: `duplicate key "a"`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if obj, _ := v.(map[string]any); obj["id"] != "x" || obj["a"] != json.Number("3") {
		t.Errorf("value = %v, want id x and the last a", v)
	}
	_, err = Parse([]byte(in), Options{IJSON: true}, nil)
	if se := (*Error)(nil); !errors.As(err, &se) || se.Kind != BOM {
		t.Errorf("Parse without a report = %v, want the byte order mark", err)
	}
}

// TestParse_IJSON: each number and string is held to what a double and
// Unicode hold (RFC 7493 §2.1, §2.2), with a message that says which
// rule, and nothing is refused that every reader reads alike.
func TestParse_IJSON(t *testing.T) {
	tests := []struct {
		in   string
		kind Kind // 0: accepted
		msg  string
	}{
		{`9007199254740991`, 0, ""},
		{`-9007199254740991`, 0, ""},
		{`9007199254740992`, NumberOutOfRange, "the integer 9007199254740992 is outside ±9007199254740991 (2^53−1), the integers a double holds exactly"},
		{`-10000000000000000`, NumberOutOfRange, "the integer -10000000000000000 is outside ±9007199254740991 (2^53−1), the integers a double holds exactly"},
		{strings.Repeat("9", 1000), NumberOutOfRange, "the integer 9999999999999999999999999999999999999999… (1000 bytes) is outside ±9007199254740991 (2^53−1), the integers a double holds exactly"},
		{`1e20`, 0, ""},
		{`1.7976931348623157e308`, 0, ""},
		{`1.8e308`, NumberOutOfRange, "1.8e308 is too large for a double (IEEE 754)"},
		{`-1e999999`, NumberOutOfRange, "-1e999999 is too large for a double (IEEE 754)"},
		{`5e-324`, 0, ""},
		{`0.0e-999`, 0, ""},
		{`1e-400`, NumberOutOfRange, "1e-400 is too small for a double: it reads as 0"},
		{`0.` + strings.Repeat("0", 400) + `1`, NumberOutOfRange, "0.00000000000000000000000000000000000000… (403 bytes) is too small for a double: it reads as 0"},
		{`0.30000000000000004`, 0, ""},
		{`0.000123456789012345678`, NumberOutOfRange, "0.000123456789012345678 has 18 significant digits; a double holds 17"},
		{`1.` + strings.Repeat("0", 100), NumberOutOfRange, "1.00000000000000000000000000000000000000… (102 bytes) has 101 significant digits; a double holds 17"},
		{`"\ud83d\ude00"`, 0, ""},
		{`"\ud83d"`, LoneSurrogate, `contains \ud83d, a lone UTF-16 surrogate (half of a pair), which is not a character`},
		{`"\ude00\ud83d"`, LoneSurrogate, `contains \ude00, a lone UTF-16 surrogate (half of a pair), which is not a character`},
		{`"\ud83d\u0041"`, LoneSurrogate, `contains \ud83d, a lone UTF-16 surrogate (half of a pair), which is not a character`},
		{`"\uFFFD"`, 0, ""},
	}
	for _, tt := range tests {
		var got []*Error
		_, err := Parse([]byte(tt.in), Options{IJSON: true}, func(e *Error) { got = append(got, e) })
		switch {
		case err != nil:
			t.Errorf("Parse(%.40s): %v", tt.in, err)
		case tt.kind == 0 && len(got) != 0:
			t.Errorf("Parse(%.40s) reported %v, want nothing", tt.in, got[0])
		case tt.kind != 0 && (len(got) != 1 || got[0].Kind != tt.kind || got[0].Msg != tt.msg):
			t.Errorf("Parse(%.40s) reported %v, want one %v: %s", tt.in, got, tt.kind, tt.msg)
		}
		if err := Check([]byte(tt.in)); err != nil {
			t.Errorf("Check(%.40s) = %v: Check applies no I-JSON", tt.in, err)
		}
	}
}

// TestParse_MaxValues: past MaxValues the reading stops, whatever the
// size of the text, so that what is built stays bounded.
func TestParse_MaxValues(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{`[1,2]`, true}, // three values: the array and two numbers
		{`{"a":[]}`, true},
		{`[1,2,3]`, false},
		{`[{},{},{}]`, false},
	} {
		_, err := Parse([]byte(tt.in), Options{MaxValues: 3}, nil)
		var se *Error
		if tt.ok != (err == nil) || !tt.ok && (!errors.As(err, &se) || se.Kind != TooManyValues) {
			t.Errorf("Parse(%s) with at most 3 values: %v", tt.in, err)
		}
	}
}

// TestCheck_ByteOrderMark: a BOM has its own kind and says what to do.
func TestCheck_ByteOrderMark(t *testing.T) {
	err := Check([]byte("\xEF\xBB\xBF{}"))
	var se *Error
	if !errors.As(err, &se) || se.Kind != BOM || err.Error() != "starts with a UTF-8 byte order mark; remove it" {
		t.Fatalf("Check = %v, want the byte order mark named", err)
	}
}

// TestPointer_LongPathsStopAtAnAncestor: an error's pointer never passes
// 1 KiB, however long the keys, and still names a value on the way.
func TestPointer_LongPathsStopAtAnAncestor(t *testing.T) {
	long := strings.Repeat("k", 2000)
	tests := []struct {
		tokens []string
		want   string
	}{
		{[]string{"a", long, "0"}, "/a"},
		{[]string{long}, ""},
		{[]string{"a/b", "~"}, "/a~1b/~0"},
		{[]string{strings.Repeat("/", 511), "x"}, "/" + strings.Repeat("~1", 511)},
	}
	for _, tt := range tests {
		if got := Pointer(tt.tokens...); got != tt.want {
			t.Errorf("Pointer(%.20q…) = %.40q…, want %.40q…", tt.tokens, got, tt.want)
		}
	}
	err := Check([]byte(`{"` + long + `":[{"a":1,"a":2}]}`))
	var se *Error
	if !errors.As(err, &se) || se.Kind != DuplicateKey || se.Pointer != "" {
		t.Fatalf("Check = %v, want a duplicate key reported at the document", err)
	}
}

// FuzzParse: whatever the bytes, Parse accepts exactly what Check does
// when problems end the reading, builds what encoding/json decodes, and
// reports with IJSON only the kinds that leave a text JSON.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x",null,{"b":true}]}`, `{"a":1,"a":2}`, `"\ud800\udc00\ud800"`, `[1e999,-0.5e-3]`, "\xEF\xBB\xBF[]", `"\u00e9\n"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data, Options{}, nil)
		if cerr := Check(data); (err == nil) != (cerr == nil) {
			t.Fatalf("Parse = %v, Check = %v", err, cerr)
		}
		if err == nil {
			want, derr := decodeUseNumber(data)
			if derr != nil {
				t.Fatalf("Parse accepted %q, which encoding/json refuses: %v", data, derr)
			}
			if diff := cmp.Diff(want, v); diff != "" {
				t.Fatalf("Parse(%q) (-encoding/json +Parse):\n%s", data, diff)
			}
		}
		_, err = Parse(data, Options{IJSON: true}, func(e *Error) {
			switch e.Kind {
			case BOM, DuplicateKey, NumberOutOfRange, LoneSurrogate:
			default:
				t.Fatalf("reported %v (%v), which ends a reading", e, e.Kind)
			}
		})
		var se *Error
		if err != nil && (!errors.As(err, &se) || se.Kind == DuplicateKey || se.Kind == NumberOutOfRange || se.Kind == LoneSurrogate || se.Kind == BOM) {
			t.Fatalf("Parse(%q) with a report ended with %v", data, err)
		}
	})
}

var benchDoc = []byte(`{"document_id":"ley-20212","type":"ley","number":"20.212","date":"2023-11-06","title":"` +
	strings.Repeat("Rendición de cuentas ", 20) + `","text":"` + strings.Repeat("Artículo 1. Texto. ", 200) + `","metadata":{"a":[1,2,3.5]}}`)

// BenchmarkParse builds the value with I-JSON and a bound on values, as
// the document validator does; BenchmarkDecodeUseNumberBaseline is the
// encoding/json decoding it replaces.
func BenchmarkParse(b *testing.B) {
	b.SetBytes(int64(len(benchDoc)))
	for b.Loop() {
		if _, err := Parse(benchDoc, Options{IJSON: true, MaxValues: 100_000}, func(*Error) {}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeUseNumberBaseline(b *testing.B) {
	b.SetBytes(int64(len(benchDoc)))
	for b.Loop() {
		if _, err := decodeUseNumber(benchDoc); err != nil {
			b.Fatal(err)
		}
	}
}
