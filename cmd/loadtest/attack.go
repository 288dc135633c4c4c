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

// phase is what one or more attacks on a path measured.
type phase struct {
	Rate       int           // asked for, per second; 0 for as fast as the workers go
	Requests   uint64        // sent
	Throughput float64       // successful answers per second of attack
	P50, P99   time.Duration // latency
	Codes      map[string]int
	CPU        time.Duration // the server's CPU time over the attacks (/proc)
	Errors     []string      // the first few distinct transport errors
}

// CPUPerReq is the server's CPU time per request in this phase.
func (p phase) CPUPerReq() time.Duration {
	if p.Requests == 0 {
		return 0
	}
	return p.CPU / time.Duration(p.Requests)
}

// loadResult is a scenario's phases.
type loadResult struct {
	Key, Name string
	Floor     bool
	Workers   uint64 // requests at once in the Max phase
	Fixed     phase  // at the scenario's rate, alone
	Max       phase  // as fast as Workers go, in rounds taken in turn with the floor's
	// FloorMax is the trivial function's own share of those rounds: the
	// floor measured at the same moments as the path, for the ratio.
	FloorMax     phase
	Unsuccessful uint64 // answers other than 2xx, in Fixed and Max
}

// CPUPerReq is the path's CPU time per request at its highest rate.
func (r loadResult) CPUPerReq() time.Duration { return r.Max.CPUPerReq() }

// PerCore is how many requests one core serves at this CPU cost.
func (r loadResult) PerCore() float64 {
	if c := r.CPUPerReq(); c > 0 {
		return float64(time.Second) / float64(c)
	}
	return 0
}

// Ratio is the trivial function's CPU time per request over the path's,
// both taken in the same rounds: the share of the trivial function's
// requests per core that the path serves.
func (r loadResult) Ratio() float64 {
	if r.Floor {
		return 1
	}
	if c := r.CPUPerReq(); c > 0 {
		return float64(r.FloorMax.CPUPerReq()) / float64(c)
	}
	return 0
}

// meter adds up the results of one path's attacks.
type meter struct {
	m        vegeta.Metrics
	attacked time.Duration
	cpu      time.Duration
	errors   []string
}

// attack sends s's request at rate per second (0: as fast as s.Workers
// requests at once allow) for d, adding the answers and the server's CPU
// time to the meter.
func (mt *meter) attack(s scenario, rate int, d time.Duration) error {
	opts := []func(*vegeta.Attacker){vegeta.KeepAlive(true), vegeta.Timeout(2 * time.Minute), vegeta.MaxBody(4 << 10)}
	pacer := vegeta.ConstantPacer{Freq: rate, Per: time.Second}
	if rate == 0 {
		opts = append(opts, vegeta.Workers(s.Workers), vegeta.MaxWorkers(s.Workers))
	}
	a := vegeta.NewAttacker(opts...)
	before, err := processCPU(s.Server.Pid())
	if err != nil {
		return err
	}
	start := time.Now()
	for res := range a.Attack(vegeta.NewStaticTargeter(s.Target), pacer, d, s.Key) {
		mt.m.Add(res)
		if res.Error != "" && len(mt.errors) < 3 {
			mt.errors = append(mt.errors, res.Error)
		}
	}
	mt.attacked += time.Since(start)
	after, err := processCPU(s.Server.Pid())
	if err != nil {
		return fmt.Errorf("%s: %w (the server died?)\n%s", s.Key, err, s.Server.Stderr())
	}
	mt.cpu += after - before
	return nil
}

// phase closes the meter: throughput is over the time spent attacking,
// which leaves out the pauses between rounds.
func (mt *meter) phase(rate int) phase {
	mt.m.Close()
	p := phase{Rate: rate, Requests: mt.m.Requests, P50: mt.m.Latencies.P50, P99: mt.m.Latencies.P99,
		Codes: mt.m.StatusCodes, CPU: mt.cpu, Errors: mt.errors}
	if mt.attacked > 0 {
		p.Throughput = mt.m.Success * float64(mt.m.Requests) / mt.attacked.Seconds()
	}
	return p
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

// rounds is how many turns the floor and a path take at their highest
// rate: the machine's other work drifts over seconds, and turns of a
// second or two see the same drift on both sides of the ratio.
const rounds = 5

// load runs a scenario: a phase at its fixed rate, then rounds at the
// highest rate taken in turn with the floor (for the floor itself, one
// phase of the same length).
func load(client *http.Client, s, floor scenario, d time.Duration, warmup int) (loadResult, error) {
	if err := warm(client, s, warmup); err != nil {
		return loadResult{}, err
	}
	r := loadResult{Key: s.Key, Name: s.Name, Floor: s.Floor, Workers: s.Workers}
	var fixed, max, base meter
	if err := fixed.attack(s, s.Rate, d); err != nil {
		return r, err
	}
	r.Fixed = fixed.phase(s.Rate)
	if s.Floor {
		if err := max.attack(s, 0, d); err != nil {
			return r, err
		}
	} else {
		for range rounds {
			if err := base.attack(floor, 0, d/rounds); err != nil {
				return r, err
			}
			if err := max.attack(s, 0, d/rounds); err != nil {
				return r, err
			}
		}
		r.FloorMax = base.phase(0)
	}
	r.Max = max.phase(0)
	for _, p := range []phase{r.Fixed, r.Max} {
		for code, n := range p.Codes {
			if len(code) != 3 || code[0] != '2' {
				r.Unsuccessful += uint64(n)
			}
		}
	}
	return r, nil
}
