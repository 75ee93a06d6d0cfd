// Package paired measures a code path against a baseline inside one benchmark loop.
//
// A loopback Redis round trip drifts by tens of microseconds between benchmarks on a
// shared machine, so comparing two benchmarks' ns/op cannot show a wrapper's few
// microseconds. Run alternates the baseline and the path in the same loop, flipping
// the order every iteration, so the drift falls on both alike.
package paired

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

// Run benchmarks wrapped against raw, one of each per iteration, and reports:
//
//	p50-ratio     the median of the per-iteration ratios wrapped/raw (robust to GC and
//	              scheduler spikes): the figure the targets are stated in
//	ratio         total wrapped time / total raw time
//	p50-extra-ns  the median of wrapped minus raw time per iteration: the path's cost
//	raw-ns, wrapped-ns  the mean of each half
//
// ns/op and allocs/op are for the pair. An error from either side fails the benchmark.
func Run(b *testing.B, raw, wrapped func() error) {
	b.Helper()
	ratios := make([]float64, 0, 1024)
	extras := make([]time.Duration, 0, 1024)
	var rawTotal, wrappedTotal time.Duration
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		first, second := raw, wrapped
		if i%2 == 1 {
			first, second = wrapped, raw
		}
		t0 := time.Now()
		if err := first(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := second(); err != nil {
			b.Fatal(err)
		}
		d1, d2 := t1.Sub(t0), time.Since(t1)
		dRaw, dWrapped := d1, d2
		if i%2 == 1 {
			dRaw, dWrapped = d2, d1
		}
		i++
		rawTotal += dRaw
		wrappedTotal += dWrapped
		ratios = append(ratios, float64(dWrapped)/float64(max(dRaw, 1)))
		extras = append(extras, dWrapped-dRaw)
	}
	b.StopTimer()
	if i == 0 {
		return
	}
	slices.Sort(ratios)
	slices.Sort(extras)
	b.ReportMetric(ratios[len(ratios)/2], "p50-ratio")
	b.ReportMetric(float64(wrappedTotal)/float64(max(rawTotal, 1)), "ratio")
	b.ReportMetric(float64(extras[len(extras)/2].Nanoseconds()), "p50-extra-ns")
	b.ReportMetric(float64(rawTotal.Nanoseconds())/float64(i), "raw-ns")
	b.ReportMetric(float64(wrappedTotal.Nanoseconds())/float64(i), "wrapped-ns")
}
