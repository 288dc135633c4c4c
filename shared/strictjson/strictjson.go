// Package strictjson decodes JSON the strict way: valid UTF-8, one value,
// no duplicate object keys, no unknown fields.
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
)

var kindNames = [...]string{
	Syntax:       "syntax",
	Truncated:    "truncated",
	InvalidUTF8:  "invalid UTF-8",
	TooDeep:      "too deep",
	TrailingData: "trailing data",
	DuplicateKey: "duplicate key",
	UnknownField: "unknown field",
	WrongType:    "wrong type",
	InvalidValue: "invalid value",
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
// UTF-8, a syntax error, a text cut short, nesting too deep, a duplicate
// key, or anything after the first value.
func Check(data []byte) error {
	if !utf8.Valid(data) {
		at := firstInvalid(data)
		return &Error{Kind: InvalidUTF8, Offset: int64(at), Msg: fmt.Sprintf("text is not valid UTF-8 (first bad byte at offset %d)", at)}
	}
	s := &scanner{data: data}
	if err := s.value(0); err != nil {
		return err
	}
	s.space()
	if s.i != len(data) {
		return &Error{Kind: TrailingData, Offset: int64(s.i), Msg: fmt.Sprintf("unexpected data after the JSON value at offset %d", s.i)}
	}
	return nil
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

// Pointer encodes reference tokens as an RFC 6901 JSON Pointer
// ("/a~1b/0" for the tokens "a/b" and "0").
func Pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escape(t))
	}
	return b.String()
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
