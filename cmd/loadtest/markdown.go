package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The generated section of docs/benchmarks.md lies between these lines;
// the rest of the file is written by hand.
const (
	beginMarker = "<!-- loadtest: inicio. Lo escribe go run ./cmd/loadtest; no editar a mano. -->"
	endMarker   = "<!-- loadtest: fin -->"
)

// The goals of issue 14 that the load test measures.
const (
	goalColdStart  = 1.5  // exec → first 200, × the trivial function's
	goalSize       = 2.0  // binary, × the trivial function's
	goalGetToken   = 0.8  // the cached path's share of the trivial function's capacity per core
	goalService    = 1200 // client-credentials grants per second per core
	goalPerson     = 15   // person logins per second per core
	goalBurstBytes = 256 << 20
)

// The chart files, in the charts folder.
const (
	chartThroughput = "loadtest-throughput.svg"
	chartPerCore    = "loadtest-per-core.svg"
	chartP99        = "loadtest-p99.svg"
	chartRSS        = "loadtest-login-rss.svg"
)

// replaceSection rewrites, in the markdown file doc, what lies between the
// markers (the markers included) with section; a file without them gets
// the section at its end, and a missing file is made.
func replaceSection(doc, section string) error {
	data, err := os.ReadFile(doc)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out, err := spliceSection(string(data), section)
	if err != nil {
		return fmt.Errorf("%s: %w", doc, err)
	}
	return os.WriteFile(doc, []byte(out), 0o644)
}

func spliceSection(text, section string) (string, error) {
	i, j := strings.Index(text, beginMarker), strings.Index(text, endMarker)
	switch {
	case i < 0 && j < 0 && strings.TrimSpace(text) == "":
		return section, nil
	case i < 0 && j < 0:
		return strings.TrimRight(text, "\n") + "\n\n" + section, nil
	case i < 0 || j < i || strings.Count(text, beginMarker) > 1 || strings.Count(text, endMarker) > 1:
		return "", fmt.Errorf("the loadtest markers are not one begin before one end")
	}
	return text[:i] + section + strings.TrimPrefix(text[j+len(endMarker):], "\n"), nil
}

// floor returns the trivial function's results.
func (r *report) floorCold() (coldResult, bool) {
	i := slices.IndexFunc(r.Cold, func(c coldResult) bool { return c.Floor })
	if i < 0 {
		return coldResult{}, false
	}
	return r.Cold[i], true
}

func (r *report) floorLoad() (loadResult, bool) {
	i := slices.IndexFunc(r.Load, func(l loadResult) bool { return l.Floor })
	if i < 0 {
		return loadResult{}, false
	}
	return r.Load[i], true
}

func (r *report) load(key string) (loadResult, bool) {
	i := slices.IndexFunc(r.Load, func(l loadResult) bool { return l.Key == key })
	if i < 0 {
		return loadResult{}, false
	}
	return r.Load[i], true
}

// markdown renders the section, markers included; charts is the charts'
// folder relative to the document.
func (r *report) markdown(charts string) string {
	var w bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	p("%s\n## Prueba de carga: las funciones frente a una función trivial\n\n", beginMarker)
	mode := "corrida completa"
	if r.Quick {
		mode = "corrida rápida (`-quick`): cifras de prueba, no de referencia"
	}
	p("Medido el %s en %s, %s, commit %s; %s. Para repetirlo:\n\n", r.When.Format("2006-01-02 15:04"), r.Machine, r.Go, r.Commit, mode)
	p("```sh\ngo run ./cmd/loadtest          # unos 9 minutos; -quick para probar\n```\n\n")
	p("Cada función se compila como la compila el buildpack al desplegar con `deploy.sh`: un paquete raíz que importa " +
		"solo esa función, el `main` que genera el buildpack y `-ldflags '-s -w'`; la función trivial (responde `{\"ok\":true}`), " +
		"igual. Corren en loopback con credenciales locales nuevas y estado en memoria. La CPU por pedido es el tiempo de CPU " +
		"del proceso servidor (`utime`+`stime` de `/proc/<pid>/stat`) dividido por los pedidos: en una máquina compartida es " +
		"la cifra estable, y las razones comparan cifras de esta misma corrida.\n\n")

	r.goals(&w)
	r.coldTable(&w)
	r.loadTable(&w, charts)
	r.burstTable(&w, charts)
	p("%s\n", endMarker)
	return w.String()
}

