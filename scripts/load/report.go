package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// sample is one timed request of a run, kept for the report (-report) only.
type sample struct {
	at  time.Duration // from the start of the timed run to the answer
	lat time.Duration
	o   outcome
	err bool
}

// bucket is the figures of the requests answered in one interval of a run.
type bucket struct {
	Start                                   time.Duration
	Requests                                int
	PerSec                                  float64
	P50, P95, P99                           time.Duration // 0 when no request was answered
	Hit, Miss, Bypass, Stale, Other, Errors int
}

// buckets groups samples by the interval of width their answer came in, from 0 to the
// end of the run (or the last answer, if later), empty intervals included: a second
// in which nothing was answered is a gap in the run that the report must show, not
// skip. The last interval may be cut short by the end: its rate is over the part the
// run lasted (an end of 0 is not known: every interval is whole). Percentiles are nearest-rank, as in the tool's totals.
func buckets(ss []sample, width, end time.Duration) []bucket {
	if len(ss) == 0 || width <= 0 {
		return nil
	}
	last := slices.MaxFunc(ss, func(a, b sample) int { return int(a.at - b.at) }).at
	if end <= 0 {
		end = (last/width + 1) * width // not known: whole intervals
	}
	end = max(end, last)
	// Enough intervals to hold the last answer and to reach the end.
	n := max(int(last/width)+1, int((end+width-1)/width))
	bs := make([]bucket, n)
	lats := make([][]time.Duration, len(bs))
	for i := range bs {
		bs[i].Start = time.Duration(i) * width
	}
	for _, s := range ss {
		i := int(max(s.at, 0) / width)
		b := &bs[i]
		b.Requests++
		lats[i] = append(lats[i], s.lat)
		switch {
		case s.err:
			b.Errors++
		case s.o == outHit || s.o == outHitL1:
			b.Hit++
		case s.o == outMiss:
			b.Miss++
		case s.o == outBypass:
			b.Bypass++
		case s.o == outStale:
			b.Stale++
		default:
			b.Other++
		}
	}
	for i := range bs {
		b := &bs[i]
		span := width
		if i == len(bs)-1 && end > b.Start && end-b.Start < width {
			span = end - b.Start
		}
		b.PerSec = float64(b.Requests) / span.Seconds()
		l := lats[i]
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		q := func(p float64) time.Duration { return l[max(int(math.Ceil(p*float64(len(l))))-1, 0)] }
		b.P50, b.P95, b.P99 = q(0.50), q(0.95), q(0.99)
	}
	return bs
}

// bucketWidth is the report's interval.
const bucketWidth = time.Second

// reportInfo is what the report says about the run besides its figures.
type reportInfo struct {
	Args    []string  // the command line's flags
	Redis   string    // the Redis the run used, without credentials
	Started time.Time // when the tool started
}

