// Package strictjson decodes JSON the strict way: valid UTF-8, one value,
// no duplicate object keys, no unknown fields.
//
// encoding/json alone is lenient where it matters for security: it replaces
// invalid UTF-8 with U+FFFD, keeps the last of two duplicate keys (so two
// parsers can disagree on what a body said) and accepts trailing data.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Error says what is wrong with a JSON text and where. Pointer is an RFC 6901
// JSON Pointer to the offending value ("" for the whole text).
type Error struct {
	Pointer string
	Msg     string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Pointer == "" {
		return e.Msg
	}
	return fmt.Sprintf("%s: %s", e.Pointer, e.Msg)
}

// Check reports the first structural problem of data: invalid UTF-8, a
// syntax error, a duplicate key, or anything after the first value.
func Check(data []byte) error {
	if !utf8.Valid(data) {
		return &Error{Msg: fmt.Sprintf("text is not valid UTF-8 (first bad byte at offset %d)", firstInvalid(data))}
	}
	s := &scanner{data: data}
	if err := s.value(0); err != nil {
		return err
	}
	s.space()
	if s.i != len(data) {
		return &Error{Msg: fmt.Sprintf("unexpected data after the JSON value at offset %d", s.i)}
	}
	return nil
}

// Decode checks data as Check does, then decodes it into v, refusing fields
// that v does not have.
func Decode(data []byte, v any) error {
	if err := Check(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describe(err)
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

// describe turns encoding/json errors into messages a caller can act on.
func describe(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Msg: "JSON text is empty or ends too early"}
	case errors.As(err, &syn):
		return &Error{Msg: fmt.Sprintf("malformed JSON at offset %d: %v", syn.Offset, syn)}
	case errors.As(err, &typ):
		ptr := ""
		if typ.Field != "" {
			ptr = "/" + strings.ReplaceAll(escape(typ.Field), ".", "/")
		}
		return &Error{Pointer: ptr, Msg: fmt.Sprintf("want a JSON %s, got %s", typ.Type.Kind(), typ.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return &Error{Msg: "unknown field " + field}
	}
	return &Error{Msg: err.Error()}
}
