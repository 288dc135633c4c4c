package document

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"reflect"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"impo.com.uy/copetes/backend/shared/strictjson"
)

// The fast path. Most documents are valid, and proving that takes one
// reading of the text, with nothing built: strictjson.Walk checks the
// text's rules token by token, and the schema (compiled to a node tree),
// the control characters and the semantic rules are checked on the way,
// each string read in place. The fast path says only "valid" or "not
// sure": for anything else, Validate runs the full check (Parse, the
// schema library, the rules), which finds the problems and reports them
// with their paths, as it always did. So the report of an invalid
// document is the full check's, word for word, and the fast path must
// never call valid a document the full check refuses: FuzzFastPath holds
// it to that.

// node is a compiled schema as the fast path checks it: the keywords of
// the embedded schema, in their JSON Schema meaning. A schema with any
// other keyword compiles to no node, and every document then takes the
// full check.
type node struct {
	kinds                kinds           // the JSON types allowed; none: any
	enum                 map[string]bool // the values allowed (strings only); nil: any
	format               *jsonschema.Format
	pattern              jsonschema.Regexp
	minLength, maxLength int // in characters; -1: no bound

	properties  map[string]*node // a nil node: a property with no rule (true)
	required    map[string]int   // each required property's bit in allRequired
	allRequired uint64
	closed      bool  // additionalProperties: false
	additional  *node // additionalProperties: a schema
}

type kinds uint8

const (
	kindObject kinds = 1 << iota
	kindArray
	kindString
	kindNumber
	kindBoolean
	kindNull
)

var kindOfType = map[string]kinds{
	"object": kindObject, "array": kindArray, "string": kindString,
	"number": kindNumber, "boolean": kindBoolean, "null": kindNull,
}

var kindOfToken = [...]kinds{
	strictjson.BeginObject: kindObject, strictjson.BeginArray: kindArray, strictjson.String: kindString,
	strictjson.Number: kindNumber, strictjson.True: kindBoolean, strictjson.False: kindBoolean, strictjson.Null: kindNull,
}

// knownFields are the fields of a compiled jsonschema.Schema that
// compile reads, or that only name or describe a schema. A schema that
// sets any other field is not compiled: no keyword the fast path does not
// know, nor any that a later version of the library adds, goes unchecked.
var knownFields = map[string]bool{
	"DraftVersion": true, "Location": true, "ID": true,
	"Title": true, "Description": true, "Default": true, "Comment": true,
	"ReadOnly": true, "WriteOnly": true, "Examples": true, "Deprecated": true,
	"Bool": true, "Types": true, "Enum": true, "Format": true, "Pattern": true,
	"MinLength": true, "MaxLength": true, "Required": true, "Properties": true, "AdditionalProperties": true,
}

// compile makes the node of s; false when s uses a keyword the fast path
// does not check. A nil node with true is a schema that allows anything.
func compile(s *jsonschema.Schema) (*node, bool) {
	rv := reflect.ValueOf(s).Elem()
	for i := range rv.NumField() {
		if f := rv.Type().Field(i); f.IsExported() && !knownFields[f.Name] && !rv.Field(i).IsZero() {
			return nil, false
		}
	}
	if s.DraftVersion < 2019 {
		return nil, false // the fast path is held to the full check on drafts 2019-09 and 2020-12 only
	}
	if s.Bool != nil {
		return nil, *s.Bool
	}
	n := &node{minLength: -1, maxLength: -1, format: s.Format, pattern: s.Pattern}
	if s.Types != nil {
		for _, t := range s.Types.ToStrings() {
			k, ok := kindOfType[t]
			if !ok {
				return nil, false // integer: a number with no fraction, which takes reading the number
			}
			n.kinds |= k
		}
	}
	if s.Enum != nil {
		n.enum = map[string]bool{}
		for _, v := range s.Enum.Values {
			str, ok := v.(string)
			if !ok {
				return nil, false
			}
			n.enum[str] = true
		}
	}
	if s.MinLength != nil {
		n.minLength = *s.MinLength
	}
	if s.MaxLength != nil {
		n.maxLength = *s.MaxLength
	}
	if len(s.Required) > 0 {
		n.required = map[string]int{}
		for _, name := range s.Required {
			if _, ok := n.required[name]; !ok {
				if len(n.required) == 64 {
					return nil, false
				}
				n.required[name] = len(n.required)
				n.allRequired |= 1 << n.required[name]
			}
		}
	}
	if len(s.Properties) > 0 {
		n.properties = map[string]*node{}
		for name, ps := range s.Properties {
			child, ok := compile(ps)
			if !ok {
				return nil, false
			}
			n.properties[name] = child
		}
	}
	switch a := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		n.closed = !a
	case *jsonschema.Schema:
		child, ok := compile(a)
		if !ok {
			return nil, false
		}
		n.additional = child
	default:
		return nil, false
	}
	return n, true
}

