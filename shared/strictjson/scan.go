package strictjson

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// maxDepth bounds nesting: deeper documents are refused before they can
// exhaust the stack.
const maxDepth = 1000

// scanner checks JSON syntax (RFC 8259) in one pass over the bytes, and
// refuses duplicate object keys. It is much faster than walking the
// tokens of an encoding/json Decoder, which allocates for each one.
type scanner struct {
	data []byte
	i    int
	path []string // reference tokens of the value being read, for errors
}

func (s *scanner) pointer() string { return Pointer(s.path...) }

// syntax reports a character out of place at s.i.
func (s *scanner) syntax(format string, args ...any) error {
	return s.malformed(Syntax, format, args...)
}

// malformed reports a problem of kind at s.i, in the words of a syntax
// error: to whoever reads the message, the text is not acceptable JSON.
func (s *scanner) malformed(kind Kind, format string, args ...any) error {
	return &Error{Kind: kind, Offset: int64(s.i), Msg: fmt.Sprintf("malformed JSON at offset %d: %s", s.i, fmt.Sprintf(format, args...))}
}

// truncated reports a text that ends before its value does.
func (s *scanner) truncated() error {
	return &Error{Kind: Truncated, Offset: int64(len(s.data)), Msg: "JSON text is empty or ends too early"}
}

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) value(depth int) error {
	s.space()
	if s.i >= len(s.data) {
		return s.truncated()
	}
	switch c := s.data[s.i]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		return s.syntax("unexpected character %q", c)
	}
}

func (s *scanner) literal(word string) error {
	if !strings.HasPrefix(string(s.data[s.i:min(s.i+len(word), len(s.data))]), word) {
		return s.syntax("invalid literal")
	}
	s.i += len(word)
	return nil
}

func (s *scanner) number() error {
	start := s.i
	if s.data[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.data) && s.data[s.i] >= '0' && s.data[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	switch {
	case s.i < len(s.data) && s.data[s.i] == '0':
		s.i++
	case digits() == 0:
		return s.syntax("invalid number")
	}
	if s.i < len(s.data) && s.data[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.syntax("invalid number")
		}
	}
	if s.i < len(s.data) && (s.data[s.i] == 'e' || s.data[s.i] == 'E') {
		s.i++
		if s.i < len(s.data) && (s.data[s.i] == '+' || s.data[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return s.syntax("invalid number")
		}
	}
	if s.i == start {
		return s.syntax("invalid number")
	}
	return nil
}

// str reads a string at s.i and returns its raw contents and whether it
// has escapes (then the decoded value differs from the raw bytes).
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	s.i++ // opening quote
	start := s.i
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			raw = s.data[start:s.i]
			s.i++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.data) {
				return nil, false, s.truncated()
			}
			switch s.data[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.data) {
					return nil, false, s.truncated()
				}
				if _, err := strconv.ParseUint(string(s.data[s.i+2:s.i+6]), 16, 16); err != nil {
					return nil, false, s.syntax("invalid \\u escape")
				}
				s.i += 6
			default:
				return nil, false, s.syntax("invalid escape \\%c", s.data[s.i+1])
			}
		case c < 0x20:
			return nil, false, s.syntax("control character %U in a string (escape it)", rune(c))
		default:
			s.i++
		}
	}
	return nil, false, s.truncated()
}

// key returns the decoded key whose raw contents s.str just read:
// "\u0061" and "a" are one key.
func (s *scanner) key(raw []byte, escaped bool) (string, error) {
	key := string(raw)
	if escaped {
		if err := json.Unmarshal(s.data[s.i-len(raw)-2:s.i], &key); err != nil {
			return "", s.syntax("invalid key")
		}
	}
	return key, nil
}

func (s *scanner) object(depth int) error {
	if depth > maxDepth {
		return s.malformed(TooDeep, "nested more than %d levels deep", maxDepth)
	}
	s.i++ // {
	s.space()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return nil
	}
	var seen map[string]struct{}
	for {
		s.space()
		if s.i >= len(s.data) {
			return s.truncated()
		}
		if s.data[s.i] != '"' {
			return s.syntax("want a string key")
		}
		keyAt := s.i
		raw, escaped, err := s.str()
		if err != nil {
			return err
		}
		key, err := s.key(raw, escaped)
		if err != nil {
			return err
		}
		if seen == nil {
			seen = map[string]struct{}{}
		}
		s.path = append(s.path, key)
		if _, dup := seen[key]; dup {
			return &Error{Kind: DuplicateKey, Pointer: s.pointer(), Offset: int64(keyAt), Msg: fmt.Sprintf("duplicate key %q", key)}
		}
		seen[key] = struct{}{}
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			if s.i >= len(s.data) {
				return s.truncated()
			}
			return s.syntax("want ':' after a key")
		}
		s.i++
		if err := s.value(depth); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.space()
		if s.i >= len(s.data) {
			return s.truncated()
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.syntax("want ',' or '}' in an object")
		}
	}
}

func (s *scanner) array(depth int) error {
	if depth > maxDepth {
		return s.malformed(TooDeep, "nested more than %d levels deep", maxDepth)
	}
	s.i++ // [
	s.space()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		s.path = append(s.path, strconv.Itoa(n))
		if err := s.value(depth); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.space()
		if s.i >= len(s.data) {
			return s.truncated()
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.syntax("want ',' or ']' in an array")
		}
	}
}
