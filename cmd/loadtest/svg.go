package main

import (
	"bytes"
	"fmt"
	"math"
	"strings"
)

// The charts are SVG written here, not by a plotting library: three kinds
// of chart, a hundred-odd lines, no new dependency for the module, and an
// output that is the same byte for byte for the same figures, so that a
// diff of docs/benchmarks/ shows what changed.

// bar is one row of a bar chart.
type bar struct {
	Label string
	Value float64
	Floor bool // the trivial function: drawn apart, and as a line across
}

const (
	chartWidth = 800
	labelWidth = 330 // the rows' labels, left of the bars
	valueWidth = 110 // the values, right of the bars
	rowHeight  = 26
	chartTop   = 44
)

var esc = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace

// barChart draws bars on a logarithmic scale (the paths differ by orders
// of magnitude), with a dashed line at the floor's value and the value of
// each bar, as format writes it, at its end.
func barChart(title string, bars []bar, format func(float64) string) []byte {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, b := range bars {
		if b.Value > 0 {
			lo, hi = math.Min(lo, b.Value), math.Max(hi, b.Value)
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1, 10
	}
	// The axis starts a decade or so below the smallest bar, so that it
	// still shows.
	lo, hi = math.Floor(math.Log10(lo)-0.3), math.Ceil(math.Log10(hi))
	if hi == lo {
		hi++
	}
	plot := float64(chartWidth - labelWidth - valueWidth)
	x := func(v float64) float64 {
		if v <= 0 {
			return labelWidth
		}
		return labelWidth + (math.Log10(v)-lo)/(hi-lo)*plot
	}
	height := chartTop + rowHeight*len(bars) + 30
	var w bytes.Buffer
	svgOpen(&w, chartWidth, height, title)
	bottom := chartTop + rowHeight*len(bars)
	for d := lo; d <= hi; d++ {
		gx := x(math.Pow(10, d))
		fmt.Fprintf(&w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", gx, chartTop-4, gx, bottom)
		fmt.Fprintf(&w, `<text x="%.1f" y="%d" text-anchor="middle" fill="#666">%s</text>`+"\n", gx, bottom+16, esc(format(math.Pow(10, d))))
	}
	// The floor's line first, so that the bars and their values lie on it.
	for _, b := range bars {
		if b.Floor && b.Value > 0 {
			fmt.Fprintf(&w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#d62728" stroke-dasharray="4 3"/>`+"\n",
				x(b.Value), chartTop-4, x(b.Value), bottom)
		}
	}
	for i, b := range bars {
		y := chartTop + rowHeight*i
		color := "#4e79a7"
		if b.Floor {
			color = "#9c9c9c"
		}
		fmt.Fprintf(&w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelWidth-8, y+rowHeight/2+4, esc(b.Label))
		fmt.Fprintf(&w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelWidth, y+4, x(b.Value)-labelWidth, rowHeight-8, color)
		fmt.Fprintf(&w, `<text x="%.1f" y="%d" fill="#333">%s</text>`+"\n", x(b.Value)+6, y+rowHeight/2+4, esc(format(b.Value)))
	}
	w.WriteString("</svg>\n")
	return w.Bytes()
}

// series is one line of a line chart: points (x, y).
type series struct {
	Label  string
	Points [][2]float64
}

// level is a horizontal line across a line chart, such as a limit.
type level struct {
	Label string
	Y     float64
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2"}

// lineChart draws series on linear axes from 0, with levels as dashed
// lines and a legend.
func lineChart(title, xUnit, yUnit string, ss []series, levels []level) []byte {
	xmax, ymax := 0.0, 0.0
	for _, s := range ss {
		for _, p := range s.Points {
			xmax, ymax = math.Max(xmax, p[0]), math.Max(ymax, p[1])
		}
	}
	for _, l := range levels {
		ymax = math.Max(ymax, l.Y)
	}
	xstep, ystep := niceStep(xmax), niceStep(ymax)
	xmax, ymax = math.Ceil(xmax/xstep)*xstep, math.Ceil(ymax/ystep)*ystep
	const left, right, top, bottom, height = 70, 20, 44, 50, 380
	pw, ph := float64(chartWidth-left-right), float64(height-top-bottom)
	x := func(v float64) float64 { return left + v/xmax*pw }
	y := func(v float64) float64 { return top + ph - v/ymax*ph }
	var w bytes.Buffer
	svgOpen(&w, chartWidth, height, title)
	for v := 0.0; v <= xmax+xstep/2; v += xstep {
		fmt.Fprintf(&w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x(v), top, x(v), y(0))
		fmt.Fprintf(&w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#666">%s</text>`+"\n", x(v), y(0)+16, esc(number(v)))
	}
	for v := 0.0; v <= ymax+ystep/2; v += ystep {
		fmt.Fprintf(&w, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(v), x(xmax), y(v))
		fmt.Fprintf(&w, `<text x="%d" y="%.1f" text-anchor="end" fill="#666">%s</text>`+"\n", left-6, y(v)+4, esc(number(v)))
	}
	fmt.Fprintf(&w, `<text x="%.1f" y="%d" text-anchor="middle" fill="#666">%s</text>`+"\n", x(xmax/2), height-12, esc(xUnit))
	fmt.Fprintf(&w, `<text x="14" y="%.1f" text-anchor="middle" fill="#666" transform="rotate(-90 14 %.1f)">%s</text>`+"\n",
		y(ymax/2), y(ymax/2), esc(yUnit))
	for _, l := range levels {
		fmt.Fprintf(&w, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d62728" stroke-dasharray="4 3"/>`+"\n", left, y(l.Y), x(xmax), y(l.Y))
		fmt.Fprintf(&w, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#d62728">%s</text>`+"\n", x(xmax)-4, y(l.Y)-4, esc(l.Label))
	}
	for i, s := range ss {
		color := palette[i%len(palette)]
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		fmt.Fprintf(&w, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		ly := top + 6 + 18*i
		fmt.Fprintf(&w, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/>`+"\n", left+12, ly, color)
		fmt.Fprintf(&w, `<text x="%d" y="%d">%s</text>`+"\n", left+32, ly+6, esc(s.Label))
	}
	w.WriteString("</svg>\n")
	return w.Bytes()
}

func svgOpen(w *bytes.Buffer, width, height int, title string) {
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	fmt.Fprintf(w, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", 12, esc(title))
}

// niceStep is a step of 1, 2 or 5 times a power of ten that cuts 0..v
// into at most about eight parts.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	raw := v / 8
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// number writes v briefly, with a decimal comma: 0,012 · 3,4 · 56 · 1,2 k.
func number(v float64) string {
	var s string
	switch a := math.Abs(v); {
	case a >= 1e6:
		s = trim(fmt.Sprintf("%.1f", v/1e6)) + " M"
	case a >= 1e4:
		s = trim(fmt.Sprintf("%.0f", v/1e3)) + " k"
	case a >= 1e3:
		s = trim(fmt.Sprintf("%.1f", v/1e3)) + " k"
	case a >= 100 || a == 0:
		s = fmt.Sprintf("%.0f", v)
	case a >= 10:
		s = trim(fmt.Sprintf("%.1f", v))
	case a >= 1:
		s = trim(fmt.Sprintf("%.2f", v))
	default:
		s = trim(fmt.Sprintf("%.2g", v))
	}
	return strings.ReplaceAll(s, ".", ",")
}

// trim drops the trailing zeros of a decimal: 2.50 → 2.5, 3.0 → 3.
func trim(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
