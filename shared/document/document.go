// Package document is what a pipeline document must be: a JSON Schema
// (draft 2020-12, embedded, replaceable) and the semantic rules a careful
// editor of legal texts would check, reported all at once with a JSON
// Pointer to each offending value.
package document

import (
	"bytes"
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
	Valid      bool
	DocumentID string       // when the document has a string document_id
	Malformed  bool         // not JSON at all (bad UTF-8, syntax): nothing else was checked
	Errors     []FieldError // every problem found, sorted by path
}

// Validator checks documents against a schema and the semantic rules.
type Validator struct {
	schema *jsonschema.Schema
	// Today decides what "in the future" means; tests set it.
	Today func() time.Time
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
	return &Validator{schema: sch, Today: time.Now}, nil
}

var printer = message.NewPrinter(language.English)

// Validate checks data: raw bytes first (UTF-8, syntax, duplicate keys),
// then the schema, then the semantic rules. It never panics and returns
// either Valid with no errors or at least one error.
func (v *Validator) Validate(data []byte) Result {
	var r Result
	if err := strictjson.Check(data); err != nil {
		var se *strictjson.Error
		if !errors.As(err, &se) { // Check reports only *Error: never expected
			return Result{Malformed: true, Errors: []FieldError{{Message: err.Error()}}}
		}
		// A duplicate key is well-formed JSON that breaks a rule; anything
		// else is not JSON at all.
		r.Malformed = se.Kind != strictjson.DuplicateKey
		r.Errors = []FieldError{{Path: se.Pointer, Message: se.Msg}}
		return r
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil { // Check accepted it: cannot happen, but never pass it
		return Result{Malformed: true, Errors: []FieldError{{Message: "not JSON: " + err.Error()}}}
	}
	obj, _ := inst.(map[string]any)
	if id, ok := obj["document_id"].(string); ok {
		r.DocumentID = id
	}
	r.Errors = append(r.Errors, controlCharacters(inst, nil)...)
	var ve *jsonschema.ValidationError
	if err := v.schema.Validate(inst); errors.As(err, &ve) {
		r.Errors = append(r.Errors, leaves(ve)...)
	} else if err != nil {
		r.Errors = append(r.Errors, FieldError{Message: err.Error()})
	}
	if obj != nil {
		r.Errors = append(r.Errors, v.semantic(obj)...)
	}
	slices.SortStableFunc(r.Errors, func(a, b FieldError) int { return strings.Compare(a.Path, b.Path) })
	r.Errors = slices.Compact(r.Errors)
	r.Valid = len(r.Errors) == 0
	return r
}

var pointer = strictjson.Pointer

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
func leaves(e *jsonschema.ValidationError) []FieldError {
	if len(e.Causes) > 0 {
		var out []FieldError
		for _, c := range e.Causes {
			out = append(out, leaves(c)...)
		}
		return out
	}
	path := pointer(e.InstanceLocation...)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		var out []FieldError
		for _, m := range k.Missing {
			out = append(out, FieldError{path + pointer(m), "is required"})
		}
		return out
	case *kind.AdditionalProperties:
		var out []FieldError
		for _, p := range k.Properties {
			out = append(out, FieldError{path + pointer(p), "is not a field of the document"})
		}
		return out
	case *kind.Pattern:
		if msg, ok := friendly[path]; ok {
			return []FieldError{{path, msg}}
		}
	case *kind.MinLength:
		if k.Want == 1 {
			return []FieldError{{path, "must not be empty"}}
		}
		return []FieldError{{path, fmt.Sprintf("has %d characters; at least %d are needed", k.Got, k.Want)}}
	case *kind.MaxLength:
		return []FieldError{{path, fmt.Sprintf("has %d characters; at most %d are allowed", k.Got, k.Want)}}
	case *kind.Format:
		if k.Want == "date" {
			return []FieldError{{path, fmt.Sprintf("%v is not a real calendar date in the form YYYY-MM-DD", k.Got)}}
		}
	}
	return []FieldError{{path, e.ErrorKind.LocalizedString(printer)}}
}

// controlCharacters reports strings (keys too) holding control characters
// other than tab, line feed and carriage return: invisible in print, they
// corrupt a published text. path holds the reference tokens of v; a
// pointer is built only for an error.
func controlCharacters(v any, path []string) []FieldError {
	var out []FieldError
	check := func(s string, at []string) {
		for i, r := range s {
			if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r >= 0x7f && r <= 0x9f {
				out = append(out, FieldError{pointer(at...), fmt.Sprintf("has the control character %U at byte %d", r, i)})
				return
			}
		}
	}
	switch v := v.(type) {
	case string:
		check(v, path)
	case map[string]any:
		for k, child := range v {
			p := append(path[:len(path):len(path)], k)
			check(k, p)
			out = append(out, controlCharacters(child, p)...)
		}
	case []any:
		for i, child := range v {
			out = append(out, controlCharacters(child, append(path[:len(path):len(path)], strconv.Itoa(i)))...)
		}
	}
	return out
}

// earliest is the earliest date a norm can carry: Uruguay's first
// constitution (1830); IMPO's older texts are colonial and go as "otro"
// with their own rules, if ever.
var earliest = time.Date(1825, 8, 25, 0, 0, 0, 0, time.UTC)

// semantic applies the rules a schema cannot say.
func (v *Validator) semantic(doc map[string]any) []FieldError {
	var out []FieldError
	tomorrow := v.Today().UTC().AddDate(0, 0, 1)
	dates := map[string]time.Time{}
	for _, f := range []string{"date", "publication_date"} {
		s, ok := doc[f].(string)
		if !ok {
			continue
		}
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			continue // the schema's date format already reported it
		}
		switch {
		case d.Before(earliest):
			out = append(out, FieldError{pointer(f), fmt.Sprintf("%s is before 1825-08-25, earlier than any national norm", s)})
		case d.After(tomorrow):
			out = append(out, FieldError{pointer(f), fmt.Sprintf("%s is in the future", s)})
		default:
			dates[f] = d
		}
	}
	if d, ok := dates["date"]; ok {
		if p, ok := dates["publication_date"]; ok && p.Before(d) {
			out = append(out, FieldError{"/publication_date", fmt.Sprintf("%s is before the norm's date %s", doc["publication_date"], doc["date"])})
		}
	}
	for _, f := range []string{"text", "title", "copete", "issuer"} {
		s, ok := doc[f].(string)
		if !ok {
			continue
		}
		if s != "" && strings.TrimSpace(s) == "" {
			out = append(out, FieldError{pointer(f), "is only white space"})
		}
		if strings.ContainsRune(s, unicode.ReplacementChar) {
			// U+FFFD is what a lossy conversion leaves where a character
			// could not be read: the text upstream is damaged.
			out = append(out, FieldError{pointer(f), "contains U+FFFD (�), the mark of a damaged character conversion"})
		}
	}
	if s, ok := doc["title"].(string); ok && s != strings.TrimSpace(s) {
		out = append(out, FieldError{"/title", "has leading or trailing white space"})
	}
	return out
}

// Report is what the "invalid" topic receives for a document that failed.
type Report struct {
	MessageID  string       `json:"message_id"`
	DocumentID string       `json:"document_id"`
	Errors     []FieldError `json:"errors"`
}

// MarshalReport encodes the report of r for the message messageID.
func MarshalReport(messageID string, r Result) ([]byte, error) {
	return json.Marshal(Report{MessageID: messageID, DocumentID: r.DocumentID, Errors: r.Errors})
}
