package document

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
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
	{"not an object", []byte(`["ley"]`), []FieldError{{"", "got array, want object"}}},
	{"all errors at once", doc(map[string]any{"type": "x", "number": "x", "text": ""}), []FieldError{
		{"/number", friendly["/number"]}, {"/text", "must not be empty"},
		{"/type", "value must be one of 'ley', 'decreto', 'decreto-ley', 'resolucion', 'ordenanza', 'reglamento', 'acordada', 'circular', 'otro'"}}},
}

func long(n int) string { return strings.Repeat("a", n) }

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
		"too deep":      {[]byte(`{"metadata":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`), "nested more than"},
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

// TestValidate_DuplicateKeyIsNotMalformed: a duplicate key is JSON that
// breaks a rule, reported where it is, not as bytes that are not JSON.
func TestValidate_DuplicateKeyIsNotMalformed(t *testing.T) {
	r := newValidator(t).Validate([]byte(`{"metadata":{"a":1,"a":2}}`))
	want := []FieldError{{"/metadata/a", `duplicate key "a"`}}
	if r.Valid || r.Malformed || !cmp.Equal(r.Errors, want) {
		t.Fatalf("Validate = %+v, want not malformed, errors %v", r, want)
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
	want := `{"message_id":"msg-1","document_id":"ley-20212","errors":[{"path":"/number","message":"` + friendly["/number"] + `"}]}`
	if string(data) != want {
		t.Fatalf("report = %s\nwant     %s", data, want)
	}
}

// FuzzValidate: whatever the bytes, Validate returns either valid with no
// errors or at least one error, and never panics.
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
		if r.Valid != (len(r.Errors) == 0) {
			t.Fatalf("Valid = %v with errors %v", r.Valid, r.Errors)
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
