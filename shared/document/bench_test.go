package document

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"impo.com.uy/copetes/backend/internal/benchcpu"
	"impo.com.uy/copetes/backend/internal/legaltext"
)

// BenchmarkValidate is the whole check: raw bytes, schema, semantic rules.
func BenchmarkValidate(b *testing.B) {
	v := newValidator(b)
	docs := legaltext.Documents()
	for _, name := range legaltext.Sizes {
		data := docs[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			start := benchcpu.Now()
			for b.Loop() {
				if r := v.Validate(data); !r.Valid {
					b.Fatal(r.Errors)
				}
			}
			benchcpu.Report(b, start)
		})
	}
}

// BenchmarkValidateInvalid is the fast path's worst case: documents
// whose one problem (the type, after the text in key order) is found
// only once the whole text has been read; then the full check reads it
// again, to report the problem.
func BenchmarkValidateInvalid(b *testing.B) {
	v := newValidator(b)
	docs := legaltext.Documents()
	for _, name := range legaltext.Sizes {
		var d map[string]any
		if err := json.Unmarshal(docs[name], &d); err != nil {
			b.Fatal(err)
		}
		d["type"] = "ley-marco"
		data := doc(d)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			start := benchcpu.Now()
			for b.Loop() {
				if r := v.Validate(data); r.Valid || r.ErrorCount != 1 {
					b.Fatal(r.Errors)
				}
			}
			benchcpu.Report(b, start)
		})
	}
}

// BenchmarkUnmarshal is the baseline: a plain json.Unmarshal of the same
// bytes into a map.
func BenchmarkUnmarshal(b *testing.B) { legaltext.BenchmarkUnmarshal(b) }

// BenchmarkValidateReportBomb validates documents whose metadata is a list
// of strings that each hold a control character: one under MaxValues,
// whose 99,990 problems are counted and the first MaxErrors listed, and
// one of 9.9 MB, refused at its 100,001st value. Its B/op is what such a
// document costs; before the bounds, the 9.9 MB one allocated 1 GB.
func BenchmarkValidateReportBomb(b *testing.B) {
	v := newValidator(b)
	for _, n := range []int{99_990, 1_100_000} {
		data := doc(map[string]any{"metadata": map[string]any{"x": slices.Repeat([]any{"\x00"}, n)}})
		b.Run(fmt.Sprintf("%.1fMB", float64(len(data))/1e6), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			start := benchcpu.Now()
			for b.Loop() {
				if r := v.Validate(data); r.Valid || len(r.Errors) > MaxErrors {
					b.Fatal(r.ErrorCount, len(r.Errors))
				}
			}
			benchcpu.Report(b, start)
		})
	}
}

// BenchmarkNew compiles the embedded schema, as each instance does on
// its first message (the fast path's tree included).
func BenchmarkNew(b *testing.B) {
	start := benchcpu.Now()
	for b.Loop() {
		if _, err := New(nil); err != nil {
			b.Fatal(err)
		}
	}
	benchcpu.Report(b, start)
}