// goals is the table of the goals that this run measures.
func (r *report) goals(w *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("### Metas\n\n| meta | medido | ¿se cumple? |\n| --- | --- | --- |\n")
	if floor, ok := r.floorCold(); ok {
		var cold, size []string
		coldOK, sizeOK := true, true
		for _, c := range r.Cold {
			if c.Floor {
				continue
			}
			rc, rs := ratio(c.First200, floor.First200), float64(c.Size)/float64(floor.Size)
			cold = append(cold, fmt.Sprintf("%s %s× (CPU %s×)", c.Name, dec(rc, 2), dec(ratio(c.CPU, floor.CPU), 2)))
			size = append(size, fmt.Sprintf("%s %s×", c.Name, dec(rs, 2)))
			coldOK = coldOK && rc <= goalColdStart
			sizeOK = sizeOK && rs <= goalSize
		}
		p("| arranque en frío, exec → primer 200: ≤ %s× la trivial | %s | %s |\n", dec(goalColdStart, 1), strings.Join(cold, "; "), yes(coldOK))
		p("| binario: ≤ %s× la trivial | %s | %s |\n", dec(goalSize, 0), strings.Join(size, "; "), yes(sizeOK))
	}
	if g, ok := r.load("gettoken"); ok {
		rt := g.Ratio()
		p("| GetToken con caché: ≥ %s de la capacidad por núcleo de la trivial | %s | %s |\n", dec(goalGetToken, 1), dec(rt, 2), yes(rt >= goalGetToken))
	}
	if s, ok := r.load("client-credentials"); ok {
		p("| cuentas de servicio: ≥ %d por segundo por núcleo | %s/s | %s |\n", goalService, dec(s.PerCore(), 0), yes(s.PerCore() >= goalService))
	}
	if s, ok := r.load("password"); ok {
		p("| personas (argon2id): ≥ %d por segundo por núcleo | %s/s | %s |\n", goalPerson, dec(s.PerCore(), 1), yes(s.PerCore() >= goalPerson))
	}
	if len(r.Bursts) > 0 {
		var peaks []string
		ok, inside := true, true
		limit := r.Deployed["login"].Bytes()
		for _, b := range r.Bursts {
			peaks = append(peaks, fmt.Sprintf("%d a la vez: %s", b.Concurrent, mib(b.Peak)))
			ok = ok && b.Peak <= goalBurstBytes && b.Died == ""
			inside = inside && b.Died == "" && (limit == 0 || b.Peak < limit)
		}
		p("| ráfagas de inicios de sesión: pico ≤ 256 MiB | %s | %s |\n", strings.Join(peaks, "; "), yes(ok))
		p("| ráfagas: dentro de la memoria desplegada de login (%s) | %s | %s |\n", r.Deployed["login"].Memory, strings.Join(peaks, "; "), yes(inside))
	}
	p("\nValidate frente a `json.Unmarshal` (CPU y bytes asignados por byte) y la primera verificación de un token " +
		"frente a `ed25519.Verify` se miden con los benchmarks de Go de más abajo, no aquí.\n\n")
}

func (r *report) coldTable(w *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	floor, ok := r.floorCold()
	if !ok {
		return
	}
	p("### Arranque en frío y tamaño\n\n")
	p("Del `exec` del binario a la primera respuesta 200 a su primera petición (que construye la función: lee secretos, "+
		"compila el esquema…), mediana de %d arranques de cada una, por turnos (trivial, login, gettoken, validate, trivial…) "+
		"tras una vuelta descartada. «CPU» es la que usó el proceso, todos sus hilos, hasta ese 200 "+
		"(`/proc/<pid>/task/*/schedstat`): con la máquina ocupada por otros, el tiempo de reloj varía más que ella. "+
		"«Paquetes con init» y su tiempo, de `GODEBUG=inittrace=1`.\n\n", r.ColdRuns)
	p("| función | binario | × trivial | paquetes con init | tiempo de init | exec → acepta conexiones | exec → primer 200 | × trivial | CPU hasta el primer 200 | × trivial | primera petición |\n")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, c := range r.Cold {
		p("| %s | %s MB | %s | %d | %s | %s | **%s** | %s | %s | %s | %s |\n", c.Name, dec(float64(c.Size)/1e6, 1),
			dec(float64(c.Size)/float64(floor.Size), 2), c.Inits, dur(c.InitClock), dur(c.Listen), dur(c.First200),
			dec(ratio(c.First200, floor.First200), 2), dur(c.CPU), dec(ratio(c.CPU, floor.CPU), 2), c.Request)
	}
	p("\nLos init más lentos de cada binario:\n\n")
	for _, c := range r.Cold {
		var s []string
		for _, l := range c.Slowest {
			s = append(s, fmt.Sprintf("`%s` %s", l.Package, dur(l.Clock)))
		}
		p("- %s: %s\n", c.Name, strings.Join(s, ", "))
	}
	p("\n")
}

