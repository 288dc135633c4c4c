package main

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden")

func TestParseFunctionTable_ReadsDeployShsSizing(t *testing.T) {
	got, err := deployedSizes(filepath.Join("..", "..", "deploy.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"login", "gettoken", "validate", "validate-http"} {
		s, ok := got[fn]
		if !ok || s.Bytes() <= 0 || s.CPU == "" || s.Concurrency == "" {
			t.Errorf("deploy.sh's %s: %+v, want its memory, cpu and concurrency", fn, s)
		}
	}

	script := "x\nfunctions_table='\n# function  entry  memory  cpu  concurrency  env\nlogin  Login  512Mi  1  16  A B\n# a comment\nhello  Hello  1Gi  .5  1\n'\n"
	got, err = parseFunctionTable(script)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]sizing{"login": {"512Mi", "1", "16"}, "hello": {"1Gi", ".5", "1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseFunctionTable (-want +got):\n%s", diff)
	}
	if _, err := parseFunctionTable("no table here"); err == nil {
		t.Error("a script without the table: no error")
	}
}

func TestSizing_Bytes(t *testing.T) {
	for mem, want := range map[string]int64{"512Mi": 512 << 20, "2Gi": 2 << 30, "256M": 256e6, "": 0, "lots": 0} {
		if got := (sizing{Memory: mem}).Bytes(); got != want {
			t.Errorf("Bytes(%q) = %d, want %d", mem, got, want)
		}
	}
}

func TestSpliceSection_ReplacesOnlyBetweenTheMarkers(t *testing.T) {
	section := beginMarker + "\nnew figures\n" + endMarker + "\n"
	tests := []struct{ name, in, want string }{
		{"between the markers", "# Doc\n\nhand-written\n\n" + beginMarker + "\nold figures\n" + endMarker + "\n\n## After\n",
			"# Doc\n\nhand-written\n\n" + section + "\n## After\n"},
		{"no markers yet: at the end", "# Doc\n\nhand-written\n", "# Doc\n\nhand-written\n\n" + section},
		{"a new file: the section alone", "", section},
	}
	for _, tt := range tests {
		got, err := spliceSection(tt.in, section)
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	for _, broken := range []string{endMarker + beginMarker, beginMarker + " only", beginMarker + endMarker + beginMarker + endMarker} {
		if _, err := spliceSection(broken, section); err == nil {
			t.Errorf("spliceSection(%q): no error", broken)
		}
	}
}

// sample is a report with every part filled in, its figures made up.
func sample() report {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	codes := func(ok, other int) map[string]int {
		m := map[string]int{"200": ok}
		if other > 0 {
			m["503"] = other
		}
		return m
	}
	return report{
		When: time.Date(2026, 11, 27, 16, 52, 0, 0, time.UTC), Machine: "Xeon, 2 núcleos", Go: "go1.26.8", Commit: "abc1234",
		Duration: 10 * time.Second, ColdRuns: 15, Deployed: map[string]sizing{"login": {"512Mi", "1", "16"}},
		LoginEnv: []string{"FUNCTION_MEMORY_MB=512"},
		Cold: []coldResult{
			{Name: "trivial", Floor: true, Request: "`GET /`", Size: 7_880_969, Inits: 103, InitClock: ms(0.9), Listen: ms(6), First200: ms(8), CPU: ms(4),
				Slowest: []initLine{{"runtime", ms(0.05)}}},
			{Name: "login", Request: "`GET /jwks`", Size: 21_483_785, Inits: 251, InitClock: ms(7.4), Listen: ms(14), First200: ms(11), CPU: ms(9),
				Slowest: []initLine{{"impo.com.uy/copetes/backend/shared/accounts", ms(0.57)}, {"encoding/gob", ms(0.17)}}},
		},
		Load: []loadResult{
			{Key: "trivial", Name: "función trivial", Floor: true, Workers: 8,
				Fixed: phase{Rate: 200, Throughput: 200, P50: ms(0.33), P99: ms(1.2), Codes: codes(2000, 0)},
				Max:   phase{Throughput: 10864, P99: ms(4.1), Codes: codes(20000, 0), Requests: 20000, CPU: 720 * time.Millisecond}},
			{Key: "gettoken", Name: "GetToken, token en caché", Workers: 8,
				Fixed:    phase{Rate: 200, Throughput: 200, P50: ms(0.49), P99: ms(1.6), Codes: codes(2000, 0)},
				Max:      phase{Throughput: 9000, P99: ms(4.4), Codes: codes(18000, 0), Requests: 18000, CPU: 720 * time.Millisecond},
				FloorMax: phase{Requests: 20000, CPU: 720 * time.Millisecond}},
			{Key: "client-credentials", Name: "login, `client_credentials`", Workers: 8, Unsuccessful: 3,
				Fixed:    phase{Rate: 50, Throughput: 50, P50: ms(1), P99: ms(3), Codes: codes(500, 0)},
				Max:      phase{Throughput: 3000, P99: ms(9), Codes: codes(6000, 3), Requests: 6003, CPU: 3001500 * time.Microsecond},
				FloorMax: phase{Requests: 20000, CPU: 800 * time.Millisecond}},
			{Key: "password", Name: "login, persona", Workers: 4,
				Fixed:    phase{Rate: 10, Throughput: 10, P50: ms(87), P99: ms(159), Codes: codes(100, 0)},
				Max:      phase{Throughput: 40, P99: ms(300), Codes: codes(400, 0), Requests: 400, CPU: 18 * time.Second},
				FloorMax: phase{Requests: 20000, CPU: 700 * time.Millisecond}},
		},
		Bursts: []burstResult{
			{Concurrent: 200, Codes: map[int]int{200: 200}, Retried: 10, Took: 5 * time.Second, Throughput: 38, P99: 4 * time.Second,
				Peak: 120 << 20, Samples: []rssSample{{0, 20 << 20}, {ms(10), 60 << 20}, {ms(20), 110 << 20}}},
			{Concurrent: 1000, Codes: map[int]int{200: 990, 0: 10}, Retried: 2400, Took: 26 * time.Second, Throughput: 37, P99: 15 * time.Second,
				Peak: 300 << 20, Samples: []rssSample{{0, 20 << 20}, {ms(15), 280 << 20}}},
		},
	}
}

// TestMarkdown_MatchesGolden pins the report's layout: its tables, the
// goals judged from the figures, the charts' links.
func TestMarkdown_MatchesGolden(t *testing.T) {
	r := sample()
	got := r.markdown("benchmarks")
	golden := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("markdown differs from %s (go test ./cmd/loadtest -update to accept) (-want +got):\n%s", golden, diff)
	}
	for _, line := range []string{
		"| arranque en frío, exec → primer 200: ≤ 1,5× la trivial | login 1,38× (CPU 2,25×) | sí |",
		"| binario: ≤ 2× la trivial | login 2,73× | **no** |",
		"| GetToken con caché: ≥ 0,8 de la capacidad por núcleo de la trivial | 0,90 | sí |",
		"| cuentas de servicio: ≥ 1200 por segundo por núcleo | 2000/s | sí |",
		"| personas (argon2id): ≥ 15 por segundo por núcleo | 22,2/s | sí |",
		"| ráfagas de inicios de sesión: pico ≤ 256 MiB | 200 a la vez: 120 MiB; 1000 a la vez: 300 MiB | **no** |",
		"| ráfagas: dentro de la memoria desplegada de login (512Mi) | 200 a la vez: 120 MiB; 1000 a la vez: 300 MiB | sí |",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("the goals lack the line\n%s", line)
		}
	}
}

