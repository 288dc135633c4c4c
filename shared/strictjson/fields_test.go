package strictjson

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

type inner struct {
	K    string `json:"k"`
	Deep *inner `json:"deep,omitempty"`
}

type Base struct {
	ID     string `json:"id"`
	Shared string
}

type Other struct{ Shared string }

type hidden struct {
	Secret string `json:"secret"`
}

// textish decodes itself from a JSON string.
type textish string

func (t *textish) UnmarshalText(b []byte) error { *t = textish(b); return nil }

// picky decodes itself and refuses anything but "ok".
type picky struct{}

var errPicky = errors.New("picky: want \"ok\"")

func (*picky) UnmarshalJSON(b []byte) error {
	if string(b) != `"ok"` {
		return errPicky
	}
	return nil
}

// rich has every shape of field whose JSON name encoding/json decides.
type rich struct {
	Name string `json:"name"`
	Skip string `json:"-"`
	//lint:ignore SA5008 the tag is odd on purpose: encoding/json names this field "-"
	Dash  string `json:"-,"`
	NoTag int
	//lint:ignore SA5008 the tag is invalid on purpose: encoding/json uses the Go name, Bad
	Bad    string           `json:"bad\"name"`
	Items  []inner          `json:"items"`
	Pair   [1]inner         `json:"pair"`
	ByName map[string]inner `json:"by_name"`
	Ptr    **inner          `json:"ptr"`
	Any    any              `json:"any"`
	Raw    json.RawMessage  `json:"raw"`
	When   time.Time        `json:"when"`
	Text   textish          `json:"text"`
	Picky  picky            `json:"picky"`
	Kelvin string           `json:"kelvin"`
	Quoted int              `json:",string"`
	Base                    // id; Shared, ambiguous with Other's and so no field
	*Other
	hidden // secret
}

// goUnknownField reads the key out of encoding/json's unknown-field error.
// Only this test reads that message, to check that Decode names the same
// key; if Go rewords it, this fails and says so.
func goUnknownField(t testing.TB, err error) string {
	t.Helper()
	quoted, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	key, uerr := strconv.Unquote(quoted)
	if !ok || uerr != nil {
		t.Fatalf("encoding/json error %q is not an unknown field in the words this test knows", err)
	}
	return key
}

// agree checks that Decode refuses data for the reason encoding/json does,
// and says it as it always has.
func agree(t testing.TB, data []byte, newV func() any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	goErr := dec.Decode(newV())
	err := Decode(data, newV())
	if Check(data) != nil {
		return // refused before encoding/json is asked
	}
	var se *Error
	var typ *json.UnmarshalTypeError
	switch {
	case goErr == nil:
		if err != nil {
			t.Fatalf("Decode(%s) = %v; encoding/json accepts it", data, err)
		}
	case !errors.As(err, &se):
		t.Fatalf("Decode(%s) = %v, want an *Error (encoding/json: %v)", data, err, goErr)
	case errors.As(goErr, &typ):
		if se.Kind != WrongType {
			t.Fatalf("Decode(%s) = %v (%v); encoding/json: %v", data, err, se.Kind, goErr)
		}
	case errors.Is(goErr, errPicky):
		if se.Kind != InvalidValue && se.Kind != UnknownField {
			t.Fatalf("Decode(%s) = %v (%v); encoding/json: %v", data, err, se.Kind, goErr)
		}
	default:
		key := goUnknownField(t, goErr)
		want := "unknown field " + strconv.Quote(key)
		if se.Kind != UnknownField || err.Error() != want || se.Pointer != "" {
			t.Fatalf("Decode(%s) = %q (%v), want %q (%v)", data, err, se.Kind, want, UnknownField)
		}
		if at := data[se.Offset:]; se.Offset < 0 || !json.Valid(keyAt(at)) {
			t.Fatalf("Decode(%s): offset %d is not at a key", data, se.Offset)
		}
	}
}

// keyAt returns the JSON string at the start of b.
func keyAt(b []byte) []byte {
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return b[:i+1]
		}
	}
	return nil
}

