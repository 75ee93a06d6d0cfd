package main

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

// TestBuckets checks the per-second figures of a set of samples worked out by hand:
// grouping by the second of the answer (a sample at exactly 3 s is in the fourth),
// an empty second kept, nearest-rank percentiles, and outcomes (an L1 HIT is a HIT, a
// failed request an error whatever its outcome).
func TestBuckets(t *testing.T) {
	ss := []sample{
		{at: 100 * ms, lat: 3 * ms, o: outHit},
		{at: 200 * ms, lat: 1 * ms, o: outHit},
		{at: 999 * ms, lat: 4 * ms, o: outMiss},
		{at: 500 * ms, lat: 2 * ms, o: outHitL1},
		{at: 2999 * ms, lat: 20 * ms, o: outBypass, err: true},
		{at: 2000 * ms, lat: 10 * ms, o: outBypass},
		{at: 2500 * ms, lat: 5 * ms, o: outStale},
		{at: 3000 * ms, lat: 7 * ms, o: outSet},
	}
	// Second 4: 20 HITs of 1 to 20 ms, where p50, p95 and p99 are three different
	// ranks (10, 19, 20), and p90 would be 18.
	for i := range 20 {
		ss = append(ss, sample{at: 4*time.Second + time.Duration(19-i)*ms, lat: time.Duration(i+1) * ms, o: outHit})
	}
	want := []bucket{
		{Start: 0, Requests: 4, PerSec: 4, P50: 2 * ms, P95: 4 * ms, P99: 4 * ms, Hit: 3, Miss: 1},
		{Start: time.Second},
		{Start: 2 * time.Second, Requests: 3, PerSec: 3, P50: 10 * ms, P95: 20 * ms, P99: 20 * ms, Bypass: 1, Stale: 1, Errors: 1},
		{Start: 3 * time.Second, Requests: 1, PerSec: 1, P50: 7 * ms, P95: 7 * ms, P99: 7 * ms, Other: 1},
		{Start: 4 * time.Second, Requests: 20, PerSec: 20, P50: 10 * ms, P95: 19 * ms, P99: 20 * ms, Hit: 20},
	}
	if got := buckets(ss, time.Second, 0); !reflect.DeepEqual(got, want) {
		t.Errorf("buckets:\n got %+v\nwant %+v", got, want)
	}
	half := buckets(ss, 500*time.Millisecond, 0)
	if len(half) != 9 || half[0].Requests != 2 || half[0].PerSec != 4 || half[1].Requests != 2 {
		t.Errorf("half-second buckets: %+v", half)
	}
	// A run that lasted 6.25 s: two more seconds, the last a quarter of one, its rate
	// over that quarter.
	long := buckets(ss, time.Second, 6250*ms)
	if len(long) != 7 || long[5].Requests != 0 || long[6].Start != 6*time.Second || long[4].PerSec != 20 {
		t.Errorf("a 6.25 s run: %+v", long)
	}
	long = buckets(append(ss, sample{at: 6200 * ms, lat: ms, o: outHit}), time.Second, 6250*ms)
	if long[6].Requests != 1 || long[6].PerSec != 4 {
		t.Errorf("the last quarter second: %+v", long[6])
	}
	if got := buckets(nil, time.Second, 0); got != nil {
		t.Errorf("no samples: %+v", got)
	}
}

// outageSamples is a synthetic outage run: 10 s of HITs at 1 ms, BYPASS at 5 ms from
// 3 s to 6 s, then MISSes and HITs again.
func outageSamples() []sample {
	var ss []sample
	for i := range 1000 {
		at := time.Duration(i) * 10 * ms
		s := sample{at: at, lat: ms, o: outHit}
		switch {
		case at >= 3*time.Second && at < 6*time.Second:
			s.o, s.lat = outBypass, 5*ms
		case at >= 6*time.Second && at < 6500*ms:
			s.o, s.lat = outMiss, 2*ms
		}
		ss = append(ss, s)
	}
	return ss
}

// xmlTexts parses doc as strict XML (the report's HTML is written well-formed, so a
// stray tag or bad escape shows) and returns its elements' text by tag, and the
// attributes of every element.
func xmlTexts(t *testing.T, doc []byte) (texts map[string][]string, attrs []xml.StartElement) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(doc)))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	texts = map[string][]string{}
	var stack []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tok.Name.Local)
			attrs = append(attrs, tok.Copy())
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				if s := strings.TrimSpace(string(tok)); s != "" {
					texts[stack[len(stack)-1]] = append(texts[stack[len(stack)-1]], s)
				}
			}
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed elements %v", stack)
	}
	return texts, attrs
}

