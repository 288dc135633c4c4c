package strictjson

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting: deeper documents are refused before they can
// exhaust the stack.
const maxDepth = 1000

// step is one reference token of the path to the value being read: an
// object key, or an array index (then index >= 0). An index is kept as a
// number so that reading an array allocates nothing for its path.
type step struct {
	key   string
	index int
}

// scanner checks JSON syntax (RFC 8259) in one pass over the bytes, and
// refuses duplicate object keys. It is much faster than walking the
// tokens of an encoding/json Decoder, which allocates for each one. For
// Parse it also builds the values it reads, in the same pass.
type scanner struct {
	data []byte
	i    int
	path []step // of the value being read, for errors

	// Set by Parse.
	opts   Options
	report func(*Error) // nil: a rule problem ends the reading, as in Check
	build  bool
	values int // values read so far, against opts.MaxValues
}

func (s *scanner) pointer() string {
	p := make([]byte, 0, 64) // on the stack, for most pointers
	for _, st := range s.path {
		var ok bool
		if st.index >= 0 {
			p, ok = appendIndex(p, st.index)
		} else {
			p, ok = appendToken(p, st.key)
		}
		if !ok {
			break
		}
	}
	return string(p)
}

// syntax reports a character out of place at s.i.
func (s *scanner) syntax(format string, args ...any) error {
	return &Error{Kind: Syntax, Offset: int64(s.i), Msg: fmt.Sprintf("malformed JSON at offset %d: %s", s.i, fmt.Sprintf(format, args...))}
}

// truncated reports a text that ends before its value does.
func (s *scanner) truncated() error {
	return &Error{Kind: Truncated, Offset: int64(len(s.data)), Msg: "JSON text is empty or ends too early"}
}

// problem hands a problem that leaves the text well-formed JSON to
// s.report and lets the reading go on, or, without a report, ends it.
func (s *scanner) problem(e *Error) error {
	if s.report == nil {
		return e
	}
	s.report(e)
	return nil
}

// byteOrderMark is U+FEFF in UTF-8, which RFC 8259 §8.1 forbids at the
// start of a JSON text (and lets a parser ignore).
const byteOrderMark = "\xEF\xBB\xBF"

// run reads the one value of s.data.
func (s *scanner) run() (any, error) {
	if !utf8.Valid(s.data) {
		at := firstInvalid(s.data)
		return nil, &Error{Kind: InvalidUTF8, Offset: int64(at), Msg: fmt.Sprintf("text is not valid UTF-8 (first bad byte at offset %d)", at)}
	}
	if strings.HasPrefix(string(s.data[:min(3, len(s.data))]), byteOrderMark) {
		if err := s.problem(&Error{Kind: BOM, Msg: "starts with a UTF-8 byte order mark; remove it"}); err != nil {
			return nil, err
		}
		s.i = len(byteOrderMark)
	}
	v, err := s.value(0)
	if err != nil {
		return nil, err
	}
	s.space()
	if s.i != len(s.data) {
		return nil, &Error{Kind: TrailingData, Offset: int64(s.i), Msg: fmt.Sprintf("unexpected data after the JSON value at offset %d", s.i)}
	}
	return v, nil
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

// value reads one value; it returns what it read only when s.build.
func (s *scanner) value(depth int) (any, error) {
	s.space()
	if s.i >= len(s.data) {
		return nil, s.truncated()
	}
	if s.opts.MaxValues > 0 {
		// Counted before the value is built, so that the values kept
		// never pass the bound: memory follows the count, not the bytes.
		if s.values++; s.values > s.opts.MaxValues {
			return nil, &Error{Kind: TooManyValues, Offset: int64(s.i),
				Msg: fmt.Sprintf("has more than %d values (each object, array, string, number, true, false and null counts); at most %[1]d are read", s.opts.MaxValues)}
		}
	}
	switch c := s.data[s.i]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		return s.stringValue()
	case c == 't':
		return true, s.literal("true")
	case c == 'f':
		return false, s.literal("false")
	case c == 'n':
		return nil, s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		return nil, s.syntax("unexpected character %q", c)
	}
}

func (s *scanner) literal(word string) error {
	if !strings.HasPrefix(string(s.data[s.i:min(s.i+len(word), len(s.data))]), word) {
		return s.syntax("invalid literal")
	}
	s.i += len(word)
	return nil
}

