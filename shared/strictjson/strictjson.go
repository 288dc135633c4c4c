// Package strictjson decodes JSON the strict way: valid UTF-8, one value,
// no duplicate object keys, no unknown fields; and, on request, I-JSON
// (RFC 7493), which every reader reads alike.
//
// encoding/json alone is lenient where it matters for security: it replaces
// invalid UTF-8 with U+FFFD, keeps the last of two duplicate keys (so two
// parsers can disagree on what a body said) and accepts trailing data.
//
// Every problem with the text is an *Error whose Kind says what it is:
//
//	var se *strictjson.Error
//	if errors.As(err, &se) && se.Kind == strictjson.DuplicateKey { … }
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is what sort of problem an Error reports. Callers branch on it
// (errors.As to *Error, then Kind), never on the message, which is for
// people and may be reworded.
type Kind int

// The kinds of problem. The zero Kind is none of them.
const (
	// Syntax: not JSON (RFC 8259): a character out of place, a bad escape,
	// a raw control character in a string.
	Syntax Kind = iota + 1
	// Truncated: the text is empty or ends in the middle of a value.
	Truncated
	// InvalidUTF8: the bytes are not UTF-8 (RFC 8259 §8.1).
	InvalidUTF8
	// TooDeep: arrays and objects nest deeper than the scanner allows.
	TooDeep
	// TrailingData: something follows the one JSON value.
	TrailingData
	// DuplicateKey: an object names a key twice. The text is otherwise
	// well-formed JSON, which is why a caller may treat it apart.
	DuplicateKey
	// UnknownField: an object has a key that the Go struct it decodes
	// into has no field for (Decode only).
	UnknownField
	// WrongType: a value is not of the JSON type its Go field needs
	// (Decode only).
	WrongType
	// InvalidValue: the value's Go type refused it in its own
	// UnmarshalJSON or UnmarshalText (Decode only); Err is its error.
	InvalidValue
	// BOM: the text starts with a UTF-8 byte order mark, which RFC 8259
	// §8.1 forbids. Parse reads on past it.
	BOM
	// NumberOutOfRange: a number that an IEEE 754 double does not hold
	// (Parse with IJSON only; see Options).
	NumberOutOfRange
	// LoneSurrogate: a string (or key) escapes half of a UTF-16
	// surrogate pair without the other half, which is no character
	// (Parse with IJSON only).
	LoneSurrogate
	// TooManyValues: the text holds more values than Options.MaxValues
	// (Parse only).
	TooManyValues
)

var kindNames = [...]string{
	Syntax:           "syntax",
	Truncated:        "truncated",
	InvalidUTF8:      "invalid UTF-8",
	TooDeep:          "too deep",
	TrailingData:     "trailing data",
	DuplicateKey:     "duplicate key",
	UnknownField:     "unknown field",
	WrongType:        "wrong type",
	InvalidValue:     "invalid value",
	BOM:              "byte order mark",
	NumberOutOfRange: "number out of range",
	LoneSurrogate:    "lone surrogate",
	TooManyValues:    "too many values",
}

// String names the kind, for test failures and logs.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error says what is wrong with a JSON text and where. Pointer is an RFC 6901
// JSON Pointer to the offending value ("" for the whole text, and for an
// unknown field, whose message names it). Offset is the byte offset in the
// text where the problem was found (-1 when the decoder did not say).
type Error struct {
	Kind    Kind
	Pointer string
	Offset  int64
	Msg     string
	Err     error // the underlying error, if another package reported it
}

