package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// rssSample is the server's resident memory at an offset from the burst's
// start.
type rssSample struct {
	At  time.Duration
	RSS int64
}

// burstResult is what n person logins sent at once did to a fresh login.
type burstResult struct {
	Concurrent int
	Codes      map[int]int   // answers by status; 0 counts transport errors
	Took       time.Duration // from the start to the last answer
	Throughput float64       // successful logins per second over Took
	P99        time.Duration // latency of the successful logins
	Peak       int64         // VmHWM at the end: the most it was ever resident
	Died       string        // how the server ended, if it did during the burst
	Samples    []rssSample   // VmRSS every ~10 ms
}

// burst sends n person logins at once to srv, which has just started and
// is ready, sampling its resident memory every 10 ms until every login
// has its answer.
func burst(ctx context.Context, srv *server, n int, body []byte) (burstResult, error) {
	r := burstResult{Concurrent: n, Codes: map[int]int{}}
	// One connection per login, opened as the logins go: as n clients
	// would.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}
	defer client.CloseIdleConnections()

	t0 := time.Now()
	stop := make(chan struct{})
	sampled := make(chan []rssSample)
	go func() {
		var s []rssSample
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if m, err := processMemory(srv.Pid()); err == nil {
				s = append(s, rssSample{At: time.Since(t0), RSS: m.RSS})
			}
			select {
			case <-stop:
				sampled <- s
				return
			case <-tick.C:
			}
		}
	}()

	var (
		mu        sync.Mutex
		latencies []time.Duration
		last      time.Time
		wg        sync.WaitGroup
		begin     = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-begin
			t := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/token", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			code := 0
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			done := time.Now()
			mu.Lock()
			defer mu.Unlock()
			r.Codes[code]++
			if code == http.StatusOK {
				latencies = append(latencies, done.Sub(t))
			}
			if done.After(last) {
				last = done
			}
		})
	}
	start := time.Now()
	close(begin)
	wg.Wait()
	close(stop)
	r.Samples = <-sampled
	r.Took = last.Sub(start)
	if r.Took > 0 {
		r.Throughput = float64(r.Codes[http.StatusOK]) / r.Took.Seconds()
	}
	r.P99 = quantile(latencies, 0.99)
	select {
	case <-srv.done:
		// Killed, for memory or otherwise: the figure that matters.
		r.Died = fmt.Sprint(srv.err)
		return r, nil
	default:
	}
	m, err := processMemory(srv.Pid())
	if err != nil {
		return r, fmt.Errorf("login after a burst of %d: %w\n%s", n, err, srv.Stderr())
	}
	r.Peak = m.Peak
	return r, nil
}
