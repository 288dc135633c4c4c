// Package document is what a pipeline document must be: a JSON Schema
// (draft 2020-12, embedded, replaceable) and the semantic rules a careful
// editor of legal texts would check, reported all at once with a JSON
// Pointer to each offending value.
package document

import (
	"bytes"
	"cmp"
	"container/heap"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"impo.com.uy/copetes/backend/shared/strictjson"
)

//go:embed schema.json
var defaultSchema []byte

// DefaultSchema returns the embedded schema, for tools and the README.
func DefaultSchema() []byte { return bytes.Clone(defaultSchema) }

// FieldError is one problem, at Path (an RFC 6901 JSON Pointer into the
// document; "" for the whole document).
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Result is the outcome of validating one document.
type Result struct {
	Valid bool
	// DocumentID is the document's document_id when it has one that is a
	// string, also when it breaks rules; empty when the text could not
	// be read or names document_id twice (which one would it be?).
	DocumentID string
	// Malformed: not JSON at all (bad UTF-8, syntax, cut short, trailing
	// data): nothing else was checked.
	Malformed bool
	// Errors are the problems found, sorted by path: all of them, or,
	// past the Validator's MaxErrors, the first MaxErrors in that order.
	Errors []FieldError
	// ErrorCount is how many problems were found: len(Errors), or more
	// when Errors stops at MaxErrors.
	ErrorCount int
}

// The default bounds of a Validator.
const (
	// MaxErrors is how many problems a Result lists by default: enough to
	// fix a document in one round, few enough that a document made of a
	// million broken values does not become a report of 90 MB.
	MaxErrors = 100
	// MaxValues is how many JSON values (each object, array, string,
	// number, true, false and null) a document may hold by default. A
	// norm has dozens; what a check builds in memory grows with this
	// count, not with the bytes: 10 MB of [{"a":0},…] are 1.1 million
	// maps, 700 MB.
	MaxValues = 100_000
)

// Validator checks documents against a schema and the semantic rules.
type Validator struct {
	schema *jsonschema.Schema
	plan   *node // the schema for the fast path (fast.go); nil: always the full check
	// Today decides what "in the future" means; tests set it.
	Today func() time.Time
	// MaxErrors bounds Result.Errors (ErrorCount still counts them all).
	// MaxValues bounds the values of a document: at the one past it, the
	// reading stops and the document is refused with that one error.
	// New sets both to the package defaults; zero means those too.
	MaxErrors, MaxValues int
}

const schemaURL = "document.schema.json"