func (s *scanner) number() (any, error) {
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
		return nil, s.syntax("invalid number")
	}
	integer := true
	if s.i < len(s.data) && s.data[s.i] == '.' {
		s.i++
		integer = false
		if digits() == 0 {
			return nil, s.syntax("invalid number")
		}
	}
	if s.i < len(s.data) && (s.data[s.i] == 'e' || s.data[s.i] == 'E') {
		s.i++
		integer = false
		if s.i < len(s.data) && (s.data[s.i] == '+' || s.data[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil, s.syntax("invalid number")
		}
	}
	if s.opts.IJSON {
		if msg := numberProblem(s.data[start:s.i], integer); msg != "" {
			if err := s.problem(&Error{Kind: NumberOutOfRange, Pointer: s.pointer(), Offset: int64(start), Msg: msg}); err != nil {
				return nil, err
			}
		}
	}
	if s.build {
		return json.Number(s.data[start:s.i]), nil
	}
	return nil, nil
}

// maxSafeInteger is 2^53−1, the largest integer n such that n and n+1
// are both exact doubles (RFC 7493 §2.2).
const maxSafeInteger = "9007199254740991"

// numberProblem says why the number literal lit is not I-JSON (RFC 7493
// §2.2: no greater magnitude or precision than an IEEE 754 double), or
// "" if it is. integer says lit has no fraction and no exponent: those
// are read as integers by many consumers, exact only within ±(2^53−1).
// Other numbers must be finite doubles, not so small that they read as
// zero, with no more significant digits than a double holds (17): a
// longer mantissa means a precision nobody reads (and, in the schema
// library's exact arithmetic, seconds of work per number).
func numberProblem(lit []byte, integer bool) string {
	if integer {
		digits := strings.TrimPrefix(string(lit), "-")
		if len(digits) < len(maxSafeInteger) || len(digits) == len(maxSafeInteger) && digits <= maxSafeInteger {
			return ""
		}
		return fmt.Sprintf("the integer %s is outside ±%s (2^53−1), the integers a double holds exactly", Shorten(string(lit)), maxSafeInteger)
	}
	significant, started, exponent := 0, false, false
	for _, c := range lit {
		switch {
		case c == 'e' || c == 'E':
			exponent = true
		case exponent || c < '0' || c > '9':
		case c != '0' || started:
			started = true
			significant++
		}
	}
	if significant > 17 {
		return fmt.Sprintf("%s has %d significant digits; a double holds 17", Shorten(string(lit)), significant)
	}
	if !exponent && len(lit) <= 300 {
		return "" // |x| < 1e300, and 0 or at least 1e-299: a normal double
	}
	f, _ := strconv.ParseFloat(string(lit), 64)
	switch {
	case math.IsInf(f, 0):
		return fmt.Sprintf("%s is too large for a double (IEEE 754)", Shorten(string(lit)))
	case f == 0 && significant > 0:
		return fmt.Sprintf("%s is too small for a double: it reads as 0", Shorten(string(lit)))
	}
	return ""
}

// Shorten cuts a value quoted in a message to its first 40 bytes (on a
// character boundary): a message names the value, it need not repeat a
// megabyte of it.
func Shorten(v string) string {
	const keep = 40
	if len(v) <= keep {
		return v
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", v[:cut], len(v))
}

// str reads a string at s.i: its raw contents are s.data[start:end];
// escaped says they hold escapes (then the decoded value differs), and
// lone is the offset of its first \u escape of a lone UTF-16 surrogate,
// or -1.
func (s *scanner) str() (start, end int, escaped bool, lone int, err error) {
	s.i++ // opening quote
	start, lone = s.i, -1
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return start, s.i - 1, escaped, lone, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.data) {
				return 0, 0, false, -1, s.truncated()
			}
			switch s.data[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.data) {
					return 0, 0, false, -1, s.truncated()
				}
				r, ok := hex4(s.data[s.i+2 : s.i+6])
				if !ok {
					return 0, 0, false, -1, s.syntax("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					// A high surrogate escaped right before a low one is
					// a pair; any other surrogate is alone, and no
					// character (encoding/json reads it as U+FFFD).
					if r < 0xDC00 && s.i+12 <= len(s.data) && s.data[s.i+6] == '\\' && s.data[s.i+7] == 'u' {
						if r2, ok := hex4(s.data[s.i+8 : s.i+12]); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
							s.i += 12
							continue
						}
					}
					if lone < 0 {
						lone = s.i
					}
				}
				s.i += 6
			default:
				return 0, 0, false, -1, s.syntax("invalid escape \\%c", s.data[s.i+1])
			}
		case c < 0x20:
			return 0, 0, false, -1, s.syntax("control character %U in a string (escape it)", rune(c))
		default:
			s.i++
		}
	}
	return 0, 0, false, -1, s.truncated()
}

// hex4 decodes the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unquote decodes the raw contents of a string that str read, as
// encoding/json does: a lone surrogate becomes U+FFFD.
func unquote(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			b.Write(raw[i:j])
			i = j
			continue
		}
		c := raw[i+1]
		i += 2
		switch c {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, _ := hex4(raw[i : i+4])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2, _ = hex4(raw[i+2 : i+6])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					b.WriteRune(d)
					i += 6
					continue
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
		default: // " \ /
			b.WriteByte(c)
		}
	}
	return b.String()
}

