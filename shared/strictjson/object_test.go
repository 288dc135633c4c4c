package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// members reads data with Object and returns each member's key and text.
func members(data []byte) ([][2]string, error) {
	var got [][2]string
	err := Object(data, func(key []byte, v Value) error {
		got = append(got, [2]string{string(key), string(v.Text())})
		return nil
	})
	return got, err
}

func TestObject_HandsOverEachMember(t *testing.T) {
	in := ` { "s" : "a\"b" , "n":-12.5e3, "o":{"x":[1,{"y":null}]}, "a":[], "t":true, "f":false, "z":null, "\u0065":"é" } `
	got, err := members([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{
		{"s", `"a\"b"`}, {"n", `-12.5e3`}, {"o", `{"x":[1,{"y":null}]}`}, {"a", `[]`},
		{"t", `true`}, {"f", `false`}, {"z", `null`}, {"e", `"é"`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

// Object refuses what Check refuses, with the same Kind, and whatever is
// not an object.
func TestObject_RefusesWhatCheckRefuses(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 1001) + "1" + strings.Repeat("}", 1001)
	tests := []struct {
		name string
		in   string
		kind Kind
	}{
		{"empty", ``, Truncated},
		{"only space", `  `, Truncated},
		{"not an object", `[1]`, WrongType},
		{"a string", `"a"`, WrongType},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", InvalidUTF8},
		{"byte order mark", "\xEF\xBB\xBF{}", BOM},
		{"duplicate key", `{"a":1,"a":2}`, DuplicateKey},
		{"duplicate key, escaped", `{"a":1,"\u0061":2}`, DuplicateKey},
		{"duplicate key after many", `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k16":0}`, DuplicateKey},
		{"duplicate key among the first and a later one", `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k0":0}`, DuplicateKey},
		{"nested duplicate key", `{"a":[{"k":1,"k":2}]}`, DuplicateKey},
		{"trailing data", `{} {}`, TrailingData},
		{"trailing comma", `{"a":1,}`, Syntax},
		{"array trailing comma", `{"a":[1,]}`, Syntax},
		{"missing colon", `{"a" 1}`, Syntax},
		{"number key", `{1:2}`, Syntax},
		{"leading zero", `{"a":01}`, Syntax},
		{"bare dot", `{"a":1.}`, Syntax},
		{"bad exponent", `{"a":1e}`, Syntax},
		{"bad literal", `{"a":tru}`, Syntax},
		{"bad escape", `{"a":"\x"}`, Syntax},
		{"bad unicode escape", `{"a":"\u12G4"}`, Syntax},
		{"control character", "{\"a\":\"a\tb\"}", Syntax},
		{"unterminated string", `{"a":"abc`, Truncated},
		{"unterminated object", `{"a":1`, Truncated},
		{"cut after a key", `{"a"`, Truncated},
		{"cut after a colon", `{"a":`, Truncated},
		{"cut in an escape", `{"a":"\`, Truncated},
		{"cut in a unicode escape", `{"a":"\u00`, Truncated},
		{"too deep", deep, TooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := members([]byte(tt.in))
			var se *Error
			if !errors.As(err, &se) || se.Kind != tt.kind {
				t.Fatalf("Object(%.40q) = %v, want an *Error of kind %v", tt.in, err, tt.kind)
			}
			if tt.kind != WrongType && Check([]byte(tt.in)) == nil {
				t.Errorf("Check accepts %.40q, which Object refuses", tt.in)
			}
		})
	}
}

func TestObject_StopsAtTheMembersError(t *testing.T) {
	stop := errors.New("stop")
	var seen []string
	err := Object([]byte(`{"a":1,"b":2,"c":3}`), func(key []byte, v Value) error {
		seen = append(seen, string(key))
		if string(key) == "b" {
			return stop
		}
		return nil
	})
	if err != stop || strings.Join(seen, ",") != "a,b" {
		t.Fatalf("Object = %v after %v, want the member's own error after a and b", err, seen)
	}
}

// Each reader agrees with encoding/json decoding the same text into the
// same Go type.
func TestValue_ReadsAsEncodingJSON(t *testing.T) {
	tests := []string{
		`"abc"`, `"a\"b\\c\/\b\f\n\r\t"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\udc00x"`, `""`,
		`0`, `-0`, `12`, `-12`, `9223372036854775807`, `-9223372036854775808`, `9223372036854775808`,
		`-9223372036854775809`, `99999999999999999999`, `1.0`, `1e3`, `1E3`, `-1.5`,
		`[]`, `["a"]`, `["a", "b\n", "\u0041"]`, ` [ "x" , "y" ] `, `[1]`, `["a",1]`, `[null]`, `[["a"]]`,
		`null`, `true`, `false`, `{}`, `{"a":"b"}`,
	}
	for _, text := range tests {
		t.Run(text, func(t *testing.T) {
			var v Value
			if err := Object([]byte(`{"k":`+text+`}`), func(_ []byte, got Value) error {
				v = got
				v.text = []byte(string(got.text)) // keep it past the call
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			checkValue(t, v)
		})
	}
}

// checkValue compares v's readers with encoding/json on v's text.
func checkValue(t *testing.T, v Value) {
	t.Helper()
	var s string
	sErr := json.Unmarshal(v.text, &s)
	if v.IsNull() {
		sErr = errors.New("null is no string") // encoding/json leaves s as it was
	}
	if got, ok := v.String(); ok != (sErr == nil) || ok && got != s {
		t.Errorf("String(%s) = %q, %v; encoding/json: %q, %v", v.text, got, ok, s, sErr)
	}
	if ok := v.Equal(s); sErr == nil && !ok {
		t.Errorf("Equal(%s, %q) = false", v.text, s)
	}
	var n int64
	nErr := json.Unmarshal(v.text, &n)
	if v.IsNull() {
		nErr = errors.New("null is no number")
	}
	if got, ok := v.Int64(); ok != (nErr == nil) || ok && got != n {
		t.Errorf("Int64(%s) = %d, %v; encoding/json: %d, %v", v.text, got, ok, n, nErr)
	}
	var ss []string
	ssErr := json.Unmarshal(v.text, &ss)
	if v.IsNull() {
		ssErr = errors.New("null is no array")
	}
	if ssErr == nil && strings.Contains(string(v.text), "null") {
		ssErr = errors.New("a null element is no string") // encoding/json reads it as ""
	}
	if got, ok := v.Strings(); ok != (ssErr == nil) || ok && !cmp.Equal(got, ss) {
		t.Errorf("Strings(%s) = %q, %v; encoding/json: %q, %v", v.text, got, ok, ss, ssErr)
	}
}

func TestValue_Int64Bounds(t *testing.T) {
	for _, n := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64, math.MaxInt64 / 10, 1 << 62} {
		text := strconv.FormatInt(n, 10)
		err := Object([]byte(`{"n":`+text+`}`), func(_ []byte, v Value) error {
			if got, ok := v.Int64(); !ok || got != n {
				t.Errorf("Int64(%s) = %d, %v", text, got, ok)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestValue_Errors(t *testing.T) {
	var wrong, unknown *Error
	Object([]byte(`{"a/b":1}`), func(_ []byte, v Value) error {
		wrong, unknown = v.WrongType("string"), v.UnknownField()
		return nil
	})
	if wrong.Kind != WrongType || wrong.Error() != "/a~1b: want a JSON string, got number" {
		t.Errorf("WrongType = %v (%v)", wrong, wrong.Kind)
	}
	if unknown.Kind != UnknownField || unknown.Error() != `unknown field "a/b"` {
		t.Errorf("UnknownField = %v (%v)", unknown, unknown.Kind)
	}
}

// Reading a small object allocates nothing but what the caller keeps.
func TestObject_AllocatesNothingToCompare(t *testing.T) {
	data := []byte(`{"alg":"EdDSA","kid":"k1","typ":"at+jwt","exp":1795000000,"roles":["a","b"],"x":{"y":[1,2,{"z":null}]}}`)
	allocs := testing.AllocsPerRun(100, func() {
		err := Object(data, func(key []byte, v Value) error {
			switch string(key) {
			case "alg":
				if !v.Equal("EdDSA") {
					t.Fatal("alg")
				}
			case "exp":
				if _, ok := v.Int64(); !ok {
					t.Fatal("exp")
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Object allocated %v times to compare members", allocs)
	}
}

// FuzzObject: Object accepts exactly the objects Check accepts, hands
// over the members encoding/json sees, and reads each as it does.
func FuzzObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":"\u0061","b":[1,"x",{"c":null}],"d":-0.5e+3}`, `{"a":1,"a":2}`, `[1]`, `{"a":[`,
		`{"iss":"x","aud":["a","b"],"exp":1795000000,"nbf":null}`, "\xEF\xBB\xBF{}", `{"\ud800":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []Value
		err := Object(data, func(key []byte, v Value) error {
			v.key = []byte(string(key))
			v.text = []byte(string(v.text))
			got = append(got, v)
			return nil
		})
		checkErr := Check(data)
		var m map[string]json.RawMessage
		isObject := checkErr == nil && json.Unmarshal(data, &m) == nil
		if (err == nil) != isObject {
			t.Fatalf("Object(%q) = %v; Check = %v, an object: %v", data, err, checkErr, isObject)
		}
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Object(%q) = %v, not an *Error", data, err)
			}
			if checkErr != nil && se.Kind != checkErr.(*Error).Kind {
				t.Fatalf("Object(%q) = %v (%v); Check = %v (%v)", data, err, se.Kind, checkErr, checkErr.(*Error).Kind)
			}
			return
		}
		if len(got) != len(m) {
			t.Fatalf("Object(%q) handed over %d members, encoding/json sees %d", data, len(got), len(m))
		}
		for _, v := range got {
			raw, ok := m[string(v.key)]
			if !ok || string(compact(t, raw)) != string(compact(t, v.text)) {
				t.Fatalf("member %q is %s; encoding/json: %s", v.key, v.text, raw)
			}
			checkValue(t, v)
		}
	})
}

func compact(t *testing.T, text []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, text); err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	return b.Bytes()
}
