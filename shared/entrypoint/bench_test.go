package entrypoint

import (
	"net/http"
	"strings"
	"testing"

	"impo.com.uy/copetes/backend/internal/benchcpu"
	"impo.com.uy/copetes/backend/shared/httpapi"
)

// What entrypoint adds to every request of a built function (the count
// in flight, the lazy build's check, the held response), beside the same
// handler called bare. Each reports cpu-ns/op, the process's CPU time per
// request (getrusage), steadier than wall time on a shared machine:
//
//	go test -run '^$' -bench Serve -count 6 ./shared/entrypoint/

// discardWriter is a ResponseWriter that keeps nothing but its header.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// answer is a handler that answers as the functions do: a small JSON
// document.
var answer = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	httpapi.SetCanonical(w.Header(), "Cache-Control", "no-store")
	httpapi.WriteJSONText(w, answerBody)
})

var answerBody = []byte(`{"access_token":"` + strings.Repeat("a", 700) + `","token_type":"Bearer","expires_in":3599}` + "\n")

func benchServe(b *testing.B, h http.Handler) {
	req, _ := http.NewRequest("POST", "/", nil)
	b.ReportAllocs()
	b.ResetTimer()
	start := benchcpu.Now()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
	benchcpu.Report(b, start)
}

func BenchmarkServeHTTPEntrypoint(b *testing.B) {
	benchServe(b, testRegistry().serveHTTP("F", built[http.Handler](answer)))
}

func BenchmarkServeHTTPBare(b *testing.B) {
	benchServe(b, answer)
}