// New compiles schema (nil: the embedded default). Formats (date, uri)
// are asserted, not only annotated.
func New(schema []byte) (*Validator, error) {
	if schema == nil {
		schema = defaultSchema
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("document schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("document schema: %w", err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("document schema: %w", err)
	}
	plan, ok := compile(sch)
	if ok && plan == nil {
		plan = &node{minLength: -1, maxLength: -1} // a schema that allows anything
	}
	return &Validator{schema: sch, plan: plan, Today: time.Now, MaxErrors: MaxErrors, MaxValues: MaxValues}, nil
}

var printer = message.NewPrinter(language.English)

// Validate checks data: first the text (UTF-8, syntax, duplicate keys,
// I-JSON), then the schema, then the semantic rules. It never panics and
// returns either Valid with no errors or at least one error.
//
// Problems of the text that leave it JSON (a byte order mark, a
// duplicate key, a number a double does not hold, a lone surrogate) are
// reported alone, each where it is: the value they leave is ambiguous or
// not what other readers read, and the schema library computes exactly
// with numbers, for a long one for minutes.
//
// Most documents are valid, and a valid one is told so in one reading of
// its text, with nothing built (fast.go); only a document that may break
// a rule is read again and checked in full, so that each problem is
// reported with its path.
func (v *Validator) Validate(data []byte) Result {
	o := strictjson.Options{IJSON: true, MaxValues: cmp.Or(max(v.MaxValues, 0), MaxValues)}
	if id, ok := v.fastValid(data, o); ok {
		return Result{Valid: true, DocumentID: id}
	}
	return v.fullCheck(data, o)
}

// fullCheck validates data and reports every problem: what Validate does
// when the fast path cannot tell a document valid.
func (v *Validator) fullCheck(data []byte, o strictjson.Options) Result {
	var r Result
	c := newCollector(cmp.Or(max(v.MaxErrors, 0), MaxErrors))
	ambiguousID := false
	inst, err := strictjson.Parse(data, o,
		func(e *strictjson.Error) {
			ambiguousID = ambiguousID || e.Kind == strictjson.DuplicateKey && e.Pointer == "/document_id"
			c.add(e.Pointer, func() string { return e.Msg })
		})
	if err != nil {
		var se *strictjson.Error
		errors.As(err, &se) // Parse returns only *Error
		// Past a limit the text may well be JSON: say which limit.
		r.Malformed = se.Kind != strictjson.TooDeep && se.Kind != strictjson.TooManyValues
		r.Errors, r.ErrorCount = []FieldError{{Path: se.Pointer, Message: se.Msg}}, 1
		return r
	}
	obj, _ := inst.(map[string]any)
	if id, ok := obj["document_id"].(string); ok && !ambiguousID {
		r.DocumentID = id
	}
	if c.count == 0 {
		controlCharacters(inst, new([]step), c)
		var ve *jsonschema.ValidationError
		if err := v.schema.Validate(inst); errors.As(err, &ve) {
			leaves(ve, c)
		} else if err != nil {
			c.add("", err.Error)
		}
		if obj != nil {
			v.semantic(obj, c)
		}
	}
	r.Errors, r.ErrorCount = c.result()
	r.Valid = r.ErrorCount == 0
	return r
}

// collector keeps the first max problems in path order, and counts all of
// them: a report stays small however many there are, and no list of them
// all is ever built.
type collector struct {
	max   int
	count int
	kept  keptErrors // a max-heap once full: kept[0] is the one to drop next
}

type keptError struct {
	FieldError
	seq int // order found: of two problems at one path, the first stays
}

// add counts a problem at path, and keeps it if it is among the first
// max in path order; msg is called only then.
func (c *collector) add(path string, msg func() string) {
	c.count++
	if len(c.kept) < c.max {
		c.kept = append(c.kept, keptError{FieldError{path, msg()}, c.count})
		if len(c.kept) == c.max {
			heap.Init(&c.kept)
		}
		return
	}
	if path >= c.kept[0].Path {
		return
	}
	c.kept[0] = keptError{FieldError{path, msg()}, c.count}
	heap.Fix(&c.kept, 0)
}

// result returns the problems kept, sorted by path, and how many were found.
func (c *collector) result() ([]FieldError, int) {
	if len(c.kept) == 0 {
		return nil, 0
	}
	slices.SortFunc(c.kept, compareKept)
	out := make([]FieldError, len(c.kept))
	for i, k := range c.kept {
		out[i] = k.FieldError
	}
	return out, c.count
}

func newCollector(max int) *collector { return &collector{max: max} }

type keptErrors []keptError

// compareKept orders problems by path, then in the order found.
func compareKept(a, b keptError) int {
	return cmp.Or(strings.Compare(a.Path, b.Path), cmp.Compare(a.seq, b.seq))
}

func (h keptErrors) Len() int           { return len(h) }
func (h keptErrors) Less(i, j int) bool { return compareKept(h[i], h[j]) > 0 }
func (h keptErrors) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keptErrors) Push(x any)        { *h = append(*h, x.(keptError)) }
func (h *keptErrors) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func pointer(tokens ...string) string { return strictjson.Pointer(tokens...) }

// friendly replaces the schema library's pattern messages, which quote a
// regular expression, for the fields whose rule a person knows by name.
var friendly = map[string]string{
	"/document_id": "must start with a letter or digit and have at most 128 letters, digits and . _ : / -",
	"/number":      "must be digits separated by . or / (for example 20.212 or 123/025)",
	"/source_uri":  "must be a gs://bucket/object or https:// address",
}

// leaves flattens the schema errors to the ones a person can act on, each
// at the path of the value to fix: a missing or unknown field is reported
// at the field's own path.
func leaves(e *jsonschema.ValidationError, c *collector) {
	if len(e.Causes) > 0 {
		for _, cause := range e.Causes {
			leaves(cause, c)
		}
		return
	}
	path := pointer(e.InstanceLocation...)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			c.add(path+pointer(m), func() string { return "is required" })
		}
		return
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			c.add(path+pointer(p), func() string { return "is not a field of the document" })
		}
		return
	case *kind.Pattern:
		if msg, ok := friendly[path]; ok {
			c.add(path, func() string { return msg })
			return
		}
	case *kind.MinLength:
		if k.Want == 1 {
			c.add(path, func() string { return "must not be empty" })
			return
		}
		c.add(path, func() string { return fmt.Sprintf("has %d characters; at least %d are needed", k.Got, k.Want) })
		return
	case *kind.MaxLength:
		c.add(path, func() string { return fmt.Sprintf("has %d characters; at most %d are allowed", k.Got, k.Want) })
		return
	case *kind.Format:
		if k.Want == "date" {
			c.add(path, func() string {
				return fmt.Sprintf("%v is not a real calendar date in the form YYYY-MM-DD", shorten(fmt.Sprint(k.Got)))
			})
			return
		}
	}
	c.add(path, func() string { return e.ErrorKind.LocalizedString(printer) })
}

// shorten is strictjson's: a message names a value, it need not repeat a
// megabyte of it.
var shorten = strictjson.Shorten