// Error implements error.
func (e *Error) Error() string {
	if e.Pointer == "" {
		return e.Msg
	}
	return fmt.Sprintf("%s: %s", e.Pointer, e.Msg)
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Check reports the first structural problem of data as an *Error: invalid
// UTF-8, a byte order mark, a syntax error, a text cut short, nesting too
// deep, a duplicate key, or anything after the first value.
func Check(data []byte) error {
	_, err := newReader(data).run()
	return err
}

// Options are the rules that Parse applies beyond Check's.
type Options struct {
	// IJSON applies I-JSON (RFC 7493) as well: every number within what
	// an IEEE 754 double holds (integers written without fraction or
	// exponent within ±(2^53−1), other numbers finite, not read as zero,
	// with at most 17 significant digits), and no lone surrogate escaped
	// in a string or key (§2.1). Such texts are JSON, but not all
	// readers read them (Go refuses 1e999 into a float64; Python cannot
	// re-encode "\ud800"), or not all alike.
	IJSON bool
	// MaxValues, if positive, bounds how many values (each object, array,
	// string, number, true, false and null) the text may hold: what
	// Parse builds is bounded by it, not by the size of the text.
	MaxValues int
}

// Parse reads data as Check does and returns its value as encoding/json's
// Decoder with UseNumber would: map[string]any, []any, string,
// json.Number, bool or nil (and, for a duplicate key, the last value).
//
// Where Check stops at the first problem, Parse goes on past those that
// leave the text well-formed JSON (a byte order mark, a duplicate key
// and, with IJSON, a number out of range or a lone surrogate): it hands
// each to report, in text order, each duplicate key once per object. It
// returns an error (and no value) only for a problem that ends the
// reading: the kinds Syntax, Truncated, InvalidUTF8, TooDeep,
// TrailingData and TooManyValues. A nil report makes every problem end it.
func Parse(data []byte, o Options, report func(*Error)) (any, error) {
	s := &scanner{data: data, opts: o, report: report, build: true}
	return s.run()
}

// Decode checks data as Check does, then decodes it into v, refusing fields
// that v does not have. Its errors are *Error too, but for a v that is
// not a non-nil pointer, which is the caller's bug.
func Decode(data []byte, v any) error {
	if err := Check(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describe(data, v, err)
	}
	return nil
}

func firstInvalid(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// maxPointer bounds the length of the pointers that name a place in an
// error: a key can be megabytes long, and an error repeated for each of
// a million values under it must not copy it each time.
const maxPointer = 1 << 10

// Pointer encodes reference tokens as an RFC 6901 JSON Pointer
// ("/a~1b/0" for the tokens "a/b" and "0"). To stay short enough for an
// error message, a pointer that would be longer than 1 KiB stops at the
// deepest ancestor that fits: it names a value that holds the one meant.
func Pointer(tokens ...string) string {
	p := make([]byte, 0, 64) // on the stack, for most pointers
	for _, t := range tokens {
		var ok bool
		if p, ok = appendToken(p, t); !ok {
			break
		}
	}
	return string(p)
}

// appendToken appends "/" and key, escaped (RFC 6901 §3), to the pointer
// p, unless that would make p longer than maxPointer: then it returns p
// as it was and false. It reads no more of key than fits.
func appendToken[T string | []byte](p []byte, key T) ([]byte, bool) {
	mark := len(p)
	p = append(p, '/')
	p, ok := appendEscaped(p, key)
	if !ok {
		return p[:mark], false
	}
	return p, true
}

// appendEscaped appends key, escaped, to the pointer p, or stops and
// returns false once p is longer than maxPointer.
func appendEscaped[T string | []byte](p []byte, key T) ([]byte, bool) {
	for i := 0; i < len(key); i++ {
		switch c := key[i]; c {
		case '~':
			p = append(p, '~', '0')
		case '/':
			p = append(p, '~', '1')
		default:
			p = append(p, c)
		}
		if len(p) > maxPointer {
			return p, false
		}
	}
	return p, true
}

// appendKey appends the key whose text (between the quotes) is raw as
// appendToken appends a key, decoding its escapes as it goes: it decodes
// no more of the key than fits, however long the key is.
func appendKey(p, raw []byte, escaped bool) ([]byte, bool) {
	if !escaped {
		return appendToken(p, raw)
	}
	mark := len(p)
	p = append(p, '/')
	ok := true
	for plain, r := range chunks(raw) {
		if plain == nil {
			plain = utf8.AppendRune(make([]byte, 0, utf8.UTFMax), r)
		}
		if p, ok = appendEscaped(p, plain); !ok {
			return p[:mark], false
		}
	}
	return p, true
}

// appendIndex appends an array index as appendToken appends a key.
func appendIndex(p []byte, index int) ([]byte, bool) {
	mark := len(p)
	p = strconv.AppendInt(append(p, '/'), int64(index), 10)
	if len(p) > maxPointer {
		return p[:mark], false
	}
	return p, true
}

// escape encodes a key as an RFC 6901 reference token.
func escape(key string) string {
	return pointerEscaper.Replace(key)
}

// describe turns an encoding/json error into an *Error a caller can branch
// on. encoding/json has no type for its unknown-field error, only a
// message; rather than read the message, an error of no known type is
// explained by walking data against v's type for the first key that no
// field takes (fields.go): the key encoding/json refused.
func describe(data []byte, v any, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var inv *json.InvalidUnmarshalError
	switch {
	case errors.As(err, &inv):
		return err // v is not a non-nil pointer: the caller's bug, not the text's
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Kind: Truncated, Offset: int64(len(data)), Msg: "JSON text is empty or ends too early", Err: err}
	case errors.As(err, &syn):
		return &Error{Kind: Syntax, Offset: syn.Offset, Msg: fmt.Sprintf("malformed JSON at offset %d: %v", syn.Offset, syn), Err: err}
	case errors.As(err, &typ):
		ptr := ""
		if typ.Field != "" {
			ptr = "/" + strings.ReplaceAll(escape(typ.Field), ".", "/")
		}
		return &Error{Kind: WrongType, Pointer: ptr, Offset: typ.Offset, Msg: fmt.Sprintf("want a JSON %s, got %s", typ.Type.Kind(), typ.Value), Err: err}
	}
	if uf := unknownField(data, reflect.TypeOf(v)); uf != nil {
		return uf
	}
	return &Error{Kind: InvalidValue, Offset: -1, Msg: err.Error(), Err: err}
}