// accepts says whether the value that starts with t (a string with
// props p) passes n's own keywords; an object's members and an array's
// items are checked as they are read.
func (n *node) accepts(t strictjson.Token, p textProps) bool {
	if n.kinds != 0 && n.kinds&kindOfToken[t.Kind] == 0 {
		return false
	}
	if t.Kind != strictjson.String {
		// The library asserts a format on strings only, but a format of
		// one's own might look at other values: not sure.
		return n.enum == nil && n.format == nil
	}
	if n.minLength >= 0 && p.runes < n.minLength || n.maxLength >= 0 && p.runes > n.maxLength {
		return false
	}
	if n.enum == nil && n.format == nil && n.pattern == nil {
		return true
	}
	s := t.Unquote()
	return (n.enum == nil || n.enum[s]) && (n.pattern == nil || n.pattern.MatchString(s)) &&
		(n.format == nil || n.format.Validate(s) == nil)
}

// textProps is what the rules ask of a string, learnt in one reading of
// its text.
type textProps struct {
	runes       int  // characters
	control     bool // a control character other than tab, line feed and carriage return (see controlAt)
	replacement bool // U+FFFD
	allSpace    bool // nothing but white space (unicode.IsSpace), or empty
	edgeSpace   bool // starts or ends with white space
}

// propsReader builds the textProps of a string from its pieces.
type propsReader struct {
	p           textProps
	first, last rune
}

func (r *propsReader) char(c rune) {
	if r.p.runes == 0 {
		r.first = c
	}
	r.p.runes++
	r.last = c
	r.p.control = r.p.control || c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f || c >= 0x80 && c <= 0x9f
	r.p.replacement = r.p.replacement || c == utf8.RuneError
	r.p.allSpace = r.p.allSpace && unicode.IsSpace(c)
}

const (
	ones   = 0x0101010101010101
	high   = 0x8080808080808080
	spaces = 0x2020202020202020
)

// below reports, for each byte of w, whether it is below n (n <= 128):
// nonzero if any is (Bit Twiddling Hacks, "hasless").
func below(w, n uint64) uint64 { return (w - ones*n) & ^w & high }

// text reads b, valid UTF-8, eight bytes at a time while they are
// printable ASCII (most of a legal text): those are no control
// character, no U+FFFD, and white space only if they are all spaces.
func (r *propsReader) text(b []byte) {
	for i := 0; i < len(b); {
		if i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			// The lowest byte flagged is the first that is not printable
			// ASCII (a flag can be wrong only above a right one).
			n := 8
			if other := w&high | below(w, 0x20) | below(w^(ones*0x7f), 1); other != 0 {
				n = bits.TrailingZeros64(other) / 8
			}
			if n > 0 {
				if r.p.runes == 0 {
					r.first = rune(b[i])
				}
				r.p.runes += n
				r.last = rune(b[i+n-1])
				r.p.allSpace = r.p.allSpace && (w^spaces)<<(64-8*n) == 0
				i += n
				continue
			}
		}
		c, size := rune(b[i]), 1
		if c >= utf8.RuneSelf {
			c, size = utf8.DecodeRune(b[i:])
		}
		r.char(c)
		i += size
	}
}

func (r *propsReader) props() textProps {
	p := r.p
	p.edgeSpace = p.runes > 0 && (unicode.IsSpace(r.first) || unicode.IsSpace(r.last))
	return p
}

// propsOf reads the string or key t in place.
func propsOf(t strictjson.Token) textProps {
	r := propsReader{p: textProps{allSpace: true}}
	if !t.Escaped {
		r.text(t.Raw)
		return r.props()
	}
	for plain, c := range t.Chunks() {
		if plain != nil {
			r.text(plain)
		} else {
			r.char(c)
		}
	}
	return r.props()
}

// errNotSure ends a fast reading: the full check must decide.
var errNotSure = errors.New("not sure: run the full check")