// stringValue reads a string value.
func (s *scanner) stringValue() (any, error) {
	start, end, escaped, lone, err := s.str()
	if err != nil {
		return nil, err
	}
	if lone >= 0 && s.opts.IJSON {
		if err := s.problem(s.loneSurrogate(lone)); err != nil {
			return nil, err
		}
	}
	switch {
	case !s.build:
		return nil, nil
	case escaped:
		return unquote(s.data[start:end]), nil
	default:
		return string(s.data[start:end]), nil
	}
}

// loneSurrogate reports the lone surrogate escaped at offset at, in the
// string (value or key) at s.pointer().
func (s *scanner) loneSurrogate(at int) *Error {
	return &Error{Kind: LoneSurrogate, Pointer: s.pointer(), Offset: int64(at),
		Msg: fmt.Sprintf("contains %s, a lone UTF-16 surrogate (half of a pair), which is not a character", s.data[at:at+6])}
}

// key reads an object key: "\u0061" and "a" are one key.
func (s *scanner) key() (key string, lone int, err error) {
	start, end, escaped, lone, err := s.str()
	switch {
	case err != nil:
		return "", -1, err
	case escaped:
		return unquote(s.data[start:end]), lone, nil
	default:
		return string(s.data[start:end]), lone, nil
	}
}

// tooDeep reports nesting past maxDepth at the value it is in at the top
// (a pointer a thousand levels long would help nobody read it).
func (s *scanner) tooDeep() error {
	s.path = s.path[:min(len(s.path), 1)]
	return &Error{Kind: TooDeep, Pointer: s.pointer(), Offset: int64(s.i), Msg: fmt.Sprintf("nested more than %d levels deep", maxDepth)}
}

func (s *scanner) object(depth int) (any, error) {
	if depth > maxDepth {
		return nil, s.tooDeep()
	}
	s.i++ // {
	var obj map[string]any
	if s.build {
		obj = map[string]any{}
	}
	s.space()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return obj, nil
	}
	// seen holds the keys read, with whether each was reported as a
	// duplicate (each is, once per object). When building, obj holds the
	// keys, and seen is made only for a first duplicate.
	var seen map[string]bool
	for {
		s.space()
		if s.i >= len(s.data) {
			return nil, s.truncated()
		}
		if s.data[s.i] != '"' {
			return nil, s.syntax("want a string key")
		}
		keyAt := s.i
		key, lone, err := s.key()
		if err != nil {
			return nil, err
		}
		s.path = append(s.path, step{key: key, index: -1})
		if lone >= 0 && s.opts.IJSON {
			if err := s.problem(s.loneSurrogate(lone)); err != nil {
				return nil, err
			}
		}
		var dup, reported bool
		if s.build {
			_, dup = obj[key]
			reported = seen[key]
		} else {
			if seen == nil {
				seen = map[string]bool{}
			}
			reported, dup = seen[key]
		}
		if dup && !reported {
			if err := s.problem(&Error{Kind: DuplicateKey, Pointer: s.pointer(), Offset: int64(keyAt), Msg: fmt.Sprintf("duplicate key %q", Shorten(key))}); err != nil {
				return nil, err
			}
			if seen == nil {
				seen = map[string]bool{}
			}
		}
		if seen != nil {
			seen[key] = dup
		}
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			if s.i >= len(s.data) {
				return nil, s.truncated()
			}
			return nil, s.syntax("want ':' after a key")
		}
		s.i++
		v, err := s.value(depth)
		if err != nil {
			return nil, err
		}
		if s.build {
			obj[key] = v // the last of duplicate keys, as encoding/json
		}
		s.path = s.path[:len(s.path)-1]
		s.space()
		if s.i >= len(s.data) {
			return nil, s.truncated()
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			if !s.build {
				return nil, nil
			}
			return obj, nil
		default:
			return nil, s.syntax("want ',' or '}' in an object")
		}
	}
}

func (s *scanner) array(depth int) (any, error) {
	if depth > maxDepth {
		return nil, s.tooDeep()
	}
	s.i++ // [
	var arr []any
	if s.build {
		arr = []any{}
	}
	s.space()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		if !s.build {
			return nil, nil
		}
		return arr, nil
	}
	for n := 0; ; n++ {
		s.path = append(s.path, step{index: n})
		v, err := s.value(depth)
		if err != nil {
			return nil, err
		}
		if s.build {
			arr = append(arr, v)
		}
		s.path = s.path[:len(s.path)-1]
		s.space()
		if s.i >= len(s.data) {
			return nil, s.truncated()
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			if !s.build {
				return nil, nil
			}
			return arr, nil
		default:
			return nil, s.syntax("want ',' or ']' in an array")
		}
	}
}