// figure draws r's per-second figures as three stacked plots sharing the time axis:
// throughput, latency percentiles (log scale) and outcomes, and returns the image in
// format "svg" or "png".
func figure(r result, bs []bucket, caption, format string) ([]byte, error) {
	xs := func(y func(b bucket) (float64, bool)) plotter.XYs {
		var out plotter.XYs
		for _, b := range bs {
			if v, ok := y(b); ok {
				// At the middle of its interval, which it is the figure of.
				out = append(out, plotter.XY{X: (b.Start + bucketWidth/2).Seconds(), Y: v})
			}
		}
		return out
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	type series struct {
		name string
		c    color.RGBA
		xy   plotter.XYs
	}
	panel := func(title, ylabel string, ss []series) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.Y.Label.Text = ylabel
		p.X.Label.Text = "seconds into the run"
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		for _, s := range ss {
			if len(s.xy) == 0 {
				continue
			}
			l, err := plotter.NewLine(s.xy)
			if err != nil {
				return nil, fmt.Errorf("report: %s %s: %w", title, s.name, err)
			}
			l.Color = s.c
			l.Width = vg.Points(1.2)
			p.Add(l)
			p.Legend.Add(s.name, l)
		}
		return p, nil
	}
	var (
		blue   = color.RGBA{31, 119, 180, 255}
		orange = color.RGBA{255, 127, 14, 255}
		green  = color.RGBA{44, 160, 44, 255}
		red    = color.RGBA{214, 39, 40, 255}
		purple = color.RGBA{148, 103, 189, 255}
		grey   = color.RGBA{127, 127, 127, 255}
	)
	count := func(f func(bucket) int) plotter.XYs {
		return xs(func(b bucket) (float64, bool) { return float64(f(b)), true })
	}
	thr, err := panel(caption+"\nthroughput", "requests/s", []series{
		{"answered", blue, xs(func(b bucket) (float64, bool) { return b.PerSec, true })},
	})
	if err != nil {
		return nil, err
	}
	lat, err := panel("latency (log scale)", "ms", []series{
		{"p50", green, xs(func(b bucket) (float64, bool) { return ms(b.P50), b.Requests > 0 })},
		{"p95", orange, xs(func(b bucket) (float64, bool) { return ms(b.P95), b.Requests > 0 })},
		{"p99", red, xs(func(b bucket) (float64, bool) { return ms(b.P99), b.Requests > 0 })},
	})
	if err != nil {
		return nil, err
	}
	lat.Y.Scale = plot.LogScale{}
	lat.Y.Tick.Marker = plot.TickerFunc(ticks125)
	outs := []series{
		{"HIT", green, count(func(b bucket) int { return b.Hit })},
		{"MISS", blue, count(func(b bucket) int { return b.Miss })},
		{"BYPASS", red, count(func(b bucket) int { return b.Bypass })},
		{"STALE", purple, count(func(b bucket) int { return b.Stale })},
	}
	if r.Errors > 0 {
		outs = append(outs, series{"errors", grey, count(func(b bucket) int { return b.Errors })})
	}
	if r.Other > 0 || r.Sets > 0 {
		outs = append(outs, series{"other", orange, count(func(b bucket) int { return b.Other })})
	}
	out, err := panel("outcomes", "requests/s", outs)
	if err != nil {
		return nil, err
	}
	for _, p := range []*plot.Plot{thr, lat, out} {
		p.X.Min, p.X.Max = 0, (bs[len(bs)-1].Start + bucketWidth).Seconds()
	}
	w, h := 9*vg.Inch, 10*vg.Inch
	var c vg.CanvasWriterTo = vgsvg.New(w, h)
	if format == "png" {
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110))}
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 3, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	plots := [][]*plot.Plot{{thr}, {lat}, {out}}
	canvases := plot.Align(plots, tiles, dc)
	for i, row := range plots {
		row[0].Draw(canvases[i][0])
	}
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("report: %s: %w", format, err)
	}
	return b.Bytes(), nil
}

