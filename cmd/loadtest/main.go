// Command loadtest measures the deployed functions against a trivial
// Functions Framework function, on this machine, and writes the figures
// into docs/benchmarks.md (between its loadtest markers) with charts in
// docs/benchmarks/.
//
//	go run ./cmd/loadtest            # the full run, about 9 minutes on 2 busy cores
//	go run ./cmd/loadtest -quick     # a short run, to try it (under a minute)
//	go run ./cmd/loadtest -doc ''    # print the report, write nothing
//
//	# login alone, as an instance of 256Mi and 1 vCPU would hold up
//	go run ./cmd/loadtest -only bursts -doc '' -login-env FUNCTION_MEMORY_MB=256 -login-env GOMAXPROCS=1
//
// It builds each function as deploy.sh has the Go buildpack build it (a
// root package that imports that function alone, the buildpack's main,
// -ldflags '-s -w'), and the trivial function the same way; runs them on
// loopback with local credentials (a fresh folder: dev keys, a person and
// a service account made with cmd/admin); and measures
//
//   - cold start: exec → first 200, the median of several runs, the
//     binary's size, and the package inits (GODEBUG=inittrace=1);
//   - load: each path at a fixed rate and as fast as a few workers go
//     (vegeta), with throughput, p50/p99 and the server's CPU time per
//     request, read from /proc/<pid>/stat: on a machine shared with other
//     work, CPU time per request, and its ratio to the trivial function's,
//     are stable where throughput is not;
//   - login bursts: n person logins at once on a fresh login, sampling its
//     resident memory every 10 ms, with its peak (VmHWM).
//
// Ratios compare figures of the same run only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

type options struct {
	quick    bool
	doc      string // the report's markdown file; "" prints it
	charts   string // the charts' folder
	duration time.Duration
	coldRuns int
	bursts   []int
	loginEnv []string
	keep     bool
	skip     []string // parts left out: cold, load, bursts
}

// runs says whether part is to run.
func (o options) runs(part string) bool { return !slices.Contains(o.skip, part) }

func main() {
	var o options
	var bursts string
	flag.BoolVar(&o.quick, "quick", false, "a short run: 2 s per phase, 3 cold starts, one burst of 200")
	flag.StringVar(&o.doc, "doc", "docs/benchmarks.md", "markdown file whose loadtest section is rewritten (relative to the module); empty: print the report")
	flag.StringVar(&o.charts, "charts", "docs/benchmarks", "folder of the SVG charts (relative to the module)")
	flag.DurationVar(&o.duration, "duration", 0, "length of each load phase (default 10s, or 2s with -quick)")
	flag.IntVar(&o.coldRuns, "cold-runs", 0, "cold starts per function (default 15, or 3 with -quick)")
	flag.StringVar(&bursts, "bursts", "", "sizes of the login bursts, comma-separated (default 200,1000, or 200 with -quick)")
	flag.Func("login-env", "KEY=VALUE in the environment of the bursts' login, beside (or instead of) FUNCTION_MEMORY_MB=<deploy.sh's memory for login> (repeatable)", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("want KEY=VALUE")
		}
		o.loginEnv = append(o.loginEnv, s)
		return nil
	})
	flag.BoolVar(&o.keep, "keep", false, "keep the work folder (binaries, credentials)")
	only := flag.String("only", "", "run only these parts, comma-separated: cold, load, bursts (with -doc '' or a file of its own: "+
		"the section would hold only them)")
	flag.Parse()
	o.defaults(bursts)
	for _, part := range strings.Split(*only, ",") {
		switch part = strings.TrimSpace(part); part {
		case "":
		case "cold", "load", "bursts":
			o.skip = append(o.skip, part)
		default:
			fmt.Fprintf(os.Stderr, "loadtest: -only %s: want cold, load or bursts\n", part)
			os.Exit(2)
		}
	}
	if len(o.skip) > 0 {
		// -only names what runs; skip is what does not.
		var skip []string
		for _, part := range []string{"cold", "load", "bursts"} {
			if !slices.Contains(o.skip, part) {
				skip = append(skip, part)
			}
		}
		o.skip = skip
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func (o *options) defaults(bursts string) {
	if o.duration == 0 {
		o.duration = 10 * time.Second
		if o.quick {
			o.duration = 2 * time.Second
		}
	}
	if o.coldRuns == 0 {
		o.coldRuns = 15
		if o.quick {
			o.coldRuns = 3
		}
	}
	if bursts == "" {
		bursts = "200,1000"
		if o.quick {
			bursts = "200"
		}
	}
	for _, b := range strings.Split(bursts, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(b)); err == nil && n > 0 {
			o.bursts = append(o.bursts, n)
		}
	}
}

