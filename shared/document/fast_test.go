package document

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/internal/legaltext"
	"impo.com.uy/copetes/backend/shared/strictjson"
)

var fastOptions = strictjson.Options{IJSON: true, MaxValues: MaxValues}

// corpus returns the documents of testdata and of ruleCases.
func corpus(t testing.TB) map[string][]byte {
	docs := map[string][]byte{}
	files, _ := filepath.Glob("testdata/*/*.json")
	for _, f := range files {
		if !strings.HasSuffix(f, ".errors.json") {
			docs[f], _ = os.ReadFile(f)
		}
	}
	for _, tc := range ruleCases {
		docs[tc.name] = tc.data
	}
	for name, d := range legaltext.Documents() {
		docs[name] = d
	}
	if len(docs) < 50 {
		t.Fatalf("only %d documents", len(docs))
	}
	return docs
}

// agree fails t when the fast path calls data valid and the full check
// does not, or names another document_id; with complete, also when the
// full check calls it valid and the fast path is not sure.
func agree(t *testing.T, v *Validator, data []byte, complete bool) {
	t.Helper()
	full := v.fullCheck(data, fastOptions)
	id, ok := v.fastValid(data, fastOptions)
	if ok && (!full.Valid || full.DocumentID != id) {
		t.Fatalf("fast path: valid, document_id %q; full check: %+v\n%q", id, full, data)
	}
	if complete && full.Valid && !ok {
		t.Fatalf("the full check calls it valid, the fast path is not sure:\n%q", data)
	}
}

// TestFastPath_AgreesOnTheCorpus: the embedded schema compiles for the
// fast path, which tells every valid document of the corpus valid, with
// its document_id, and no invalid one.
func TestFastPath_AgreesOnTheCorpus(t *testing.T) {
	v := newValidator(t)
	if v.plan == nil {
		t.Fatal("the embedded schema does not compile for the fast path: every document takes the full check")
	}
	valid := 0
	for name, data := range corpus(t) {
		t.Run(name, func(t *testing.T) {
			agree(t, v, data, true)
			if _, ok := v.fastValid(data, fastOptions); ok {
				valid++
			}
		})
	}
	if valid < 10 {
		t.Fatalf("only %d documents took the fast path", valid)
	}
}

// TestFastPath_TrickyTexts: what reads differently from how it is
// written (escapes in keys and values, white space and control
// characters beyond ASCII) is judged as the full check judges it.
func TestFastPath_TrickyTexts(t *testing.T) {
	v := newValidator(t)
	for _, tt := range []struct {
		name, field, raw string
		valid            bool
	}{
		{"escaped key of a field", `docu\u006dent_id`, `"ley-1"`, false}, // a duplicate of document_id
		{"escaped value", "number", `"20\u002e212"`, true},
		{"escaped slash in a pattern", "source_uri", `"https:\/\/impo.com.uy\/x"`, true},
		{"title ends in a no-break space", "title", `"Ley\u00a0"`, false},
		{"title ends in a raw no-break space", "title", "\"Ley\u00a0\"", false},
		{"title starts in an em space", "title", `"` + "\u2003" + `Ley"`, false},
		{"title is spaces", "title", `"      "`, false},
		{"title is nine spaces", "title", `"         "`, false},
		{"title has inner spaces", "title", `"Ley de   la   República"`, true},
		{"copete is line breaks", "copete", `"\n\r\n\t"`, false},
		{"issuer has a damaged character", "issuer", `"Poder \ufffd"`, false},
		{"issuer has a raw damaged character", "issuer", "\"Poder \uFFFD\"", false},
		{"text has a surrogate pair", "text", `"\ud83d\udcdc Artículo 1."`, true},
		{"text has an escaped DEL", "text", `"a\u007fb"`, false},
		{"text has a raw DEL", "text", "\"a\x7fb\"", false},
		{"text has an escaped C1", "text", `"a\u0085b"`, false},
		{"text has a raw C1", "text", "\"a\u0085b\"", false},
		{"text has a form feed", "text", `"a\fb"`, false},
		{"text has tabs and line breaks", "text", `"a\tb\nc\r\n"`, true},
		{"text of one escaped letter", "text", `"\u0041"`, true},
		{"metadata key with a control character", "metadata", `{"a\u0001":1}`, false},
		{"metadata with escaped keys", "metadata", `{"\u0061":1,"b":{"\u0061":[true,null,"x"]}}`, true},
		{"metadata with many keys", "metadata", `{` + strings.Repeat(`"k":0,`, 0) + manyKeys(40) + `}`, true},
		{"metadata with a duplicate among many keys", "metadata", `{` + manyKeys(40) + `,"k7":1}`, false},
		{"number too long in characters", "number", `"` + strings.Repeat("1", 33) + `"`, false},
		{"number of 32 digits", "number", `"` + strings.Repeat("1", 32) + `"`, true},
		{"issuer of 500 accented letters", "issuer", `"` + strings.Repeat("é", 500) + `"`, true},
		{"issuer of 501 accented letters", "issuer", `"` + strings.Repeat("é", 501) + `"`, false},
		{"issuer of 500 escaped letters", "issuer", `"` + strings.Repeat(`\u00e9`, 500) + `"`, true},
		{"type from the enum, escaped", "type", `"l\u0065y"`, true},
		{"type not a string", "type", `7`, false},
		{"date escaped", "date", `"2023\u002d11\u002d06"`, true},
		{"date not real", "date", `"2023-02-30"`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := rawDoc(nil, tt.field, tt.raw)
			if got := v.Validate(data).Valid; got != tt.valid {
				t.Fatalf("Valid = %v, want %v: %s", got, tt.valid, data)
			}
			agree(t, v, data, true)
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + string(rune('0'+i%10)) + strings.Repeat("x", i/10) + `":0`)
	}
	return b.String()
}

