//go:build linux

package document

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var memory = flag.Bool("memory", false, "measure the peak memory of Validate on 9.9 MB documents (TestMemory_Peak)")

// memoryDocs are the documents whose peak memory docs/benchmarks.md
// reports: 9.9 MB valid ones (as the pipeline sends, and all structure),
// the 9.9 MB report-bombs of issue 13 (metadata full of strings that each
// break a rule), and a bomb small enough to pass MaxValues.
func memoryDocs() []struct{ name, doc string } {
	const size = 9900 * 1000
	fill := func(size int, unit string) string { // metadata {"x":[unit,unit,…]} to size
		head := doc(map[string]any{"metadata": map[string]any{"x": []any{}}})
		n := (size - len(head)) / (len(unit) + 1)
		items := strings.TrimSuffix(strings.Repeat(unit+",", n), ",")
		return strings.Replace(string(head), `"x":[]`, `"x":[`+items+`]`, 1)
	}
	text := strings.Repeat("Artículo 1. Apruébase la Rendición de Cuentas; el Poder Ejecutivo reglamentará.\n", size/84)
	return []struct{ name, doc string }{
		{"valid: legal text", string(doc(map[string]any{"text": text}))},
		{"valid: metadata of numbers [0,0,…]", fill(size, "0")},
		{`valid: metadata of objects [{"a":0},…]`, fill(size, `{"a":0}`)},
		{`report-bomb: metadata of "\u0000"`, fill(size, `"\u0000"`)},
		{"report-bomb: metadata of raw U+0085", fill(size, "\"\u0085\"")},
		{`report-bomb under MaxValues: "\u0000"`, fill(900*1000, `"\u0000"`)},
	}
}

// TestMemory_Peak measures, in a fresh process per document and task,
// the peak resident memory (the kernel's high-water mark, what a 512 MiB
// instance is limited by), the Go heap obtained from the system and the
// bytes allocated. The tasks: only reading the file (the baseline), a
// plain json.Unmarshal into an any, Validate and MarshalReport with the
// default bounds, and the same with MaxValues lifted (only MaxErrors
// bounding the report).
//
//	go test ./shared/document -run Memory_Peak -memory -v
func TestMemory_Peak(t *testing.T) {
	if !*memory {
		t.Skip("measures memory in child processes: run with -memory")
	}
	dir := t.TempDir()
	t.Logf("%-44s %-18s %10s %10s %12s %8s %7s", "document", "does", "peak RSS", "heap sys", "allocated", "errors", "report")
	for _, d := range memoryDocs() {
		file := filepath.Join(dir, slug(d.name)+".json")
		if err := os.WriteFile(file, []byte(d.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, does := range []string{"read", "unmarshal", "validate", "validate-unbounded"} {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMemory_Child$", "-test.count=1")
			cmd.Env = append(os.Environ(), "DOCUMENT_MEMORY_FILE="+file, "DOCUMENT_MEMORY_DOES="+does)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", d.name, does, err, out)
			}
			var m childMemory
			_, line, _ := bytes.Cut(out, []byte("MEMORY "))
			line, _, _ = bytes.Cut(line, []byte("\n"))
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("%s %s: %v\n%s", d.name, does, err, out)
			}
			t.Logf("%-44s %-18s %7.1f MiB %6.1f MiB %8.1f MiB %8d %5.1f KiB", fmt.Sprintf("%s (%.1f MB)", d.name, float64(len(d.doc))/1e6), does,
				mib(m.PeakRSS), mib(m.HeapSys), mib(m.Allocated), m.Errors, float64(m.Report)/1024)
		}
	}
}

// peakRSS is the process's resident high-water mark (VmHWM). The child's
// rusage would not do: Linux carries the parent's high-water mark across
// the fork and exec that start it.
func peakRSS(t *testing.T) uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var n uint64
			fmt.Sscanf(strings.TrimSpace(kb), "%d kB", &n)
			return n << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

type childMemory struct {
	PeakRSS, HeapSys, Allocated uint64
	Errors, Report              int
}

// TestMemory_Child is TestMemory_Peak's child process: it reads one
// document and does one thing with it.
func TestMemory_Child(t *testing.T) {
	file := os.Getenv("DOCUMENT_MEMORY_FILE")
	if file == "" {
		t.Skip("run by TestMemory_Peak")
	}
	v := newValidator(t)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var m childMemory
	switch os.Getenv("DOCUMENT_MEMORY_DOES") {
	case "unmarshal":
		var x any
		if err := json.Unmarshal(data, &x); err != nil {
			t.Fatal(err)
		}
		runtime.KeepAlive(x)
	case "validate", "validate-unbounded":
		if os.Getenv("DOCUMENT_MEMORY_DOES") == "validate-unbounded" {
			v.MaxValues = 1 << 30 // only MaxErrors bounds it
		}
		r := v.Validate(data)
		m.Errors = r.ErrorCount
		report, err := MarshalReport("m", r)
		if err != nil {
			t.Fatal(err)
		}
		m.Report = len(report)
	}
	runtime.ReadMemStats(&after)
	m.HeapSys, m.Allocated = after.HeapSys, after.TotalAlloc-before.TotalAlloc
	m.PeakRSS = peakRSS(t)
	out, _ := json.Marshal(m)
	fmt.Printf("MEMORY %s\n", out)
}
