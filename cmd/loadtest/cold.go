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
	Runs      []time.Duration
}

// coldStart execs bin runs times (after one run to warm the page cache)
// and measures each time from exec to the first 200 of first; then once
// more with GODEBUG=inittrace=1, to count the inits.
func coldStart(ctx context.Context, bin binary, target string, env []string, runs int,
	first func(base string) (*http.Request, error)) (coldResult, error) {
	r := coldResult{Name: bin.Name, Size: bin.Size}
	var listens []time.Duration
	for i := range runs + 1 {
		listen, first200, _, err := coldOnce(ctx, bin, target, env, first)
		if err != nil {
			return r, err
		}
		if i == 0 {
			continue // the binary's pages were not in memory yet
		}
		listens = append(listens, listen)
		r.Runs = append(r.Runs, first200)
	}
	r.Listen = quantile(listens, 0.5)
	r.First200 = quantile(r.Runs, 0.5)
	_, _, stderr, err := coldOnce(ctx, bin, target, append(env, "GODEBUG=inittrace=1"), first)
	if err != nil {
		return r, err
	}
	inits := parseInitTrace([]byte(stderr))
	r.Inits = len(inits)
	for _, l := range inits {
		r.InitClock += l.Clock
	}
	r.Slowest = inits[:min(len(inits), 5)]
	return r, nil
}

// coldOnce starts bin, waits for the first 200 to first, and stops it.
func coldOnce(ctx context.Context, bin binary, target string, env []string,
	first func(base string) (*http.Request, error)) (listen, first200 time.Duration, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// A new connection each time, as a first caller has.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t0 := time.Now()
	srv, err := start(bin, target, env)
	if err != nil {
		return 0, 0, "", err
	}
	defer srv.Stop()
	if err := srv.dialed(ctx); err != nil {
		return 0, 0, "", err
	}
	listen = time.Since(t0)
	if err := srv.ready(ctx, client, func() (*http.Request, error) { return first(srv.URL) }); err != nil {
		return 0, 0, "", fmt.Errorf("cold start of %s: %w", bin.Name, err)
	}
	first200 = time.Since(t0)
	return listen, first200, srv.Stderr(), nil
}