// TestDecode_UnknownFieldAsEncodingJSONSeesIt: Decode names the very key
// encoding/json refuses, found by walking the text against the Go type,
// through every shape of field, and only where encoding/json looks.
func TestDecode_UnknownFieldAsEncodingJSONSeesIt(t *testing.T) {
	newRich := func() any { return new(rich) }
	tests := []struct {
		name, in string
		kind     Kind // 0: accepted
	}{
		{"known", `{"name":"a","items":[{"k":"b"}]}`, 0},
		{"case-insensitive", `{"NAME":"a","notag":1}`, 0},
		{"Kelvin sign folds to K", `{"\u212aelvin":"a"}`, 0},
		{"escaped key", `{"\u006eame":"a"}`, 0},
		{"tag - leaves the field out", `{"Skip":"a"}`, UnknownField},
		{"tag -, names the field -", `{"-":"a"}`, 0},
		{"invalid tag: the Go name", `{"Bad":"a"}`, 0},
		{"invalid tag is no name", `{"bad\"name":"a"}`, UnknownField},
		{"promoted from an embedded struct", `{"id":"1","secret":"s"}`, 0},
		{"ambiguous promoted name", `{"Shared":"a"}`, UnknownField},
		{"top level", `{"name":"a","admin":true}`, UnknownField},
		{"in a slice element", `{"items":[{"k":"a"},{"k":"b","x":1}]}`, UnknownField},
		{"past a Go array's length", `{"pair":[{"k":"a"},{"x":1}]}`, 0},
		{"in a Go array", `{"pair":[{"x":1}]}`, UnknownField},
		{"in a map value", `{"by_name":{"a":{"k":"1","y":2}}}`, UnknownField},
		{"through pointers", `{"ptr":{"deep":{"deep":{"z":1}}}}`, UnknownField},
		{"inside an interface", `{"any":{"whatever":1}}`, 0},
		{"inside a RawMessage", `{"raw":{"whatever":1}}`, 0},
		{"a type that decodes itself", `{"when":"2020-01-01T00:00:00Z","picky":"ok","text":"t"}`, 0},
		{"value of an unknown key is not looked into", `{"zz":{"a":{"b":1}},"name":"a"}`, UnknownField},
		{"the first of two", `{"items":[{"q":1}],"zz":1}`, UnknownField},
		{"wrong type first", `{"name":1,"zz":1}`, WrongType},
		{"unknown field first", `{"zz":1,"name":1}`, UnknownField},
		{"object where an array goes", `{"items":{"x":1}}`, WrongType},
		{"object for a text type", `{"text":{"x":1}}`, WrongType},
		{"quoted number", `{"Quoted":"12"}`, 0},
		{"refused by UnmarshalJSON", `{"picky":"no"}`, InvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agree(t, []byte(tt.in), newRich)
			err := Decode([]byte(tt.in), new(rich))
			var se *Error
			switch {
			case tt.kind == 0 && err != nil:
				t.Fatalf("Decode(%s) = %v", tt.in, err)
			case tt.kind != 0 && (!errors.As(err, &se) || se.Kind != tt.kind):
				t.Fatalf("Decode(%s) = %v, want kind %v", tt.in, err, tt.kind)
			}
		})
	}
	agree(t, []byte(`[{"k":"a"},{"r":1}]`), func() any { return new([]inner) })
	agree(t, []byte(`{"a":{"k":"a","r":1}}`), func() any { return new(map[string]*inner) })
}

func TestDecode_InvalidValueKeepsTheCause(t *testing.T) {
	err := Decode([]byte(`{"picky":"no"}`), new(rich))
	var se *Error
	if !errors.As(err, &se) || se.Kind != InvalidValue || !errors.Is(err, errPicky) || err.Error() != errPicky.Error() {
		t.Fatalf("Decode = %v, want InvalidValue wrapping errPicky with its message", err)
	}
}

func TestDecode_NotAPointerIsTheCallersBug(t *testing.T) {
	err := Decode([]byte(`{}`), rich{})
	var se *Error
	var inv *json.InvalidUnmarshalError
	if errors.As(err, &se) || !errors.As(err, &inv) {
		t.Fatalf("Decode into a non-pointer = %v, want encoding/json's InvalidUnmarshalError", err)
	}
}

func TestKind_String(t *testing.T) {
	for k := Syntax; k <= InvalidValue; k++ {
		if s := k.String(); s == "" || strings.HasPrefix(s, "Kind(") {
			t.Errorf("Kind %d has no name", int(k))
		}
	}
	if s := Kind(0).String(); s != "Kind(0)" {
		t.Errorf("Kind(0) = %q", s)
	}
}

// FuzzDecode_AgreesWithEncodingJSON: whatever the text, Decode accepts
// what encoding/json accepts, and refuses the rest for the same reason,
// naming the same unknown key.
func FuzzDecode_AgreesWithEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","items":[{"k":"b","x":1}]}`, `{"ptr":{"deep":{"z":1}}}`, `{"pair":[{},{"x":1}]}`,
		`{"by_name":{"a":{"y":1}}}`, `{"Shared":1}`, `{"\u212aelvin":"a"}`, `{"any":{"q":[1]},"q":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		agree(t, data, func() any { return new(rich) })
	})
}