// say tells the person running the command where it is.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadtest: "+format+"\n", args...)
}

func run(ctx context.Context, o options) error {
	root, err := goTool(ctx, ".", "list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		return err
	}
	module, err := goTool(ctx, root, "list", "-m")
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "impo-loadtest-")
	if err != nil {
		return err
	}
	if o.keep {
		say("work folder %s", work)
	} else {
		defer os.RemoveAll(work)
	}

	rep := report{When: time.Now(), Quick: o.quick, Duration: o.duration, ColdRuns: o.coldRuns}
	rep.describeMachine(ctx, root)
	if rep.Deployed, err = deployedSizes(filepath.Join(root, "deploy.sh")); err != nil {
		return err
	}
	// The bursts' login learns the memory it has deployed as a process
	// with no cgroup limit can: FUNCTION_MEMORY_MB (shared/memlimit).
	if mb := rep.Deployed["login"].Bytes() >> 20; mb > 0 {
		rep.LoginEnv = append(rep.LoginEnv, "FUNCTION_MEMORY_MB="+strconv.FormatInt(mb, 10))
	}
	for _, kv := range o.loginEnv {
		// A -login-env of the same name replaces the default.
		key, _, _ := strings.Cut(kv, "=")
		rep.LoginEnv = slices.DeleteFunc(rep.LoginEnv, func(d string) bool { return strings.HasPrefix(d, key+"=") })
		rep.LoginEnv = append(rep.LoginEnv, kv)
	}

	say("building the functions as the buildpack does")
	bins := map[string]binary{}
	for _, fn := range functionsUnderTest {
		b, err := build(ctx, root, module, work, fn.name, fn.pkg)
		if err != nil {
			return err
		}
		bins[fn.name] = b
	}
	admin := filepath.Join(work, "admin")
	if _, err := goTool(ctx, root, "build", "-o", admin, "./cmd/admin"); err != nil {
		return err
	}
	cr, err := makeCredentials(ctx, admin, filepath.Join(work, "credenciales"))
	if err != nil {
		return err
	}
	env := cr.env()
	lab := &lab{ctx: ctx, bins: bins, env: env, creds: cr}
	defer lab.stop()
	if err := lab.startAll(); err != nil {
		return err
	}

	if o.runs("cold") {
		say("cold starts: %d of each function, in turns", o.coldRuns)
		var targets []coldTarget
		for _, fn := range functionsUnderTest {
			targets = append(targets, coldTarget{bin: bins[fn.name], target: fn.target, request: fn.first, first: lab.firstRequest(fn.name)})
		}
		if rep.Cold, err = coldStarts(ctx, targets, env, o.coldRuns); err != nil {
			return err
		}
		rep.Cold[0].Floor = true // functionsUnderTest starts with the trivial function
	}

	scenarios := lab.scenarios()
	for _, s := range scenarios {
		if !o.runs("load") {
			break
		}
		say("load: %s, %s per phase", s.Name, o.duration)
		r, err := load(lab.client, s, scenarios[0], o.duration, 20)
		if err != nil {
			return err
		}
		rep.Load = append(rep.Load, r)
	}

	for _, n := range o.bursts {
		if !o.runs("bursts") {
			break
		}
		say("login burst: %d at once", n)
		b, err := lab.burst(n, rep.LoginEnv)
		if err != nil {
			return err
		}
		rep.Bursts = append(rep.Bursts, b)
	}

	if o.doc == "" {
		_, err := os.Stdout.WriteString(rep.markdown("docs/benchmarks"))
		return err
	}
	doc, charts := inModule(root, o.doc), inModule(root, o.charts)
	rel, err := filepath.Rel(filepath.Dir(doc), charts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(charts, 0o755); err != nil {
		return err
	}
	for name, svg := range rep.charts() {
		if err := os.WriteFile(filepath.Join(charts, name), svg, 0o644); err != nil {
			return err
		}
	}
	if err := replaceSection(doc, rep.markdown(filepath.ToSlash(rel))); err != nil {
		return err
	}
	say("wrote %s and the charts in %s", o.doc, o.charts)
	return nil
}

// inModule resolves a path given relative to the module's root.
func inModule(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}
