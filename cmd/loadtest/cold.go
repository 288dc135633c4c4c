package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// coldResult is a function's size and how long its process takes from
// exec to its first answer.
type coldResult struct {
	Name      string
	Floor     bool
	Request   string // the first request, as the report shows it
	Size      int64  // the binary, in bytes
	Inits     int    // packages whose init ran (GODEBUG=inittrace=1)
	InitClock time.Duration
	Slowest   []initLine    // the slowest inits
	Listen    time.Duration // median, exec → a TCP connection is accepted
	First200  time.Duration // median, exec → the first 200
	CPU       time.Duration // median, the process's CPU time when its first 200 came
	Runs      []time.Duration
}

// coldTarget is one binary whose cold start is measured.
type coldTarget struct {
	bin     binary
	target  string
	request string // the first request, for the report
	first   func(base string) (*http.Request, error)
}

// coldStarts execs each target runs times and measures each time from
// exec to the first 200 of its first request, and the CPU time the
// process had used by then. The targets take turns, run after run, so
// that the machine's other work, which comes and goes, weighs on each
// alike; one run of each comes first and is not counted (the binaries'
// pages were not in memory yet). Then each runs once more with
// GODEBUG=inittrace=1, to count its inits.
func coldStarts(ctx context.Context, targets []coldTarget, env []string, runs int) ([]coldResult, error) {
	out := make([]coldResult, len(targets))
	listens := make([][]time.Duration, len(targets))
	cpus := make([][]time.Duration, len(targets))
	for run := range runs + 1 {
		for i, t := range targets {
			c, err := coldOnce(ctx, t, env)
			if err != nil {
				return nil, err
			}
			if run == 0 {
				continue
			}
			listens[i] = append(listens[i], c.listen)
			cpus[i] = append(cpus[i], c.cpu)
			out[i].Runs = append(out[i].Runs, c.first200)
		}
	}
	for i, t := range targets {
		r := &out[i]
		r.Name, r.Request, r.Size = t.bin.Name, t.request, t.bin.Size
		r.Listen, r.First200, r.CPU = quantile(listens[i], 0.5), quantile(r.Runs, 0.5), quantile(cpus[i], 0.5)
		c, err := coldOnce(ctx, t, append(env, "GODEBUG=inittrace=1"))
		if err != nil {
			return nil, err
		}
		inits := parseInitTrace([]byte(c.stderr))
		r.Inits = len(inits)
		for _, l := range inits {
			r.InitClock += l.Clock
		}
		r.Slowest = inits[:min(len(inits), 5)]
	}
	return out, nil
}

// cold is one cold start.
type cold struct {
	listen, first200 time.Duration
	cpu              time.Duration // the process's CPU time at its first 200
	stderr           string
}

// coldOnce starts t, waits for the first 200 to its first request, reads
// the CPU time the process has used, and stops it.
func coldOnce(ctx context.Context, t coldTarget, env []string) (cold, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// A new connection each time, as a first caller has.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var c cold
	t0 := time.Now()
	srv, err := start(t.bin, t.target, env)
	if err != nil {
		return c, err
	}
	defer srv.Stop()
	if err := srv.dialed(ctx); err != nil {
		return c, err
	}
	c.listen = time.Since(t0)
	if err := srv.ready(ctx, client, func() (*http.Request, error) { return t.first(srv.URL) }); err != nil {
		return c, fmt.Errorf("cold start of %s: %w", t.bin.Name, err)
	}
	c.first200 = time.Since(t0)
	if c.cpu, err = threadsCPU(srv.Pid()); err != nil {
		return c, err
	}
	c.stderr = srv.Stderr()
	return c, nil
}