// ticks125 labels a log axis at 1, 2 and 5 times the powers of ten between min and
// max, where plot.LogTicks labels only the powers, often one or none on a latency axis.
func ticks125(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= min && v <= max {
				ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	return ts
}

// caption is one line of the run's parameters, for the figure.
func caption(f flags, r result) string {
	s := fmt.Sprintf("%s, c=%d, keys %s, hit ratio target %g", r.Name, r.Concurrency, f.keys, f.hitRatio)
	if f.downFor > 0 {
		s += fmt.Sprintf(", source down %v from %v", f.downFor, f.downAfter)
	}
	return s
}

var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms": func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) },
	"us": func(v float64) string { return fmt.Sprintf("%.0f", v) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>load report {{.Info.Started.Format "2006-01-02 15:04:05"}}</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 70em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f4f4f4; }
td.l, th.l { text-align: left; }
img { max-width: 100%; }
</style>
</head>
<body>
<h1>Load run of {{.Info.Started.Format "2006-01-02 15:04:05 MST"}}</h1>
<table id="parameters">
<tr><th class="l">command line</th><td class="l"><code>go run ./scripts/load{{range .Info.Args}} {{.}}{{end}}</code></td></tr>
<tr><th class="l">mode</th><td class="l">{{.Flags.Mode}}</td></tr>
<tr><th class="l">concurrency</th><td class="l">{{.Flags.C}}</td></tr>
<tr><th class="l">bound</th><td class="l">{{if .Flags.N}}{{.Flags.N}} requests or {{end}}{{.Flags.D}}</td></tr>
<tr><th class="l">keys</th><td class="l">{{.Flags.Keys}}</td></tr>
<tr><th class="l">hit ratio target</th><td class="l">{{.Flags.HitRatio}}</td></tr>
{{if .Flags.DownFor}}<tr><th class="l">product source down</th><td class="l">{{.Flags.DownFor}} from {{.Flags.DownAfter}}</td></tr>
{{end}}<tr><th class="l">Redis</th><td class="l">{{.Info.Redis}}</td></tr>
<tr><th class="l">machine</th><td class="l">{{.GOOS}}/{{.GOARCH}}, {{.CPUs}} CPUs, {{.Go}}</td></tr>
</table>
{{range .Runs}}
<h2>{{.R.Name}}</h2>
<p class="summary">{{.R.Requests}} requests in {{printf "%.1f" .R.Seconds}} s = {{printf "%.0f" .R.OpsPerSec}} req/s;
latency p50 {{us .R.P50us}} µs, p95 {{us .R.P95us}} µs, p99 {{us .R.P99us}} µs, max {{us .R.MaxUs}} µs;
HIT {{.R.Hits}}, MISS {{.R.Misses}}, BYPASS {{.R.Bypass}}, STALE {{.R.Stale}}, other {{.R.Other}}, errors {{.R.Errors}}.</p>
<img alt="throughput, latency percentiles and outcomes per second of {{.R.Name}}" src="{{.Img}}"/>
<details>
<summary>per-second figures</summary>
<table class="buckets">
<tr><th>second</th><th>req/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>HIT</th><th>MISS</th><th>BYPASS</th><th>STALE</th><th>other</th><th>errors</th></tr>
{{range .Buckets}}<tr><td>{{.Start.Seconds}}</td><td>{{.PerSec}}</td><td>{{ms .P50}}</td><td>{{ms .P95}}</td><td>{{ms .P99}}</td><td>{{.Hit}}</td><td>{{.Miss}}</td><td>{{.Bypass}}</td><td>{{.Stale}}</td><td>{{.Other}}</td><td>{{.Errors}}</td></tr>
{{end}}</table>
</details>
{{end}}
</body>
</html>
`))

// writeReport writes the report of rs to path: an HTML page that holds everything it
// shows (the figures as SVG data URLs, the per-second figures as a table, the run's
// parameters), or, for a path ending in .svg or .png, the figure of the first run
// alone (the target's, in http mode with -baseline).
func writeReport(path string, f flags, info reportInfo, rs []result) error {
	var runs []reportRun
	var svgs [][]byte
	for _, r := range rs {
		end := time.Duration(r.Seconds * float64(time.Second))
		bs := buckets(r.samples, bucketWidth, end)
		if len(bs) == 0 {
			return fmt.Errorf("report: %s: no request was answered", r.Name)
		}
		svg, err := figure(r, plotted(bs, end), caption(f, r), "svg")
		if err != nil {
			return err
		}
		svgs = append(svgs, svg)
		runs = append(runs, reportRun{R: r, Buckets: bs,
			Img: template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(svg))})
	}
	if len(runs) == 0 {
		return fmt.Errorf("report: no run to report")
	}
	var b bytes.Buffer
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		b.Write(svgs[0])
	case ".png":
		end := time.Duration(rs[0].Seconds * float64(time.Second))
		img, err := figure(rs[0], plotted(runs[0].Buckets, end), caption(f, rs[0]), "png")
		if err != nil {
			return err
		}
		b.Write(img)
	default:
		if err := renderReport(&b, f, info, runs); err != nil {
			return err
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// plotted returns the buckets the figure draws: all but a last one that covers under a
// tenth of its interval (the moments after -d in which the workers stop), whose rate
// and percentiles rest on a handful of requests and would draw a cliff that is not
// in the run. The table keeps it.
func plotted(bs []bucket, end time.Duration) []bucket {
	if tail := end % bucketWidth; len(bs) > 1 && tail > 0 && tail < bucketWidth/10 && bs[len(bs)-1].Start == end-tail {
		return bs[:len(bs)-1]
	}
	return bs
}

// reportRun is one run (target or baseline) on the page.
type reportRun struct {
	R       result
	Buckets []bucket
	Img     template.URL // the figure, as a data URL
}

func renderReport(w io.Writer, f flags, info reportInfo, runs []reportRun) error {
	data := map[string]any{
		"Info": info,
		"Flags": map[string]any{
			"Mode": f.mode, "C": f.c, "N": f.n, "D": f.d, "Keys": f.keys, "HitRatio": f.hitRatio,
			"DownFor": f.downFor, "DownAfter": f.downAfter,
		},
		"GOOS": runtime.GOOS, "GOARCH": runtime.GOARCH, "CPUs": runtime.NumCPU(), "Go": runtime.Version(),
		"Runs": runs,
	}
	if err := reportPage.Execute(w, data); err != nil {
		return fmt.Errorf("report: html: %w", err)
	}
	return nil
}