// TestFastPath_OtherSchemas: a schema the fast path cannot check takes
// the full check every time; one it can is checked to the letter (but a
// format on a value that is not a string is left to the full check).
func TestFastPath_OtherSchemas(t *testing.T) {
	for _, tt := range []struct {
		name, schema string
		fast         bool
		docs         []string
	}{
		{"integer", `{"type":"object","properties":{"n":{"type":"integer"}}}`, false, []string{`{"n":1}`, `{"n":1.5}`}},
		{"allOf", `{"allOf":[{"required":["a"]}]}`, false, []string{`{"a":1}`, `{}`}},
		{"minimum", `{"properties":{"n":{"minimum":3}}}`, false, []string{`{"n":4}`, `{"n":2}`}},
		{"ref", `{"$defs":{"s":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/s"}}}`, false, []string{`{"a":"x"}`, `{"a":1}`}},
		{"items", `{"properties":{"a":{"items":{"type":"string"}}}}`, false, []string{`{"a":["x"]}`, `{"a":[1]}`}},
		{"draft 7", `{"$schema":"http://json-schema.org/draft-07/schema#","required":["a"]}`, false, []string{`{"a":1}`}},
		{"false", `false`, false, []string{`{}`}},
		{"true", `true`, true, []string{`{}`, `[1,"x"]`, `"a\u0001"`, `{"text":" "}`}},
		{"anything", `{}`, true, []string{`{}`, `7`, `null`, `{"title":" x"}`, `{"title":7}`, `{"date":"3000-01-01"}`}},
		{"nested", `{"type":["object","null"],"required":["a","b"],"additionalProperties":{"type":"string","minLength":2},
			"properties":{"a":{"type":"object","additionalProperties":false,"properties":{"x":{"enum":["p","q"]},"y":true}}}}`, true,
			[]string{`null`, `{"a":{},"b":"xx"}`, `{"a":{"x":"p","y":[1]},"b":"xx","c":"yy"}`, `{"a":{"z":1},"b":"xx"}`, `{"a":{},"b":"x"}`,
				`{"a":{"x":"r"},"b":"xx"}`, `{"a":{},"b":7}`, `{"a":[],"b":"xx"}`, `{"b":"xx"}`, `[]`, `{"a":{"x":1},"b":"xx"}`}},
		{"formats", `{"properties":{"u":{"format":"uri"},"d":{"type":"string","format":"date"},"e":{"format":"email"}}}`, true,
			[]string{`{"u":"https://x"}`, `{"u":"nope"}`, `{"u":1}`, `{"d":"2020-01-01","e":"a@b.c"}`, `{"e":"x"}`}},
		{"pattern", `{"properties":{"p":{"pattern":"^a+$","maxLength":3}}}`, true,
			[]string{`{"p":"aaa"}`, `{"p":"aaaa"}`, `{"p":"b"}`, `{"p":3}`, `{"p":"\u0061"}`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New([]byte(tt.schema))
			if err != nil {
				t.Fatal(err)
			}
			v.Today = newValidator(t).Today
			if (v.plan != nil) != tt.fast {
				t.Fatalf("compiled for the fast path: %v, want %v", v.plan != nil, tt.fast)
			}
			fast := 0
			for _, d := range tt.docs {
				agree(t, v, []byte(d), false)
				if _, ok := v.fastValid([]byte(d), fastOptions); ok {
					fast++
				}
			}
			if tt.fast && fast == 0 {
				t.Error("no document took the fast path")
			}
		})
	}
}