// TestCharts_AreWellFormedSVG: each chart parses as XML, draws a bar or a
// line per figure, and is the same for the same figures.
func TestCharts_AreWellFormedSVG(t *testing.T) {
	r := sample()
	charts := r.charts()
	for _, name := range []string{chartThroughput, chartPerCore, chartP99, chartRSS} {
		svg, ok := charts[name]
		if !ok {
			t.Errorf("no chart %s", name)
			continue
		}
		elements := map[string]int{}
		d := xml.NewDecoder(bytes.NewReader(svg))
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s is not well-formed XML: %v\n%s", name, err, svg)
			}
			if s, ok := tok.(xml.StartElement); ok {
				elements[s.Name.Local]++
			}
		}
		switch name {
		case chartRSS:
			if elements["polyline"] != len(r.Bursts) {
				t.Errorf("%s draws %d lines, want one per burst (%d)", name, elements["polyline"], len(r.Bursts))
			}
		default:
			// The background, then one bar per path.
			if elements["rect"] != 1+len(r.Load) {
				t.Errorf("%s draws %d rects, want the background and one bar per path (%d)", name, elements["rect"], len(r.Load))
			}
		}
		if again := r.charts()[name]; !bytes.Equal(svg, again) {
			t.Errorf("%s differs between two renderings of the same figures", name)
		}
	}
}

func TestNumber_IsShortWithADecimalComma(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.0123: "0,012", 3.4: "3,4", 56: "56", 1234: "1,2 k", 27678: "28 k", 2.5e6: "2,5 M"} {
		if got := number(v); got != want {
			t.Errorf("number(%v) = %q, want %q", v, got, want)
		}
	}
}
