package document

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Today = func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }
	return v
}

// doc returns a valid document with fields replaced (a nil value deletes).
func doc(fields map[string]any) []byte {
	d := map[string]any{
		"document_id": "ley-20212", "type": "ley", "number": "20.212", "date": "2023-11-06",
		"text": "Artículo 1. Apruébase…",
	}
	for k, v := range fields {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
	}
	b, _ := json.Marshal(d)
	return b
}

// ruleCases is one case per field and semantic rule, with the exact
// errors expected. TestCorpus_Generated writes each as a file of the
// corpus in testdata/generated (go test -run Corpus -update).
var ruleCases = []struct {
	name   string
	data   []byte
	errors []FieldError // nil: valid
}{
	{"minimal", doc(nil), nil},
	{"every optional field", doc(map[string]any{"publication_date": "2023-11-20", "issuer": "Poder Legislativo",
		"title": "Rendición de cuentas", "copete": "Se aprueba…", "source_uri": "gs://bucket/a.pdf", "metadata": map[string]any{"x": 1}}), nil},
	{"each type", doc(map[string]any{"type": "decreto-ley"}), nil},
	{"number with slash", doc(map[string]any{"number": "123/025"}), nil},
	{"leap day", doc(map[string]any{"date": "2024-02-29"}), nil},
	{"text with tab and newlines", doc(map[string]any{"text": "a\tb\nc\r\n"}), nil},

	{"missing document_id", doc(map[string]any{"document_id": nil}), []FieldError{{"/document_id", "is required"}}},
	{"missing text", doc(map[string]any{"text": nil}), []FieldError{{"/text", "is required"}}},
	{"bad document_id", doc(map[string]any{"document_id": "a b"}), []FieldError{{"/document_id", friendly["/document_id"]}}},
	{"document_id too long", doc(map[string]any{"document_id": long(129)}), []FieldError{{"/document_id", friendly["/document_id"]}}},
	{"document_id not a string", doc(map[string]any{"document_id": 7}), []FieldError{{"/document_id", "got number, want string"}}},
	{"unknown type", doc(map[string]any{"type": "Ley"}), []FieldError{{"/type", "value must be one of 'ley', 'decreto', 'decreto-ley', 'resolucion', 'ordenanza', 'reglamento', 'acordada', 'circular', 'otro'"}}},
	{"number with comma", doc(map[string]any{"number": "20,212"}), []FieldError{{"/number", friendly["/number"]}}},
	{"number with trailing dot", doc(map[string]any{"number": "20."}), []FieldError{{"/number", friendly["/number"]}}},
	{"not a calendar date", doc(map[string]any{"date": "2023-02-29"}), []FieldError{{"/date", "2023-02-29 is not a real calendar date in the form YYYY-MM-DD"}}},
	{"date in another form", doc(map[string]any{"date": "06/11/2023"}), []FieldError{{"/date", "06/11/2023 is not a real calendar date in the form YYYY-MM-DD"}}},
	{"date in the future", doc(map[string]any{"date": "2027-01-01"}), []FieldError{{"/date", "2027-01-01 is in the future"}}},
	{"date before the republic", doc(map[string]any{"date": "1810-05-25"}), []FieldError{{"/date", "1810-05-25 is before 1825-08-25, earlier than any national norm"}}},
	{"published before dated", doc(map[string]any{"publication_date": "2023-11-05"}), []FieldError{{"/publication_date", "2023-11-05 is before the norm's date 2023-11-06"}}},
	{"published the same day", doc(map[string]any{"publication_date": "2023-11-06"}), nil},
	{"empty text", doc(map[string]any{"text": ""}), []FieldError{{"/text", "must not be empty"}}},
	{"blank text", doc(map[string]any{"text": " \n "}), []FieldError{{"/text", "is only white space"}}},
	{"title too long", doc(map[string]any{"title": long(1001)}), []FieldError{{"/title", "has 1001 characters; at most 1000 are allowed"}}},
	{"title at the limit, in accented letters", doc(map[string]any{"title": strings.Repeat("á", 1000)}), nil},
	{"title with spaces around", doc(map[string]any{"title": " Ley "}), []FieldError{{"/title", "has leading or trailing white space"}}},
	{"copete too long", doc(map[string]any{"copete": long(2001)}), []FieldError{{"/copete", "has 2001 characters; at most 2000 are allowed"}}},
	{"empty issuer", doc(map[string]any{"issuer": ""}), []FieldError{{"/issuer", "must not be empty"}}},
	{"ftp source", doc(map[string]any{"source_uri": "ftp://x/y"}), []FieldError{{"/source_uri", friendly["/source_uri"]}}},
	{"http source", doc(map[string]any{"source_uri": "http://x/y"}), []FieldError{{"/source_uri", friendly["/source_uri"]}}},
	{"metadata not an object", doc(map[string]any{"metadata": []any{1}}), []FieldError{{"/metadata", "got array, want object"}}},
	{"unknown field", doc(map[string]any{"autor": "x"}), []FieldError{{"/autor", "is not a field of the document"}}},
	{"damaged conversion", doc(map[string]any{"text": "Artículo \uFFFD"}), []FieldError{{"/text", "contains U+FFFD (�), the mark of a damaged character conversion"}}},
	{"escaped control character", []byte(`{"document_id":"a","type":"ley","number":"1","date":"2023-01-01","text":"a\u0007b"}`), []FieldError{{"/text", "has the control character U+0007 at byte 1"}}},
	{"control character in metadata", doc(map[string]any{"metadata": map[string]any{"k": []any{"ok", "x\u0000"}}}), []FieldError{{"/metadata/k/1", "has the control character U+0000 at byte 1"}}},
	{"C1 control character", doc(map[string]any{"copete": "a\u0085"}), []FieldError{{"/copete", "has the control character U+0085 at byte 1"}}},
	{"duplicate key", []byte(`{"document_id":"a","document_id":"b"}`), []FieldError{{"/document_id", `duplicate key "document_id"`}}},
	{"duplicate key in metadata, reported alone", rawDoc(map[string]any{"text": nil}, "metadata", `{"a":1,"a":2,"a":3}`), []FieldError{{"/metadata/a", `duplicate key "a"`}}},

	// I-JSON (RFC 7493): what every reader reads alike. Problems of the
	// text are reported alone (the schema's "text is required" is not).
	{"byte order mark", append([]byte("\xEF\xBB\xBF"), doc(nil)...), []FieldError{{"", "starts with a UTF-8 byte order mark; remove it"}}},
	{"number too large for a double", rawDoc(map[string]any{"text": nil}, "metadata", `{"n":1e999999}`), []FieldError{{"/metadata/n", "1e999999 is too large for a double (IEEE 754)"}}},
	{"integer beyond 2^53", rawDoc(nil, "metadata", `{"n":[9007199254740991,`+strings.Repeat("1", 1000)+`]}`),
		[]FieldError{{"/metadata/n/1", "the integer 1111111111111111111111111111111111111111… (1000 bytes) is outside ±9007199254740991 (2^53−1), the integers a double holds exactly"}}},
	{"number too small for a double", rawDoc(nil, "metadata", `{"n":-1e-400}`), []FieldError{{"/metadata/n", "-1e-400 is too small for a double: it reads as 0"}}},
	{"number more precise than a double", rawDoc(nil, "metadata", `{"n":3.14159265358979323846}`), []FieldError{{"/metadata/n", "3.14159265358979323846 has 21 significant digits; a double holds 17"}}},
	{"numbers a double holds", rawDoc(nil, "metadata", `{"n":[-9007199254740991,1e308,5e-324,0.1,1E+2,-0]}`), nil},
	{"lone surrogate in text", rawDoc(map[string]any{"text": nil}, "text", `"a\ud800b"`), []FieldError{{"/text", loneSurrogate}}},
	{"lone surrogate in source_uri", rawDoc(nil, "source_uri", `"https://x/\ud800"`), []FieldError{{"/source_uri", loneSurrogate}}},
	{"lone surrogate in a key", rawDoc(nil, "metadata", `{"\ud800":1}`), []FieldError{{"/metadata/\uFFFD", loneSurrogate}}},
	{"surrogate pair", rawDoc(map[string]any{"text": nil}, "text", `"Art. 1 \ud83d\udcdc"`), nil},
	{"too deep", rawDoc(nil, "metadata", strings.Repeat(`{"a":`, 1000)+"1"+strings.Repeat("}", 1000)), []FieldError{{"/metadata", "nested more than 1000 levels deep"}}},
	{"not an object", []byte(`["ley"]`), []FieldError{{"", "got array, want object"}}},
	{"all errors at once", doc(map[string]any{"type": "x", "number": "x", "text": ""}), []FieldError{
		{"/number", friendly["/number"]}, {"/text", "must not be empty"},
		{"/type", "value must be one of 'ley', 'decreto', 'decreto-ley', 'resolucion', 'ordenanza', 'reglamento', 'acordada', 'circular', 'otro'"}}},
}

