package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report is one run's figures.
type report struct {
	When     time.Time
	Machine  string // CPU model and cores
	Go       string // the Go version that built the functions
	Commit   string // the checkout measured
	Quick    bool
	Duration time.Duration // of each load phase
	ColdRuns int
	LoginEnv []string
	Deployed map[string]sizing // deploy.sh's rows, by function

	Cold   []coldResult
	Load   []loadResult
	Bursts []burstResult
}

// sizing is how deploy.sh sizes a deployed function's instance.
type sizing struct {
	Memory, CPU, Concurrency string
}

// Bytes is the memory limit in bytes (Mi and Gi suffixes), or 0.
func (s sizing) Bytes() int64 {
	for suffix, unit := range map[string]int64{"Mi": 1 << 20, "Gi": 1 << 30, "M": 1e6, "G": 1e9} {
		if n, ok := strings.CutSuffix(s.Memory, suffix); ok {
			if v, err := strconv.ParseInt(n, 10, 64); err == nil {
				return v * unit
			}
		}
	}
	return 0
}

// deployedSizes reads the memory, cpu and concurrency of each row of
// deploy.sh's function table, by the names of the columns in its header.
func deployedSizes(path string) (map[string]sizing, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseFunctionTable(string(data))
}

func parseFunctionTable(script string) (map[string]sizing, error) {
	const open = "\nfunctions_table='\n"
	i := strings.Index(script, open)
	if i < 0 {
		return nil, fmt.Errorf("deploy.sh has no functions_table")
	}
	body, _, _ := strings.Cut(script[i+len(open):], "\n'")
	var cols []string
	out := map[string]sizing{}
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "#" && len(f) > 1 && f[1] == "function":
			cols = f[1:]
		case strings.HasPrefix(f[0], "#"):
		default:
			col := func(name string) string {
				if j := slices.Index(cols, name); j >= 0 && j < len(f) {
					return f[j]
				}
				return ""
			}
			out[f[0]] = sizing{Memory: col("memory"), CPU: col("cpu"), Concurrency: col("concurrency")}
		}
	}
	if cols == nil || len(out) == 0 {
		return nil, fmt.Errorf("deploy.sh's functions_table has no header (# function …) or no rows")
	}
	return out, nil
}

// describeMachine fills in where and what was measured.
func (r *report) describeMachine(ctx context.Context, root string) {
	r.Machine = fmt.Sprintf("%d núcleos", runtime.NumCPU())
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				r.Machine = strings.TrimSpace(v) + ", " + r.Machine
				break
			}
		}
		f.Close()
	}
	r.Go, _ = goTool(ctx, root, "env", "GOVERSION")
	if out, err := gitOutput(ctx, root, "rev-parse", "--short", "HEAD"); err == nil {
		r.Commit = out
		if dirty, err := gitOutput(ctx, root, "status", "--porcelain", "--untracked-files=no"); err == nil && dirty != "" {
			r.Commit += " con cambios sin commit"
		}
	}
}

// quantile is the q-quantile of ds (nearest rank), 0 for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
