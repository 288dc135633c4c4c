package strictjson

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Object reads data, which must be one JSON object, with Check's rules
// (valid UTF-8, no byte order mark, well-formed JSON, no key twice in any
// object, nothing after the object), in one pass, and calls member with
// each of its members in text order. It stops at the first problem, an
// *Error, or at the first error member returns, which it returns as is.
//
// It is for small objects read on a hot path (a request body, the header
// and claims of a token): Check followed by encoding/json reads the text
// twice and decodes by reflection; Object reads it once, allocates
// nothing for keys, numbers and unescaped strings it only compares, and
// lets the caller take each value as the Go type it wants. A member whose
// value the caller ignores is still checked, to the last nested byte.
//
// The key is valid only during the call: member must copy it to keep it
// (string(key) in a switch or comparison copies nothing).
func Object(data []byte, member func(key []byte, v Value) error) error {
	if !utf8.Valid(data) {
		at := firstInvalid(data)
		return &Error{Kind: InvalidUTF8, Offset: int64(at), Msg: fmt.Sprintf("text is not valid UTF-8 (first bad byte at offset %d)", at)}
	}
	if len(data) >= len(byteOrderMark) && string(data[:len(byteOrderMark)]) == byteOrderMark {
		return &Error{Kind: BOM, Msg: "starts with a UTF-8 byte order mark; remove it"}
	}
	r := objectReader{data: data}
	r.space()
	if r.i >= len(r.data) {
		return r.truncated()
	}
	isObject := r.data[r.i] == '{'
	var err error
	if isObject {
		err = r.object(1, member)
	} else {
		_, err = r.value(0) // a problem with the text comes first
	}
	if err != nil {
		return err
	}
	r.space()
	if r.i != len(r.data) {
		return &Error{Kind: TrailingData, Offset: int64(r.i), Msg: fmt.Sprintf("unexpected data after the JSON value at offset %d", r.i)}
	}
	if !isObject {
		return &Error{Kind: WrongType, Msg: "want a JSON object"}
	}
	return nil
}

// Value is the checked text of one member's value, as Object hands it
// over. Its methods read it as a Go value; each reports false when the
// text is not of the JSON type asked for. Like the key, it is valid only
// during the call.
type Value struct {
	key     []byte
	keyAt   int
	text    []byte
	escaped bool // a string with escapes
}

// Text returns the value's JSON text.
func (v Value) Text() []byte { return v.text }

// IsNull reports whether the value is null.
func (v Value) IsNull() bool { return string(v.text) == "null" }

