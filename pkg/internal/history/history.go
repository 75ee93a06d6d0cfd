// Package history checks what concurrent cache operations saw against the cache's
// freshness promise: a read that starts after an invalidation of version v has
// returned never returns a version older than v, and no read returns a version the
// source had not yet held when the read ended.
//
// A run records every operation with its start and end on one clock (Now), and the
// versioned Source records when each version came to be; Check then finds every
// violation. The check is exact for the promise and nothing more: a read that
// overlaps an invalidation may see either side.
package history

import (
	"fmt"
	"sort"
	"time"
)

// Kind is what an operation did.
type Kind uint8

const (
	// Read is a GetOrSet of a key.
	Read Kind = iota + 1
	// Invalidate removes a key from the cache (Del, or Clear of a pattern matching it)
	// after the source moved it to Version.
	Invalidate
)

// Op is one recorded operation.
type Op struct {
	Kind Kind   `json:"kind"`
	Key  string `json:"key"`
	// Start and End are Now() just before the call and just after it returned.
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	// Version is what a read returned, or the version an invalidation follows.
	Version int64 `json:"version"`
	// OK: the read returned a value, or the invalidation returned no error. Other
	// operations are kept for counts and are not checked.
	OK bool `json:"ok"`
	// Outcome is the read's X-Cache outcome, for reports.
	Outcome string `json:"outcome,omitempty"`
	// Proc names the process and worker, for reports.
	Proc string `json:"proc,omitempty"`
}

// Bump is a version coming to be at the source: from At on, Key is at Version.
type Bump struct {
	Key     string
	Version int64
	At      int64
}

// Violation is a read that broke the promise.
type Violation struct {
	Read Op
	// Why says which rule it broke and against what.
	Why string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: read of %s by %s [%d, %d] returned v%d (%s)",
		v.Why, v.Read.Key, v.Read.Proc, v.Read.Start, v.Read.End, v.Read.Version, v.Read.Outcome)
}

// mark is a point in time and the highest version seen by then.
type mark struct {
	at  int64
	max int64
	op  Op
}

// timeline is, for one key, the running maximum of versions over time.
type timeline []mark

func newTimeline(points []mark) timeline {
	sort.Slice(points, func(i, j int) bool { return points[i].at < points[j].at })
	var best mark
	for i := range points {
		if points[i].max > best.max {
			best = points[i]
		}
		points[i].max, points[i].op = best.max, best.op
	}
	return points
}

// before returns the highest version among the points strictly before t.
func (tl timeline) before(t int64) (mark, bool) {
	i := sort.Search(len(tl), func(i int) bool { return tl[i].at >= t })
	if i == 0 {
		return mark{}, false
	}
	return tl[i-1], true
}

// Check returns every violation in ops, given the source's bumps (each key's initial
// version included).
func Check(ops []Op, bumps []Bump) []Violation { return CheckWithin(ops, bumps, 0) }

// CheckWithin is Check for a cache with a stated staleness bound (an in-process tier):
// a read that starts more than bound after an invalidation of version v has returned
// never returns a version older than v.
func CheckWithin(ops []Op, bumps []Bump, bound time.Duration) []Violation {
	invs := map[string][]mark{}
	for _, op := range ops {
		if op.Kind == Invalidate && op.OK {
			invs[op.Key] = append(invs[op.Key], mark{at: op.End, max: op.Version, op: op})
		}
	}
	held := map[string][]mark{}
	for _, b := range bumps {
		held[b.Key] = append(held[b.Key], mark{at: b.At, max: b.Version})
	}
	invTL, heldTL := map[string]timeline{}, map[string]timeline{}
	for k, m := range invs {
		invTL[k] = newTimeline(m)
	}
	for k, m := range held {
		heldTL[k] = newTimeline(m)
	}
	var out []Violation
	for _, r := range ops {
		if r.Kind != Read || !r.OK {
			continue
		}
		if m, ok := invTL[r.Key].before(r.Start - int64(bound)); ok && r.Version < m.max {
			out = append(out, Violation{Read: r, Why: fmt.Sprintf(
				"stale: v%d was invalidated by %s, returned at %d, %v before the read began (bound %v)",
				m.max, m.op.Proc, m.op.End, time.Duration(r.Start-m.op.End), bound)})
			continue
		}
		// A version the source reached only after the read ended (or never).
		if m, ok := heldTL[r.Key].before(r.End); !ok || r.Version > m.max || r.Version < 1 {
			out = append(out, Violation{Read: r, Why: fmt.Sprintf(
				"phantom: the source had held at most v%d when the read ended", m.max)})
		}
	}
	return out
}

// Counts sums a history for reports.
type Counts struct {
	Reads, FailedReads, Invalidations, FailedInvalidations int
	Outcomes                                               map[string]int
}

// Count sums ops.
func Count(ops []Op) Counts {
	c := Counts{Outcomes: map[string]int{}}
	for _, op := range ops {
		switch {
		case op.Kind == Read && op.OK:
			c.Reads++
			c.Outcomes[op.Outcome]++
		case op.Kind == Read:
			c.FailedReads++
		case op.OK:
			c.Invalidations++
		default:
			c.FailedInvalidations++
		}
	}
	return c
}
