package main

import (
	"fmt"
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// scenario is one path put under load.
type scenario struct {
	Key     string // short name: trivial, gettoken, …
	Name    string // what the report calls it
	Server  *server
	Target  vegeta.Target
	Rate    int    // requests per second of the fixed-rate phase
	Workers uint64 // requests at once in the phase at the highest rate
	Floor   bool   // the trivial function, which the others are compared to
}

// phase is what one attack measured.
type phase struct {
	Rate       int           // asked for, per second; 0 for as fast as Workers go
	Requests   uint64        // sent
	Throughput float64       // successful answers per second
	P50, P99   time.Duration // latency
	Codes      map[string]int
	CPU        time.Duration // the server's CPU time over the phase (/proc)
	Errors     []string      // the first few distinct transport errors
}

// loadResult is a scenario's two phases.
type loadResult struct {
	Key, Name    string
	Floor        bool
	Workers      uint64 // requests at once in the Max phase
	Fixed, Max   phase
	CPUPerReq    time.Duration // both phases: CPU time over requests
	Unsuccessful uint64        // answers other than 2xx, in both phases
}

// PerCore is how many requests one core serves at this CPU cost.
func (r loadResult) PerCore() float64 {
	if r.CPUPerReq <= 0 {
		return 0
	}
	return float64(time.Second) / float64(r.CPUPerReq)
}

// attack sends s's request at rate per second (0: as fast as s.Workers
// requests at once allow) for d, and measures the answers and the server's
// CPU time.
func attack(s scenario, rate int, d time.Duration) (phase, error) {
	opts := []func(*vegeta.Attacker){vegeta.KeepAlive(true), vegeta.Timeout(2 * time.Minute), vegeta.MaxBody(4 << 10)}
	pacer := vegeta.ConstantPacer{Freq: rate, Per: time.Second}
	if rate == 0 {
		opts = append(opts, vegeta.Workers(s.Workers), vegeta.MaxWorkers(s.Workers))
	}
	a := vegeta.NewAttacker(opts...)
	before, err := processCPU(s.Server.Pid())
	if err != nil {
		return phase{}, err
	}
	var m vegeta.Metrics
	for res := range a.Attack(vegeta.NewStaticTargeter(s.Target), pacer, d, s.Key) {
		m.Add(res)
	}
	m.Close()
	after, err := processCPU(s.Server.Pid())
	if err != nil {
		return phase{}, fmt.Errorf("%s: %w (the server died?)\n%s", s.Key, err, s.Server.Stderr())
	}
	p := phase{Rate: rate, Requests: m.Requests, Throughput: m.Throughput, P50: m.Latencies.P50, P99: m.Latencies.P99,
		Codes: m.StatusCodes, CPU: after - before}
	for i, e := range m.Errors {
		if i == 3 {
			break
		}
		p.Errors = append(p.Errors, e)
	}
	return p, nil
}

// warm sends n requests of s one after the other, so that what a first
// request builds (the function itself, caches) is built before measuring;
// each must succeed.
func warm(client *http.Client, s scenario, n int) error {
	for range n {
		req, err := s.Target.Request()
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Key, err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s: %s %s: %d\n%s", s.Key, req.Method, req.URL, resp.StatusCode, s.Server.Stderr())
		}
	}
	return nil
}

// load runs a scenario: a fixed-rate phase, then one as fast as its
// workers go.
func load(client *http.Client, s scenario, d time.Duration, warmup int) (loadResult, error) {
	if err := warm(client, s, warmup); err != nil {
		return loadResult{}, err
	}
	r := loadResult{Key: s.Key, Name: s.Name, Floor: s.Floor, Workers: s.Workers}
	var err error
	if r.Fixed, err = attack(s, s.Rate, d); err != nil {
		return r, err
	}
	if r.Max, err = attack(s, 0, d); err != nil {
		return r, err
	}
	if n := r.Fixed.Requests + r.Max.Requests; n > 0 {
		r.CPUPerReq = (r.Fixed.CPU + r.Max.CPU) / time.Duration(n)
	}
	for _, p := range []phase{r.Fixed, r.Max} {
		for code, n := range p.Codes {
			if len(code) != 3 || code[0] != '2' {
				r.Unsuccessful += uint64(n)
			}
		}
	}
	return r, nil
}