// Type names the value's JSON type: object, array, string, number,
// boolean or null.
func (v Value) Type() string {
	switch v.text[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// String returns the value of a JSON string, decoded as encoding/json
// does (an escaped lone surrogate becomes U+FFFD).
func (v Value) String() (string, bool) {
	if v.text[0] != '"' {
		return "", false
	}
	return unquoteText(v.text, v.escaped), true
}

// Equal reports whether the value is the JSON string s, without copying
// it.
func (v Value) Equal(s string) bool {
	if v.text[0] != '"' {
		return false
	}
	if !v.escaped {
		return string(v.text[1:len(v.text)-1]) == s
	}
	return unquoteText(v.text, true) == s
}

// Int64 returns the value of a JSON number written as an integer (no
// fraction, no exponent) that an int64 holds: the numbers encoding/json
// decodes into an int64.
func (v Value) Int64() (int64, bool) {
	t := v.text
	neg := t[0] == '-'
	if neg {
		t = t[1:]
	}
	if len(t) == 0 || t[0] < '0' || t[0] > '9' {
		return 0, false
	}
	var n uint64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false // a fraction or an exponent
		}
		if n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return -int64(n), true
	case !neg && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}

// Strings returns the values of a JSON array of strings.
func (v Value) Strings() ([]string, bool) {
	if v.text[0] != '[' {
		return nil, false
	}
	r := objectReader{data: v.text, i: 1}
	out := []string{}
	for {
		r.space()
		switch r.data[r.i] {
		case ']':
			return out, true
		case ',':
			r.i++
			r.space()
		}
		if r.data[r.i] != '"' {
			return nil, false
		}
		start := r.i
		escaped, _ := r.str() // checked by Object already
		out = append(out, unquoteText(r.data[start:r.i], escaped))
	}
}

// WrongType is the error for this value when it is not of the JSON type
// want (such as "string" or "array of strings").
func (v Value) WrongType(want string) *Error {
	return &Error{Kind: WrongType, Pointer: Pointer(string(v.key)), Offset: int64(v.keyAt),
		Msg: fmt.Sprintf("want a JSON %s, got %s", want, v.Type())}
}

// UnknownField is the error for a member whose key the reader does not
// know, in Decode's words.
func (v Value) UnknownField() *Error {
	return &Error{Kind: UnknownField, Offset: int64(v.keyAt), Msg: fmt.Sprintf("unknown field %q", v.key)}
}

// unquoteText decodes a JSON string's text, quotes included.
func unquoteText(text []byte, escaped bool) string {
	if !escaped {
		return string(text[1 : len(text)-1])
	}
	// Rare on the paths Object serves: encoding/json decodes escapes,
	// so that both read them alike.
	var s string
	json.Unmarshal(text, &s)
	return s
}

// objectMaxDepth bounds nesting as Check does.
const objectMaxDepth = 1000

// objectReader is Object's one pass over a text whose UTF-8 is checked.
type objectReader struct {
	data []byte
	i    int
}

func (r *objectReader) syntax(format string, args ...any) error {
	return &Error{Kind: Syntax, Offset: int64(r.i), Msg: fmt.Sprintf("malformed JSON at offset %d: %s", r.i, fmt.Sprintf(format, args...))}
}

func (r *objectReader) truncated() error {
	return &Error{Kind: Truncated, Offset: int64(len(r.data)), Msg: "JSON text is empty or ends too early"}
}

func (r *objectReader) space() {
	for r.i < len(r.data) {
		switch r.data[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// smallObject is how many keys an object may have before duplicates are
// found through a map instead of by comparing with each key before.
const smallObject = 16

// object reads the object at r.i, handing its members to member when it
// is not nil (the top level) and only checking them otherwise.
func (r *objectReader) object(depth int, member func([]byte, Value) error) error {
	if depth > objectMaxDepth {
		return &Error{Kind: TooDeep, Offset: int64(r.i), Msg: fmt.Sprintf("nested more than %d levels deep", objectMaxDepth)}
	}
	r.i++ // {
	r.space()
	if r.i < len(r.data) && r.data[r.i] == '}' {
		r.i++
		return nil
	}
	var small [smallObject][]byte // the keys so far, decoded
	var many map[string]bool      // past smallObject keys
	n := 0
	for {
		r.space()
		if r.i >= len(r.data) {
			return r.truncated()
		}
		if r.data[r.i] != '"' {
			return r.syntax("want a string key")
		}
		keyAt := r.i
		escaped, err := r.str()
		if err != nil {
			return err
		}
		key := r.data[keyAt+1 : r.i-1]
		if escaped {
			key = []byte(unquoteText(r.data[keyAt:r.i], true))
		}
		dup := many[string(key)]
		for _, k := range small[:min(n, smallObject)] {
			dup = dup || string(k) == string(key)
		}
		if dup {
			return &Error{Kind: DuplicateKey, Pointer: Pointer(string(key)), Offset: int64(keyAt), Msg: fmt.Sprintf("duplicate key %q", Shorten(string(key)))}
		}
		if n < smallObject {
			small[n] = key
		} else {
			if many == nil {
				many = make(map[string]bool, 2*smallObject)
			}
			many[string(key)] = true
		}
		n++
		r.space()
		if r.i >= len(r.data) {
			return r.truncated()
		}
		if r.data[r.i] != ':' {
			return r.syntax("want ':' after a key")
		}
		r.i++
		r.space()
		start := r.i
		escapedValue, err := r.value(depth)
		if err != nil {
			return err
		}
		if member != nil {
			if err := member(key, Value{key: key, keyAt: keyAt, text: r.data[start:r.i], escaped: escapedValue}); err != nil {
				return err
			}
		}
		r.space()
		if r.i >= len(r.data) {
			return r.truncated()
		}
		switch r.data[r.i] {
		case ',':
			r.i++
		case '}':
			r.i++
			return nil
		default:
			return r.syntax("want ',' or '}' in an object")
		}
	}
}

func (r *objectReader) array(depth int) error {
	if depth > objectMaxDepth {
		return &Error{Kind: TooDeep, Offset: int64(r.i), Msg: fmt.Sprintf("nested more than %d levels deep", objectMaxDepth)}
	}
	r.i++ // [
	r.space()
	if r.i < len(r.data) && r.data[r.i] == ']' {
		r.i++
		return nil
	}
	for {
		r.space()
		if _, err := r.value(depth); err != nil {
			return err
		}
		r.space()
		if r.i >= len(r.data) {
			return r.truncated()
		}
		switch r.data[r.i] {
		case ',':
			r.i++
		case ']':
			r.i++
			return nil
		default:
			return r.syntax("want ',' or ']' in an array")
		}
	}
}

// value checks the value at r.i (after any space); escaped says it is a
// string with escapes.
func (r *objectReader) value(depth int) (escaped bool, err error) {
	if r.i >= len(r.data) {
		return false, r.truncated()
	}
	switch c := r.data[r.i]; {
	case c == '{':
		return false, r.object(depth+1, nil)
	case c == '[':
		return false, r.array(depth + 1)
	case c == '"':
		return r.str()
	case c == 't':
		return false, r.literal("true")
	case c == 'f':
		return false, r.literal("false")
	case c == 'n':
		return false, r.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return false, r.number()
	default:
		return false, r.syntax("unexpected character %q", c)
	}
}

func (r *objectReader) literal(word string) error {
	if len(r.data)-r.i < len(word) || string(r.data[r.i:r.i+len(word)]) != word {
		return r.syntax("invalid literal")
	}
	r.i += len(word)
	return nil
}

// number checks a number (RFC 8259 §6).
func (r *objectReader) number() error {
	if r.data[r.i] == '-' {
		r.i++
	}
	digits := func() int {
		n := 0
		for r.i < len(r.data) && r.data[r.i] >= '0' && r.data[r.i] <= '9' {
			r.i++
			n++
		}
		return n
	}
	switch {
	case r.i < len(r.data) && r.data[r.i] == '0':
		r.i++
	case digits() == 0:
		return r.syntax("invalid number")
	}
	if r.i < len(r.data) && r.data[r.i] == '.' {
		r.i++
		if digits() == 0 {
			return r.syntax("invalid number")
		}
	}
	if r.i < len(r.data) && (r.data[r.i] == 'e' || r.data[r.i] == 'E') {
		r.i++
		if r.i < len(r.data) && (r.data[r.i] == '+' || r.data[r.i] == '-') {
			r.i++
		}
		if digits() == 0 {
			return r.syntax("invalid number")
		}
	}
	return nil
}

// str checks the string at r.i and leaves r.i past its closing quote;
// escaped says it holds escapes.
func (r *objectReader) str() (escaped bool, err error) {
	r.i++ // opening quote
	for r.i < len(r.data) {
		c := r.data[r.i]
		switch {
		case c == '"':
			r.i++
			return escaped, nil
		case c == '\\':
			escaped = true
			if r.i+1 >= len(r.data) {
				return false, r.truncated()
			}
			switch r.data[r.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.i += 2
			case 'u':
				if r.i+6 > len(r.data) {
					return false, r.truncated()
				}
				if _, ok := hex4(r.data[r.i+2 : r.i+6]); !ok {
					return false, r.syntax("invalid \\u escape")
				}
				r.i += 6
			default:
				return false, r.syntax("invalid escape \\%c", r.data[r.i+1])
			}
		case c < 0x20:
			return false, r.syntax("control character %U in a string (escape it)", rune(c))
		default:
			r.i++
		}
	}
	return false, r.truncated()
}
