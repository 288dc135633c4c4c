// Package legaltext makes the documents that validate's benchmarks
// measure: valid, mostly legal text with accents, as the pipeline sends,
// the same bytes for shared/document and for the whole function.
package legaltext

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"impo.com.uy/copetes/backend/internal/benchcpu"
)

// Sizes names the documents Documents makes, smallest first.
var Sizes = []string{"1KiB", "100KiB", "5120KiB"}

// Documents returns valid documents of about 1 KiB, 100 KiB and 5 MiB,
// keyed by the names in Sizes.
func Documents() map[string][]byte {
	docs := map[string][]byte{}
	for _, size := range []int{1 << 10, 100 << 10, 5 << 20} {
		para := "Artículo %d. Apruébase la Rendición de Cuentas y Balance de Ejecución Presupuestal; el Poder Ejecutivo reglamentará.\n"
		var text strings.Builder
		for i := 1; text.Len() < size-400; i++ {
			fmt.Fprintf(&text, para, i)
		}
		d, err := json.Marshal(map[string]any{
			"document_id": "ley-20212", "type": "ley", "number": "20.212", "date": "2023-11-06",
			"text": text.String(), "title": "Rendición de cuentas", "copete": "Se aprueba la Rendición de Cuentas.",
			"publication_date": "2023-11-20", "issuer": "Poder Legislativo", "metadata": map[string]any{"paginas": 312},
		})
		if err != nil {
			panic(err)
		}
		docs[fmt.Sprintf("%dKiB", size>>10)] = d
	}
	return docs
}

// BenchmarkUnmarshal is validate's baseline, run by each benchmark file
// that compares against it so that both sides share one run: a plain
// json.Unmarshal of each document into a map, with cpu-ns/op.
func BenchmarkUnmarshal(b *testing.B) {
	docs := Documents()
	for _, name := range Sizes {
		data := docs[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			start := benchcpu.Now()
			for b.Loop() {
				var m map[string]any
				if err := json.Unmarshal(data, &m); err != nil {
					b.Fatal(err)
				}
			}
			benchcpu.Report(b, start)
		})
	}
}