// controlCharacters reports strings (keys too) holding control characters
// other than tab, line feed and carriage return: invisible in print, they
// corrupt a published text. path holds the steps to v, as a stack that
// each level pushes to and pops (nothing is allocated per value); a
// pointer is built only for an error.
func controlCharacters(v any, path *[]step, c *collector) {
	check := func(s string) {
		if i, r := controlAt(s); i >= 0 {
			c.add(pointerOf(*path), func() string { return fmt.Sprintf("has the control character %U at byte %d", r, i) })
		}
	}
	switch v := v.(type) {
	case string:
		check(v)
	case map[string]any:
		for k, child := range v {
			*path = append(*path, step{key: k, index: -1})
			check(k)
			controlCharacters(child, path, c)
			*path = (*path)[:len(*path)-1]
		}
	case []any:
		for i, child := range v {
			*path = append(*path, step{index: i})
			controlCharacters(child, path, c)
			*path = (*path)[:len(*path)-1]
		}
	}
}

// controlAt returns the byte offset of the first control character in s
// (C0 other than tab, line feed and carriage return; DEL; C1) and the
// character, or -1. s is UTF-8: a C1 character is 0xC2 and 0x80–0x9F.
func controlAt(s string) (int, rune) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != 0x7f && c != 0xc2 {
			continue
		}
		switch {
		case c == 0xc2:
			if i+1 < len(s) && s[i+1] <= 0x9f {
				return i, rune(s[i+1])
			}
		case c != '\t' && c != '\n' && c != '\r':
			return i, rune(c)
		}
	}
	return -1, 0
}

// step is one reference token of a path: an object key, or an array
// index when index >= 0 (kept as a number: most are never printed).
type step struct {
	key   string
	index int
}

func pointerOf(path []step) string {
	tokens := make([]string, 0, 8) // on the stack, for most paths
	for _, s := range path {
		if s.index >= 0 {
			tokens = append(tokens, strconv.Itoa(s.index))
		} else {
			tokens = append(tokens, s.key)
		}
	}
	return pointer(tokens...)
}

// earliest is the earliest date a norm can carry: Uruguay's first
// constitution (1830); IMPO's older texts are colonial and go as "otro"
// with their own rules, if ever.
var earliest = time.Date(1825, 8, 25, 0, 0, 0, 0, time.UTC)

// semantic applies the rules a schema cannot say.
func (v *Validator) semantic(doc map[string]any, c *collector) {
	fail := func(path, msg string) { c.add(path, func() string { return msg }) }
	var dates [2]dateField
	for i, f := range dateFields {
		dates[i].s, dates[i].ok = doc[f].(string)
	}
	v.dateRules(dates, fail)
	for _, f := range []string{"text", "title", "copete", "issuer"} {
		s, ok := doc[f].(string)
		if !ok {
			continue
		}
		if s != "" && strings.TrimSpace(s) == "" {
			fail(pointer(f), "is only white space")
		}
		if strings.ContainsRune(s, unicode.ReplacementChar) {
			// U+FFFD is what a lossy conversion leaves where a character
			// could not be read: the text upstream is damaged. (An
			// escaped lone surrogate also reads as U+FFFD; it is reported
			// as what it is, and then these rules do not run.)
			fail(pointer(f), "contains U+FFFD (�), the mark of a damaged character conversion")
		}
	}
	if s, ok := doc["title"].(string); ok && s != strings.TrimSpace(s) {
		fail("/title", "has leading or trailing white space")
	}
}

// dateFields are the fields that dateRules reads, in its order.
var dateFields = [2]string{"date", "publication_date"}

// dateField is one of dateFields: ok when the document has it as a
// string, s.
type dateField struct {
	s  string
	ok bool
}

// dateRules applies the rules on the norm's dates (date, then
// publication_date): neither before the republic nor in the future, and
// published no earlier than dated.
func (v *Validator) dateRules(fields [2]dateField, fail func(path, msg string)) {
	tomorrow := v.Today().UTC().AddDate(0, 0, 1)
	var dates [2]time.Time
	var read [2]bool
	for i, f := range fields {
		if !f.ok {
			continue
		}
		d, err := time.Parse(time.DateOnly, f.s)
		if err != nil {
			continue // the schema's date format already reported it
		}
		switch {
		case d.Before(earliest):
			fail(pointer(dateFields[i]), fmt.Sprintf("%s is before 1825-08-25, earlier than any national norm", f.s))
		case d.After(tomorrow):
			fail(pointer(dateFields[i]), fmt.Sprintf("%s is in the future", f.s))
		default:
			dates[i], read[i] = d, true
		}
	}
	if read[0] && read[1] && dates[1].Before(dates[0]) {
		fail("/publication_date", fmt.Sprintf("%s is before the norm's date %s", fields[1].s, fields[0].s))
	}
}

// Report is what the "invalid" topic receives for a document that failed:
// ErrorCount problems were found, and Errors lists the first of them.
type Report struct {
	MessageID  string       `json:"message_id"`
	DocumentID string       `json:"document_id"`
	ErrorCount int          `json:"error_count"`
	Errors     []FieldError `json:"errors"`
}

// MarshalReport encodes the report of r for the message messageID.
func MarshalReport(messageID string, r Result) ([]byte, error) {
	return json.Marshal(Report{MessageID: messageID, DocumentID: r.DocumentID, ErrorCount: r.ErrorCount, Errors: r.Errors})
}
