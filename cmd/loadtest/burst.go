package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssSample is the server's resident memory at an offset from the burst's
// start.
type rssSample struct {
	At  time.Duration
	RSS int64
}

// burstResult is what n people logging in at once did to a fresh login.
// Each person tries again after a 503, when its Retry-After says, as a
// client should: the burst ends when each has an answer other than 503.
type burstResult struct {
	Concurrent int
	Codes      map[int]int   // final answers by status; 0 counts transport errors
	Retried    int           // 503 answers, each followed by another try
	Took       time.Duration // from the start to the last answer
	Throughput float64       // successful logins per second over Took
	P99        time.Duration // of the time a person waited, first try to 200
	Peak       int64         // VmHWM at the end: the most it was ever resident
	Died       string        // how the server ended, if it did during the burst
	Samples    []rssSample   // VmRSS every ~10 ms
}

// burst sends n person logins at once to srv, which has just started and
// is ready, sampling its resident memory every 10 ms until every login
// has its answer (retried after each 503).
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
			code, retried := loginRetrying(ctx, client, srv.URL+"/token", body)
			done := time.Now()
			mu.Lock()
			defer mu.Unlock()
			r.Codes[code]++
			r.Retried += retried
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

// loginRetrying posts body to url until the answer is not a 503, waiting
// what each 503's Retry-After says (a second when it says nothing
// usable). It returns the last status (0 for a transport error) and how
// many 503s came before it.
func loginRetrying(ctx context.Context, client *http.Client, url string, body []byte) (code, retried int) {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, retried
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return resp.StatusCode, retried
		}
		retried++
		select {
		case <-time.After(retryAfter(resp.Header.Get("Retry-After"))):
		case <-ctx.Done():
			return resp.StatusCode, retried
		}
	}
}

// retryAfter reads a Retry-After of delay-seconds (RFC 9110 §10.2.3),
// between 1 and 30 s; anything else is a second.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 1 {
		return time.Second
	}
	return time.Duration(min(n, 30)) * time.Second
}