// The top-level fields that the semantic rules read.
const (
	fieldID = iota
	fieldDate
	fieldPublicationDate
	fieldText
	fieldTitle
	fieldCopete
	fieldIssuer
	fieldNone = -1
)

func topField(name string) int {
	switch name {
	case "document_id":
		return fieldID
	case "date":
		return fieldDate
	case "publication_date":
		return fieldPublicationDate
	case "text":
		return fieldText
	case "title":
		return fieldTitle
	case "copete":
		return fieldCopete
	case "issuer":
		return fieldIssuer
	}
	return fieldNone
}

// frame is an object or array being read.
type frame struct {
	n        *node // its schema; nil: none (an array's items have none)
	object   bool
	required uint64 // the required members read so far
}

// fastReading is one document read on the fast path.
type fastReading struct {
	root   *node
	stack  []frame
	frames [8]frame // stack's first frames, with the reading

	next  *node // after a key: the schema of its value
	field int   // after a key of the top-level object: which field it is

	object bool // the document is an object: then the semantic rules apply
	id     string
	dates  [2]dateField
	texts  [4]struct {
		p  textProps
		ok bool
	}
}

func (f *fastReading) visit(t strictjson.Token) error {
	switch t.Kind {
	case strictjson.Key:
		return f.key(t)
	case strictjson.EndObject, strictjson.EndArray:
		fr := f.stack[len(f.stack)-1]
		f.stack = f.stack[:len(f.stack)-1]
		if fr.n != nil && fr.required != fr.n.allRequired {
			return errNotSure
		}
		return nil
	}
	// A value: the root's, a member's (its key said which schema), or an
	// array's item.
	var n *node
	field := fieldNone
	switch {
	case len(f.stack) == 0:
		n = f.root
	case f.stack[len(f.stack)-1].object:
		n, field = f.next, f.field
	}
	f.next, f.field = nil, fieldNone
	var p textProps
	if t.Kind == strictjson.String {
		if p = propsOf(t); p.control {
			return errNotSure
		}
	}
	if n != nil && !n.accepts(t, p) {
		return errNotSure
	}
	switch t.Kind {
	case strictjson.BeginObject:
		f.object = f.object || len(f.stack) == 0
		f.stack = append(f.stack, frame{n: n, object: true})
	case strictjson.BeginArray:
		f.stack = append(f.stack, frame{})
	case strictjson.String:
		switch field {
		case fieldID:
			f.id = t.Unquote()
		case fieldDate, fieldPublicationDate:
			f.dates[field-fieldDate] = dateField{t.Unquote(), true}
		case fieldText, fieldTitle, fieldCopete, fieldIssuer:
			f.texts[field-fieldText].p, f.texts[field-fieldText].ok = p, true
		}
	}
	return nil
}

func (f *fastReading) key(t strictjson.Token) error {
	if propsOf(t).control {
		return errNotSure
	}
	fr := &f.stack[len(f.stack)-1]
	top := len(f.stack) == 1
	if fr.n == nil && !top {
		return nil
	}
	var name string
	if t.Escaped {
		name = t.Unquote()
	} else {
		name = string(t.Raw) // only looked up: on the stack, for most keys
	}
	if n := fr.n; n != nil {
		child, ok := n.properties[name]
		switch {
		case ok:
			f.next = child
		case n.closed:
			return errNotSure
		default:
			f.next = n.additional
		}
		if i, ok := n.required[name]; ok {
			fr.required |= 1 << i
		}
	}
	if top {
		f.field = topField(name)
	}
	return nil
}

// fastValid reports whether data is a valid document, and its
// document_id, when the fast path can tell; false means the full check
// must decide.
func (v *Validator) fastValid(data []byte, o strictjson.Options) (string, bool) {
	if v.plan == nil {
		return "", false
	}
	f := &fastReading{root: v.plan, field: fieldNone}
	f.stack = f.frames[:0]
	if strictjson.Walk(data, o, f.visit) != nil {
		return "", false
	}
	if !f.object {
		return f.id, true
	}
	ok := true
	v.dateRules(f.dates, func(string, string) { ok = false })
	for i, t := range f.texts {
		// The rules of semantic, on what was read of each text.
		if t.ok && (t.p.runes > 0 && t.p.allSpace || t.p.replacement || i+fieldText == fieldTitle && t.p.edgeSpace) {
			ok = false
		}
	}
	return f.id, ok
}
