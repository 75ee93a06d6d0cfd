package history

import (
	"slices"
	"sort"
	"time"
)

// Lags returns the visibility lag of each successful invalidation in ops, in the
// order they appear: how long after the invalidation of key k to version v returned
// a read of k could still start and return a version older than v. It is the latest
// start of such a read minus the invalidation's end, or 0 when every read that
// started after the end returned v or newer. Reads that overlap the invalidation do
// not count (they may see either side), and failed operations are ignored.
//
// A read older than several invalidations counts against each of them. The largest
// lag is above a bound exactly when CheckWithin(ops, bumps, bound) finds a stale read.
func Lags(ops []Op) []time.Duration {
	// For a key, the latest start of a read of version u or older (a running maximum
	// over versions): the reads stale for an invalidation to v are those older than
	// v, and the latest of them started at latest(v-1).
	type point struct{ version, start int64 }
	reads := map[string][]point{}
	for _, op := range ops {
		if op.Kind == Read && op.OK {
			reads[op.Key] = append(reads[op.Key], point{op.Version, op.Start})
		}
	}
	for _, ps := range reads {
		sort.Slice(ps, func(i, j int) bool { return ps[i].version < ps[j].version })
		for i := 1; i < len(ps); i++ {
			ps[i].start = max(ps[i].start, ps[i-1].start)
		}
	}
	var lags []time.Duration
	for _, op := range ops {
		if op.Kind != Invalidate || !op.OK {
			continue
		}
		ps := reads[op.Key]
		// The first read of version v or newer; the one before it is the latest
		// start among the older ones.
		i := sort.Search(len(ps), func(i int) bool { return ps[i].version >= op.Version })
		lag := time.Duration(0)
		if i > 0 && ps[i-1].start > op.End {
			lag = time.Duration(ps[i-1].start - op.End)
		}
		lags = append(lags, lag)
	}
	return lags
}

// LagSummary is the distribution of a history's visibility lags (see Lags).
type LagSummary struct {
	// N is how many invalidations were measured; Stale how many of them had a read
	// that started after they returned and still got an older version.
	N, Stale int
	// P50, P99 and Max are over all N (nearest rank), zero lags included.
	P50, P99, Max time.Duration
}

// SummarizeLags returns the distribution of lags.
func SummarizeLags(lags []time.Duration) LagSummary {
	s := LagSummary{N: len(lags)}
	if len(lags) == 0 {
		return s
	}
	sorted := slices.Clone(lags)
	slices.Sort(sorted)
	for _, l := range sorted {
		if l > 0 {
			s.Stale++
		}
	}
	s.P50, s.P99, s.Max = rank(sorted, 50), rank(sorted, 99), sorted[len(sorted)-1]
	return s
}

// rank is the p-th percentile of sorted by the nearest-rank method.
func rank(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100 // ceil(n·p/100), 1-based
	return sorted[max(i, 1)-1]
}