// TestTextProps: what propsOf learns in place is what the rules learn of
// the decoded string.
func TestTextProps(t *testing.T) {
	for _, s := range []string{
		"", " ", "a", " a", "a ", "        ", "         x", "x         ", "\u00a0", "a\u2003", "\u0085", "\u0080b",
		"\u009f", "\u00a0x", "a\x7f", "\x00", "\t\n\r", "\v", "\f", "\uFFFD", "ab\uFFFDcd", strings.Repeat("Artículo ", 10),
		strings.Repeat(" ", 17) + "é", "é" + strings.Repeat(" ", 17), "\U0001F4DC", "12345678\x01",
	} {
		checkProps(t, s)
	}
}

// checkProps compares propsOf, on s written as encoding/json writes it
// and as written raw, with the definitions.
func checkProps(t *testing.T, s string) {
	t.Helper()
	want := textProps{
		runes:       utf8.RuneCountInString(s),
		control:     func() bool { i, _ := controlAt(s); return i >= 0 }(),
		replacement: strings.ContainsRune(s, unicode.ReplacementChar),
		allSpace:    strings.TrimSpace(s) == "",
		edgeSpace:   s != strings.TrimSpace(s),
	}
	quoted, _ := json.Marshal(s)
	var forms []strictjson.Token
	for _, raw := range []string{string(quoted), `"` + s + `"`} {
		var tok strictjson.Token
		err := strictjson.Walk([]byte(raw), strictjson.Options{}, func(t strictjson.Token) error { tok = t; return nil })
		if err == nil && tok.Unquote() == s { // written raw, it may read as something else
			forms = append(forms, tok)
		}
	}
	if len(forms) == 0 {
		t.Fatalf("%q: no form reads", s)
	}
	for _, tok := range forms {
		if got := propsOf(tok); got != want {
			t.Errorf("%q written %q: %+v, want %+v", s, tok.Raw, got, want)
		}
	}
}

func FuzzTextProps(f *testing.F) {
	for _, s := range []string{"a b", " \u00a0", "\uFFFD\x7f", "Artículo 1.\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if utf8.ValidString(s) {
			checkProps(t, s)
		}
	})
}

// FuzzFastPath: whatever the bytes, the fast path never calls valid a
// document the full check refuses, names the same document_id, and (for
// the embedded schema) never leaves to the full check one it accepts.
func FuzzFastPath(f *testing.F) {
	for _, d := range corpus(f) {
		if len(d) < 64<<10 {
			f.Add(d)
		}
	}
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		agree(t, v, data, true)
	})
}

func TestFastPath_LargeDocuments(t *testing.T) {
	v := newValidator(t)
	for name, data := range legaltext.Documents() {
		id, ok := v.fastValid(data, fastOptions)
		if !ok || id != "ley-20212" {
			t.Errorf("%s: fast path %v, %q", name, ok, id)
		}
	}
	if diff := cmp.Diff(Result{Valid: true, DocumentID: "ley-20212"}, v.Validate(legaltext.Documents()["100KiB"])); diff != "" {
		t.Error(diff)
	}
}

// FuzzFastPath_Fields puts any string in a field of a valid document (or
// in metadata, under any key): the fast path and the full check agree.
func FuzzFastPath_Fields(f *testing.F) {
	fields := []string{"document_id", "type", "number", "date", "publication_date", "issuer", "title", "text", "copete", "source_uri", "metadata"}
	for i := range fields {
		for _, s := range []string{"", " x", "x\u00a0", "\u0085", "2023-11-06", "https://x", "ley", "\uFFFD", "a\x01", "20.212"} {
			f.Add(uint8(i), s)
		}
	}
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, i uint8, s string) {
		field := fields[int(i)%len(fields)]
		var value any = s
		if field == "metadata" {
			value = map[string]any{s: s, "n": []any{s}}
		}
		agree(t, v, doc(map[string]any{field: value}), true)
	})
}
