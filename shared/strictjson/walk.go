package strictjson

import "iter"

// TokenKind says what a Token is.
type TokenKind int

// The kinds of token. An object is BeginObject, then a Key and its value
// for each member, then EndObject; an array is BeginArray, its values,
// then EndArray.
const (
	BeginObject TokenKind = iota + 1
	EndObject
	BeginArray
	EndArray
	Key
	String
	Number
	True
	False
	Null
)

// Token is one step of a JSON text, as Walk reads it.
type Token struct {
	Kind TokenKind
	// Raw is, for a Key or a String, its text between the quotes,
	// escapes and all; for a Number, its literal. It is a slice of the
	// text Walk reads, not a copy.
	Raw []byte
	// Offset is where Raw starts in the text.
	Offset int
	// Escaped says that Raw holds escapes: it reads as something other
	// than what is written.
	Escaped bool
}

// Unquote returns what a Key or a String reads as: the string that Parse
// builds for it.
func (t Token) Unquote() string {
	if t.Escaped {
		return unquote(t.Raw)
	}
	return string(t.Raw)
}

// Chunks yields what a Key or a String reads as, in pieces, without
// building it: each run of bytes that reads as written (plain, and r <
// 0), and each escaped character (plain nil, and r). As in Unquote, an
// escaped lone surrogate reads as U+FFFD.
func (t Token) Chunks() iter.Seq2[[]byte, rune] { return chunks(t.Raw) }

// Walk reads data as Parse does with a nil report, so that the first
// problem of any kind ends the reading, but builds nothing: it hands each
// token to visit, in text order, and returns the first problem as an
// *Error. An error from visit also ends the reading, and Walk returns it.
// A caller that only needs to know whether a text passes, and a few of
// its values, reads it this way at a fraction of Parse's cost: the
// values are never copied.
func Walk(data []byte, o Options, visit func(Token) error) error {
	s := newReader(data)
	s.opts, s.visit = o, visit
	_, err := s.run()
	return err
}

// newReader returns a scanner that reads data without building, with
// all the room that the path and the keys of most texts need in its one
// allocation.
func newReader(data []byte) *scanner {
	s := &struct {
		scanner
		path [8]step
		keys [fewKeys + 1]step
	}{scanner: scanner{data: data}}
	s.scanner.path, s.scanner.keys = s.path[:0], s.keys[:0]
	return &s.scanner
}