func (r *report) loadTable(w *bytes.Buffer, charts string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	if _, ok := r.floorLoad(); !ok {
		return
	}
	p("### Carga\n\n")
	p("Cada camino, %s s a una tasa fija (por debajo de lo que sirve un núcleo: la latencia es la del camino, no la de una cola) "+
		"y %s s lo más rápido que permiten unos pocos pedidos a la vez (vegeta), en %d turnos que se alternan con otros tantos "+
		"de la función trivial. La CPU por pedido es la de esos turnos; «pedidos por segundo de CPU» es lo que serviría un "+
		"núcleo a ese costo; «razón» es la CPU por pedido de la trivial en sus turnos sobre la del camino en los suyos: la "+
		"parte de la capacidad por núcleo de la trivial que alcanza el camino, medidas las dos en los mismos segundos, así que "+
		"el ruido de la máquina, que cambia de un segundo a otro, cae de los dos lados.\n\n",
		dec(r.Duration.Seconds(), 0), dec(r.Duration.Seconds(), 0), rounds)
	p("| camino | tasa fija | p50 | p99 | al máximo (a la vez) | p99 | CPU por pedido | pedidos por segundo de CPU | la trivial en sus turnos | razón con la trivial | no 2xx |\n")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, l := range r.Load {
		base := "—"
		if !l.Floor {
			base = dur(l.FloorMax.CPUPerReq())
		}
		p("| %s | %s/s | %s | %s | %s/s (%d) | %s | %s | %s | %s | **%s** | %s |\n", l.Name, dec(l.Fixed.Throughput, 0),
			dur(l.Fixed.P50), dur(l.Fixed.P99), dec(l.Max.Throughput, 0), l.Workers, dur(l.Max.P99), dur(l.CPUPerReq()),
			dec(l.PerCore(), 0), base, dec(l.Ratio(), 3), unsuccessful(l))
	}
	p("\n![Pedidos por segundo al máximo, frente a la función trivial](%s)\n\n", path.Join(charts, chartThroughput))
	p("![Pedidos por segundo de CPU (capacidad por núcleo), frente a la función trivial](%s)\n\n", path.Join(charts, chartPerCore))
	p("![p99 a tasa fija, frente a la función trivial](%s)\n\n", path.Join(charts, chartP99))
}

func (r *report) burstTable(w *bytes.Buffer, charts string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	if len(r.Bursts) == 0 {
		return
	}
	d := r.Deployed["login"]
	p("### Ráfagas de inicios de sesión\n\n")
	p("Un `login` recién arrancado recibe n inicios de sesión de personas a la vez (argon2id al costo por omisión); "+
		"quien recibe 503 vuelve a intentar cuando dice su `Retry-After`, como debe hacerlo un cliente, hasta recibir otra "+
		"respuesta. Su memoria residente se lee cada 10 ms (`VmRSS`) y su pico es `VmHWM`. Desplegado, `login` tiene %s, "+
		"%s vCPU y atiende %s pedidos a la vez (`deploy.sh`); aquí corre con %d núcleos, sin límite de memoria del "+
		"sistema", d.Memory, d.CPU, d.Concurrency, runtime.NumCPU())
	if len(r.LoginEnv) > 0 {
		p(", y con `%s` en su entorno (así sabe cuánta memoria tendría desplegado)", strings.Join(r.LoginEnv, " "))
	}
	p(".\n\n| a la vez | 200 | otras | 503 (reintentados) | duró | inicios por segundo | p99 de la espera | pico RSS |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, b := range r.Bursts {
		other := 0
		for code, n := range b.Codes {
			if code != http.StatusOK {
				other += n
			}
		}
		peak := "**" + mib(b.Peak) + "**"
		if b.Died != "" {
			peak = "murió: " + b.Died
		}
		p("| %d | %d | %d | %d | %s | %s | %s | %s |\n", b.Concurrent, b.Codes[http.StatusOK], other, b.Retried,
			dur(b.Took), dec(b.Throughput, 1), dur(b.P99), peak)
	}
	p("\n![Memoria residente de login durante las ráfagas](%s)\n\n", path.Join(charts, chartRSS))
}