func long(n int) string { return strings.Repeat("a", n) }

// rawDoc returns doc(fields) with the field name set to raw, a JSON text
// as written (which json.Marshal would not write: a lone surrogate, a
// duplicate key).
func rawDoc(fields map[string]any, name, raw string) []byte {
	fields = maps.Clone(fields)
	if fields == nil {
		fields = map[string]any{}
	}
	fields[name] = nil
	d := doc(fields)
	return append(d[:len(d)-1:len(d)-1], []byte(`,"`+name+`":`+raw+`}`)...)
}

const loneSurrogate = `contains \ud800, a lone UTF-16 surrogate (half of a pair), which is not a character`

func TestValidate_FieldAndSemanticRules(t *testing.T) {
	v := newValidator(t)
	tests := ruleCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := v.Validate(tt.data)
			if diff := cmp.Diff(tt.errors, r.Errors); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if r.Valid != (tt.errors == nil) {
				t.Errorf("Valid = %v with %d errors", r.Valid, len(r.Errors))
			}
		})
	}
}

func TestValidate_MalformedBytes(t *testing.T) {
	v := newValidator(t)
	tests := map[string]struct {
		data []byte
		want string
	}{
		"not JSON":      {[]byte("ley 20.212"), "malformed JSON"},
		"invalid UTF-8": {append(doc(nil)[:20], 0xff, '"', '}'), "not valid UTF-8"},
		"truncated":     {doc(nil)[:30], "ends too early"},
		"trailing data": {append(doc(nil), []byte(" {}")...), "unexpected data after"},
		"raw control":   {[]byte("{\"text\":\"a\x01\"}"), "control character"},
		"empty":         {nil, "empty"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := v.Validate(tt.data)
			if r.Valid || !r.Malformed || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, tt.want) {
				t.Fatalf("Validate = %+v, want malformed: %q", r, tt.want)
			}
		})
	}
}

