package strictjson

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"iter"
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
// object key, or an array index (then index >= 0). A key is kept as the
// place of its text, an index as a number, so that reading allocates
// nothing for the path: a pointer is built only for an error.
type step struct {
	start, end int  // a key's raw contents: data[start:end]
	escaped    bool // they hold escapes
	index      int
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

	visit func(Token) error // set by Walk
	keys  []step            // without build: the keys of the objects being read, for duplicates
}

func (s *scanner) pointer() string {
	p := make([]byte, 0, 64) // on the stack, for most pointers
	for _, st := range s.path {
		var ok bool
		if st.index >= 0 {
			p, ok = appendIndex(p, st.index)
		} else {
			p, ok = appendKey(p, s.data[st.start:st.end], st.escaped)
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
		return true, s.literal("true", True)
	case c == 'f':
		return false, s.literal("false", False)
	case c == 'n':
		return nil, s.literal("null", Null)
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		return nil, s.syntax("unexpected character %q", c)
	}
}

func (s *scanner) literal(word string, kind TokenKind) error {
	if !strings.HasPrefix(string(s.data[s.i:min(s.i+len(word), len(s.data))]), word) {
		return s.syntax("invalid literal")
	}
	s.i += len(word)
	return s.emit(Token{Kind: kind})
}

// emit hands t to Walk's visit, if any.
func (s *scanner) emit(t Token) error {
	if s.visit == nil {
		return nil
	}
	return s.visit(t)
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
	if err := s.emit(Token{Kind: Number, Raw: s.data[start:s.i], Offset: start}); err != nil {
		return nil, err
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
		if s.i = skipPlain(s.data, s.i); s.i >= len(s.data) {
			break
		}
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

// skipPlain returns the offset of the first quote, backslash or control
// character in data from i on, or len(data): it passes over what a
// string holds as written eight bytes at a time (most of a text).
func skipPlain(data []byte, i int) int {
	for ; i+8 <= len(data); i += 8 {
		if special(binary.LittleEndian.Uint64(data[i:])) {
			break
		}
	}
	for ; i < len(data); i++ {
		if c := data[i]; c == '"' || c == '\\' || c < 0x20 {
			break
		}
	}
	return i
}

const (
	ones = 0x0101010101010101 // 0x01 in each byte of a word
	high = 0x8080808080808080 // the high bit of each byte
)

// special reports whether one of the eight bytes of w is a quote, a
// backslash or below 0x20 (Bit Twiddling Hacks, "determine if a word has
// a byte less than n", exact for n <= 128; a zero byte is one below 1).
func special(w uint64) bool {
	below := func(w uint64, n uint64) uint64 { return (w - ones*n) & ^w & high }
	return below(w, 0x20)|below(w^(ones*'"'), 1)|below(w^(ones*'\\'), 1) != 0
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
	for plain, r := range chunks(raw) {
		if plain != nil {
			b.Write(plain)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// chunks yields the decoded contents of a string that str read: each run
// of bytes that reads as written (and r < 0), and each escaped character
// (plain nil).
func chunks(raw []byte) iter.Seq2[[]byte, rune] {
	return func(yield func(plain []byte, r rune) bool) {
		for i := 0; i < len(raw); {
			if raw[i] != '\\' {
				j := bytes.IndexByte(raw[i:], '\\')
				if j < 0 {
					j = len(raw) - i
				}
				if !yield(raw[i:i+j], -1) {
					return
				}
				i += j
				continue
			}
			r, n := unescape(raw[i:])
			if !yield(nil, r) {
				return
			}
			i += n
		}
	}
}

// unescape decodes the escape that raw starts with (one that str
// accepted): the character, and how many bytes it takes. A \u escape of
// a high surrogate right before one of a low surrogate is one character;
// any other surrogate reads as U+FFFD.
func unescape(raw []byte) (rune, int) {
	switch c := raw[1]; c {
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r, _ := hex4(raw[2:6])
		if !utf16.IsSurrogate(r) {
			return r, 6
		}
		r2 := rune(-1)
		if len(raw) >= 12 && raw[6] == '\\' && raw[7] == 'u' {
			r2, _ = hex4(raw[8:12])
		}
		if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
			return d, 12
		}
		return utf8.RuneError, 6
	default: // " \ /
		return rune(c), 2
	}
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
	if err := s.emit(Token{Kind: String, Raw: s.data[start:end], Offset: start, Escaped: escaped}); err != nil {
		return nil, err
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
	if err := s.emit(Token{Kind: BeginObject}); err != nil {
		return nil, err
	}
	s.space()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return obj, s.emit(Token{Kind: EndObject})
	}
	// Building, obj holds the keys read, and seen whether each was
	// reported as a duplicate (each is, once per object); seen is made
	// only for a first duplicate. Otherwise (Check, Walk) a duplicate
	// ends the reading, and the keys read are s.keys[keysAt:], with a set
	// of them once there are more than a few.
	var seen map[string]bool
	keysAt := len(s.keys)
	var set map[string]struct{}
	for {
		s.space()
		if s.i >= len(s.data) {
			return nil, s.truncated()
		}
		if s.data[s.i] != '"' {
			return nil, s.syntax("want a string key")
		}
		keyAt := s.i
		start, end, escaped, lone, err := s.str()
		if err != nil {
			return nil, err
		}
		k := step{start: start, end: end, escaped: escaped, index: -1}
		s.path = append(s.path, k)
		if lone >= 0 && s.opts.IJSON {
			if err := s.problem(s.loneSurrogate(lone)); err != nil {
				return nil, err
			}
		}
		var key string
		if s.build {
			key = s.keyString(k)
			_, dup := obj[key]
			if dup && !seen[key] {
				if err := s.problem(s.duplicateKey(keyAt, key)); err != nil {
					return nil, err
				}
				if seen == nil {
					seen = map[string]bool{}
				}
			}
			if seen != nil {
				seen[key] = dup
			}
		} else if s.duplicate(k, keysAt, &set) {
			return nil, s.duplicateKey(keyAt, s.keyString(k))
		}
		if err := s.emit(Token{Kind: Key, Raw: s.data[start:end], Offset: start, Escaped: escaped}); err != nil {
			return nil, err
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
			s.keys = s.keys[:keysAt]
			if err := s.emit(Token{Kind: EndObject}); err != nil {
				return nil, err
			}
			if !s.build {
				return nil, nil
			}
			return obj, nil
		default:
			return nil, s.syntax("want ',' or '}' in an object")
		}
	}
}

func (s *scanner) duplicateKey(at int, key string) *Error {
	return &Error{Kind: DuplicateKey, Pointer: s.pointer(), Offset: int64(at), Msg: fmt.Sprintf("duplicate key %q", Shorten(key))}
}

// keyString is the key k as Parse builds it.
func (s *scanner) keyString(k step) string {
	if k.escaped {
		return unquote(s.data[k.start:k.end])
	}
	return string(s.data[k.start:k.end])
}

// fewKeys is how many keys an object may have before duplicate keys are
// looked up in a set rather than compared one by one: most objects have
// fewer, and comparing them allocates nothing.
const fewKeys = 16

// duplicate reports whether k is a key already read in the object whose
// keys start at s.keys[from], and adds it to them.
func (s *scanner) duplicate(k step, from int, set *map[string]struct{}) bool {
	if *set == nil {
		for _, o := range s.keys[from:] {
			if s.sameKey(o, k) {
				return true
			}
		}
		s.keys = append(s.keys, k)
		if len(s.keys)-from > fewKeys {
			*set = make(map[string]struct{}, 4*fewKeys)
			for _, o := range s.keys[from:] {
				(*set)[s.keyString(o)] = struct{}{}
			}
		}
		return false
	}
	key := s.keyString(k)
	if _, dup := (*set)[key]; dup {
		return true
	}
	(*set)[key] = struct{}{}
	return false
}

// sameKey reports whether two keys read the same ("a" and "\u0061" do).
func (s *scanner) sameKey(a, b step) bool {
	if !a.escaped && !b.escaped {
		return bytes.Equal(s.data[a.start:a.end], s.data[b.start:b.end])
	}
	return s.keyString(a) == s.keyString(b)
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
	if err := s.emit(Token{Kind: BeginArray}); err != nil {
		return nil, err
	}
	s.space()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		if err := s.emit(Token{Kind: EndArray}); err != nil {
			return nil, err
		}
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
			if err := s.emit(Token{Kind: EndArray}); err != nil {
				return nil, err
			}
			if !s.build {
				return nil, nil
			}
			return arr, nil
		default:
			return nil, s.syntax("want ',' or ']' in an array")
		}
	}
}