// charts draws the report's charts, by file name.
func (r *report) charts() map[string][]byte {
	out := map[string][]byte{}
	var thr, perCore, p99 []bar
	for _, l := range r.Load {
		label := strings.ReplaceAll(l.Name, "`", "")
		thr = append(thr, bar{Label: label, Value: l.Max.Throughput, Floor: l.Floor})
		perCore = append(perCore, bar{Label: label, Value: l.PerCore(), Floor: l.Floor})
		p99 = append(p99, bar{Label: label, Value: float64(l.Fixed.P99) / float64(time.Millisecond), Floor: l.Floor})
	}
	if len(r.Load) > 0 {
		perSecond := func(v float64) string { return number(v) + "/s" }
		ms := func(v float64) string {
			switch {
			case v < 1:
				return number(v*1000) + " µs"
			case v < 1000:
				return number(v) + " ms"
			}
			return number(v/1000) + " s"
		}
		out[chartThroughput] = barChart("Pedidos por segundo al máximo (la raya: la función trivial)", thr, perSecond)
		out[chartPerCore] = barChart("Pedidos por segundo de CPU: capacidad por núcleo (la raya: la trivial)", perCore, perSecond)
		out[chartP99] = barChart("p99 a tasa fija (la raya: la función trivial)", p99, ms)
	}
	if len(r.Bursts) > 0 {
		var ss []series
		for _, b := range r.Bursts {
			s := series{Label: fmt.Sprintf("%d inicios de sesión a la vez", b.Concurrent)}
			for _, x := range b.Samples {
				s.Points = append(s.Points, [2]float64{x.At.Seconds(), float64(x.RSS) / (1 << 20)})
			}
			ss = append(ss, s)
		}
		levels := []level{{Label: "meta: 256 MiB", Y: 256}}
		if m := r.Deployed["login"].Bytes(); m > 0 {
			levels = append(levels, level{Label: "memoria desplegada: " + r.Deployed["login"].Memory, Y: float64(m) / (1 << 20)})
		}
		out[chartRSS] = lineChart("Memoria residente de login durante una ráfaga", "segundos desde el comienzo", "MiB", ss, levels)
	}
	return out
}

func unsuccessful(l loadResult) string {
	if l.Unsuccessful == 0 {
		return "0"
	}
	var codes []string
	for _, ph := range []phase{l.Fixed, l.Max} {
		for code, n := range ph.Codes {
			if len(code) != 3 || code[0] != '2' {
				codes = append(codes, fmt.Sprintf("%d × %s", n, code))
			}
		}
	}
	slices.Sort(codes)
	return strconv.FormatUint(l.Unsuccessful, 10) + " (" + strings.Join(codes, ", ") + ")"
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func yes(ok bool) string {
	if ok {
		return "sí"
	}
	return "**no**"
}

// dec writes v with prec decimals and a decimal comma.
func dec(v float64, prec int) string {
	return strings.Replace(strconv.FormatFloat(v, 'f', prec, 64), ".", ",", 1)
}

// mib writes a byte count in MiB.
func mib(b int64) string { return dec(float64(b)/(1<<20), 0) + " MiB" }

// dur writes a duration in the unit that suits it, with a decimal comma.
func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Millisecond:
		return dec(float64(d)/float64(time.Microsecond), 0) + " µs"
	case d < 10*time.Millisecond:
		return dec(float64(d)/float64(time.Millisecond), 2) + " ms"
	case d < 100*time.Millisecond:
		return dec(float64(d)/float64(time.Millisecond), 1) + " ms"
	case d < time.Second:
		return dec(float64(d)/float64(time.Millisecond), 0) + " ms"
	default:
		return dec(d.Seconds(), 2) + " s"
	}
}