// TestReportHTML writes the report of a synthetic outage run and reads it back: one
// well-formed page with nothing fetched from elsewhere, the parameters, the
// per-second table equal to the buckets, and a figure that draws the series.
func TestReportHTML(t *testing.T) {
	r := result{Name: "lambda", Concurrency: 4, samples: outageSamples(), Hits: 900, Bypass: 300, Misses: 50}
	f := flags{mode: "lambda", c: 4, d: 10 * time.Second, keys: "uniform", hitRatio: 1}
	info := reportInfo{Args: []string{"-c", "4", "-d", "10s", "-report", "r.html"}, Redis: "redis://127.0.0.1:6390/0", Started: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "r.html")
	if err := writeReport(path, f, info, []result{r}); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(page), "<!DOCTYPE html>") {
		t.Errorf("the page does not start with <!DOCTYPE html>: %.40q", page)
	}
	for _, bad := range []string{"<script", "<link", `src="http`, `href="http`, "url(http"} {
		if strings.Contains(string(page), bad) {
			t.Errorf("the page holds %q: it must not load anything", bad)
		}
	}
	texts, attrs := xmlTexts(t, page)
	if got := strings.Join(texts["code"], " "); got != "go run ./scripts/load -c 4 -d 10s -report r.html" {
		t.Errorf("command line %q", got)
	}
	for _, want := range []string{"lambda", "4", "10s", "uniform", "redis://127.0.0.1:6390/0"} {
		found := false
		for _, td := range texts["td"] {
			found = found || td == want
		}
		if !found {
			t.Errorf("no parameter cell %q", want)
		}
	}

	// The table: a header and one row per second, its HIT and BYPASS columns the
	// buckets'.
	bs := buckets(r.samples, time.Second, 0)
	cells := texts["td"]
	var rows [][]string
	for i := 0; i+11 <= len(cells); i++ {
		if strconv.Itoa(len(rows)) == cells[i] && len(rows) < len(bs) {
			rows = append(rows, cells[i:i+11])
			i += 10
		}
	}
	if len(rows) != 10 || len(bs) != 10 {
		t.Fatalf("%d table rows for %d buckets, want 10", len(rows), len(bs))
	}
	for i, b := range bs {
		if rows[i][5] != strconv.Itoa(b.Hit) || rows[i][7] != strconv.Itoa(b.Bypass) || rows[i][4] != strconv.FormatFloat(float64(b.P99)/1e6, 'f', 2, 64) {
			t.Errorf("row %d = %v, bucket %+v", i, rows[i], b)
		}
	}
	if bs[4].Bypass != 100 || bs[4].Hit != 0 || bs[1].Hit != 100 {
		t.Errorf("the outage is not where it was put: %+v", bs)
	}

	var svg []byte
	for _, a := range attrs {
		for _, at := range a.Attr {
			if a.Name.Local == "img" && at.Name.Local == "src" {
				b64, ok := strings.CutPrefix(at.Value, "data:image/svg+xml;base64,")
				if !ok {
					t.Fatalf("img src %.60q is not an SVG data URL", at.Value)
				}
				if svg, err = base64.StdEncoding.DecodeString(b64); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if svg == nil {
		t.Fatal("no figure")
	}
	svgTexts, _ := xmlTexts(t, svg)
	drawn := strings.Join(svgTexts["text"], "|")
	for _, want := range []string{"throughput", "latency (log scale)", "outcomes", "p50", "p95", "p99", "HIT", "MISS", "BYPASS", "STALE", "seconds into the run"} {
		if !strings.Contains(drawn, want) {
			t.Errorf("the figure has no text %q (it has %q)", want, drawn)
		}
	}
	if !strings.Contains(string(svg), "<path") {
		t.Error("the figure draws no line")
	}
}

// TestReportSVG: a name ending in .svg gets the figure alone.
func TestReportSVG(t *testing.T) {
	r := result{Name: "lambda", Concurrency: 1, samples: outageSamples()}
	path := filepath.Join(t.TempDir(), "outage.svg")
	if err := writeReport(path, flags{keys: "uniform", hitRatio: 1}, reportInfo{}, []result{r}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	texts, attrs := xmlTexts(t, b)
	if len(attrs) == 0 || attrs[0].Name.Local != "svg" || !strings.Contains(strings.Join(texts["text"], "|"), "BYPASS") {
		t.Errorf("not the figure: %.200q", b)
	}
}

// TestReportFlag runs the tool with -report against the shared Redis: the page's
// table counts every request of the run.
func TestReportFlag(t *testing.T) {
	sharedRedis(t)
	path := filepath.Join(t.TempDir(), "run.html")
	args := []string{"-mode", "lambda", "-c", "2", "-n", "300", "-hit-ratio", "0.8", "-event", "../../events/getproduct.v2.json", "-report", path}
	if err := run(args, io.Discard); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	texts, _ := xmlTexts(t, page)
	// Each row: second, req/s, p50, p95, p99, HIT, MISS, BYPASS, STALE, other, errors.
	cells := texts["td"]
	total, rows := 0, 0
	for i := 0; i+11 <= len(cells); i++ {
		if cells[i] == strconv.Itoa(rows) {
			for _, c := range cells[i+5 : i+11] {
				n, err := strconv.Atoi(c)
				if err != nil {
					t.Fatalf("row %d: %v", rows, cells[i:i+11])
				}
				total += n
			}
			rows++
			i += 10
		}
	}
	if rows == 0 || total != 300 {
		t.Errorf("%d rows counting %d requests, want 300", rows, total)
	}
}

// TestReportPNG: a name ending in .png gets the figure as a PNG image.
func TestReportPNG(t *testing.T) {
	r := result{Name: "lambda", Concurrency: 1, samples: outageSamples()}
	path := filepath.Join(t.TempDir(), "outage.png")
	if err := writeReport(path, flags{keys: "uniform", hitRatio: 1}, reportInfo{}, []result{r}); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 500 || b.Dy() < 500 {
		t.Errorf("a %v image", b)
	}
}