// TestValidate_JSONThatBreaksARuleIsNotMalformed: a duplicate key, an
// I-JSON problem, nesting past the limit and too many values are JSON
// that breaks a rule, reported as such (not as bytes that are not JSON),
// and the document_id is still named when it can be read unambiguously.
func TestValidate_JSONThatBreaksARuleIsNotMalformed(t *testing.T) {
	v := newValidator(t)
	v.MaxValues = 2000
	tests := []struct {
		name   string
		data   []byte
		id     string
		errors []FieldError
	}{
		{"duplicate key", []byte(`{"document_id":"ley-1","metadata":{"a":1,"a":2}}`), "ley-1", []FieldError{{"/metadata/a", `duplicate key "a"`}}},
		{"duplicate document_id", []byte(`{"document_id":"ley-1","document_id":"ley-2"}`), "", []FieldError{{"/document_id", `duplicate key "document_id"`}}},
		{"byte order mark", []byte("\xEF\xBB\xBF" + `{"document_id":"ley-1"}`), "ley-1", []FieldError{{"", "starts with a UTF-8 byte order mark; remove it"}}},
		{"lone surrogate", []byte(`{"document_id":"ley-1","text":"\udc00"}`), "ley-1", []FieldError{{"/text", `contains \udc00, a lone UTF-16 surrogate (half of a pair), which is not a character`}}},
		{"too deep", []byte(`{"document_id":"ley-1","metadata":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`), "", []FieldError{{"/metadata", "nested more than 1000 levels deep"}}},
		{"too many values", rawDoc(nil, "metadata", `{"a":[`+strings.Repeat("0,", 2000)+`0]}`), "", []FieldError{{"", "has more than 2000 values (each object, array, string, number, true, false and null counts); at most 2000 are read"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := v.Validate(tt.data)
			if r.Valid || r.Malformed || r.DocumentID != tt.id || r.ErrorCount != len(tt.errors) {
				t.Errorf("Validate = %+v, want invalid, not malformed, document_id %q", r, tt.id)
			}
			if diff := cmp.Diff(tt.errors, r.Errors); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidate_ErrorsStopAtMaxErrors: a document with a problem in each
// of thousands of values gets a report of the first MaxErrors in path
// order, the same each time (whatever order a map is walked in), and the
// count of them all.
func TestValidate_ErrorsStopAtMaxErrors(t *testing.T) {
	const n = 3000
	keys := map[string]any{}
	var paths []string
	for i := range n {
		keys[fmt.Sprintf("k%d", i)] = "x\u0001"
		paths = append(paths, fmt.Sprintf("/metadata/k%d", i))
	}
	slices.Sort(paths)
	data := doc(map[string]any{"metadata": keys, "text": nil}) // and "text is required"
	paths = append([]string{"/metadata/k0", "/metadata/k1"}, paths...)
	for _, max := range []int{0, 1, 7, 100, n + 1} {
		v := newValidator(t)
		v.MaxErrors = max
		want := max
		if max == 0 {
			want = MaxErrors
		}
		for range 3 {
			r := v.Validate(data)
			var got []string
			for _, e := range r.Errors {
				got = append(got, e.Path)
			}
			if r.ErrorCount != n+1 || len(r.Errors) != min(want, n+1) {
				t.Fatalf("MaxErrors %d: %d errors listed of %d, want %d of %d", max, len(r.Errors), r.ErrorCount, min(want, n+1), n+1)
			}
			wantPaths := slices.Clone(paths[2:])
			wantPaths = append(wantPaths, "/text")
			slices.Sort(wantPaths)
			if diff := cmp.Diff(wantPaths[:len(got)], got); diff != "" {
				t.Fatalf("MaxErrors %d: paths (-want +got):\n%s", max, diff)
			}
		}
	}
}

func TestValidate_Corpus(t *testing.T) {
	v := newValidator(t)
	files, _ := filepath.Glob("testdata/*/*.json")
	for _, f := range files {
		if strings.HasSuffix(f, ".errors.json") {
			continue
		}
		t.Run(f, func(t *testing.T) {
			data, _ := os.ReadFile(f)
			r := v.Validate(data)
			if strings.Contains(f, "/valid/") || strings.HasPrefix(filepath.Base(f), "valid-") {
				if !r.Valid {
					t.Fatalf("errors: %v", r.Errors)
				}
				return
			}
			var want []FieldError
			expected, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".errors.json")
			if err != nil {
				t.Fatal(err)
			}
			json.Unmarshal(expected, &want)
			if diff := cmp.Diff(want, r.Errors); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate_NineMegabyteText(t *testing.T) {
	v := newValidator(t)
	big := doc(map[string]any{"text": strings.Repeat("Artículo 1. Texto de la norma. ", 9<<20/32)})
	if len(big) < 9<<20-1024 {
		t.Fatalf("document is %d bytes", len(big))
	}
	if r := v.Validate(big); !r.Valid {
		t.Fatalf("9 MB document: %v", r.Errors)
	}
}

func TestNew_ReplacementSchema(t *testing.T) {
	v, err := New([]byte(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["id"]}`))
	if err != nil {
		t.Fatal(err)
	}
	v.Today = time.Now
	if r := v.Validate([]byte(`{"id":1}`)); !r.Valid {
		t.Fatalf("replacement schema: %v", r.Errors)
	}
	if _, err := New([]byte(`{"type": 12}`)); err == nil {
		t.Fatal("an invalid schema compiled")
	}
	if _, err := New([]byte(`nope`)); err == nil {
		t.Fatal("a non-JSON schema compiled")
	}
}

func TestMarshalReport(t *testing.T) {
	r := newValidator(t).Validate(doc(map[string]any{"number": "x"}))
	data, _ := MarshalReport("msg-1", r)
	want := `{"message_id":"msg-1","document_id":"ley-20212","error_count":1,"errors":[{"path":"/number","message":"` + friendly["/number"] + `"}]}`
	if string(data) != want {
		t.Fatalf("report = %s\nwant     %s", data, want)
	}
}

// FuzzValidate: whatever the bytes, Validate returns either valid with no
// errors or at least one error, lists no more than MaxErrors of those it
// counts, and never panics.
func FuzzValidate(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.json")
	for _, s := range seeds {
		data, _ := os.ReadFile(s)
		f.Add(data)
	}
	f.Add([]byte(`{"document_id":"a","document_id":"b"}`))
	f.Add([]byte("\xff"))
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := v.Validate(data)
		if r.Valid != (len(r.Errors) == 0) || r.Valid != (r.ErrorCount == 0) {
			t.Fatalf("Valid = %v with errors %v (%d counted)", r.Valid, r.Errors, r.ErrorCount)
		}
		if len(r.Errors) > MaxErrors || r.ErrorCount < len(r.Errors) {
			t.Fatalf("%d errors listed of %d counted", len(r.Errors), r.ErrorCount)
		}
	})
}

var update = flag.Bool("update", false, "rewrite testdata/generated from ruleCases")

// slug turns a case name into a file name.
func slug(name string) string {
	return strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(name), "-"), "-")
}

// TestCorpus_Generated keeps testdata/generated in step with ruleCases:
// one document per rule, valid ones under valid-*, the others beside
// their expected errors, for the corpus test and the fuzzer's seeds.
func TestCorpus_Generated(t *testing.T) {
	dir := filepath.Join("testdata", "generated")
	if *update {
		os.RemoveAll(dir)
		os.MkdirAll(dir, 0o755)
	}
	for _, tc := range ruleCases {
		base := filepath.Join(dir, slug(tc.name))
		if tc.errors == nil {
			base = filepath.Join(dir, "valid-"+slug(tc.name))
		}
		var want []byte
		if tc.errors != nil {
			want, _ = json.MarshalIndent(tc.errors, "", "  ")
		}
		if *update {
			os.WriteFile(base+".json", tc.data, 0o644)
			if want != nil {
				os.WriteFile(base+".errors.json", append(want, '\n'), 0o644)
			}
			continue
		}
		got, err := os.ReadFile(base + ".json")
		if err != nil || !bytes.Equal(got, tc.data) {
			t.Errorf("%s.json is missing or stale: go test ./shared/document -run Corpus -update", base)
		}
	}
}
