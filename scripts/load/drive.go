package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/redis/go-redis/v9"
)

// outcome is what one request got.
type outcome int

const (
	outHit outcome = iota
	outMiss
	outBypass
	outStale
	outOther // answered, without an X-Cache
	outSet   // redis mode: a SET
	outHitL1 // a HIT served by the in-process tier (X-Cache-Tier: L1)
)

// result is one run's figures.
type result struct {
	Name        string `json:"name"`
	Concurrency int    `json:"concurrency"`
	// Rate is the offered load of an open-loop run (-rate), in requests/s; 0 for a
	// closed loop (each worker sends when its last answer came).
	Rate      float64 `json:"rate,omitempty"`
	Requests  int64   `json:"requests"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"opsPerSec"`
	P50us     float64 `json:"p50Us"`
	P95us     float64 `json:"p95Us"`
	P99us     float64 `json:"p99Us"`
	MaxUs     float64 `json:"maxUs"`
	Hits      int64   `json:"hits"`
	L1Hits    int64   `json:"l1Hits"` // of Hits, those the in-process tier served
	Misses    int64   `json:"misses"`
	Bypass    int64   `json:"bypass"`
	Stale     int64   `json:"stale"`
	// HitP50us and HitP99us are the percentiles of the HIT answers alone.
	HitP50us float64 `json:"hitP50Us"`
	HitP99us float64 `json:"hitP99Us"`
	// Cache is the sum of the environments' cache counters (lambda mode), Source
	// what the tool's product source saw (lambda mode).
	Cache      *cache.Stats   `json:"cache,omitempty"`
	Source     *sourceFigures `json:"source,omitempty"`
	Other      int64          `json:"other"`
	Sets       int64          `json:"sets,omitempty"`
	Errors     int64          `json:"errors"`
	FirstError string         `json:"firstError,omitempty"`

	lat, hitLat []time.Duration
	samples     []sample // with -report only
}

// sourceFigures are the lambda mode's product source reads during the timed run.
type sourceFigures struct {
	Reads    int64 `json:"reads"`
	Failures int64 `json:"failures"`
	// FailedIDs is how many products had failed reads; MostFailuresPerID the most
	// failed reads of any one (the refresh backoff bounds it).
	FailedIDs         int   `json:"failedIds"`
	MostFailuresPerID int64 `json:"mostFailuresPerId"`
}

// drive warms the keys, then runs f.c workers calling do until -n or -d. started, if
// not nil, is called when the timed run starts, after the warm-up.
func drive(ctx context.Context, f flags, name string, ids []string, ctl redis.UniversalClient, fullKey func(string) string, do func(context.Context, int, string) (outcome, error), started func()) (result, error) {
	// Warm every key through the path itself (a miss fills it); -keys hot asks
	// for one.
	if f.keys == "hot" {
		ids = ids[:1]
	}
	// By f.c workers at once, each on its own environment: a source with latency
	// would otherwise make the warm-up last len(ids) times it.
	var warm sync.WaitGroup
	var warmErr atomic.Value
	next := atomic.Int64{}
	for w := range min(f.c, len(ids)) {
		warm.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(ids)); i = next.Add(1) - 1 {
				if _, err := do(ctx, w, ids[i]); err != nil {
					warmErr.CompareAndSwap(nil, fmt.Errorf("%s: warming %s: %w", name, ids[i], err))
					return
				}
			}
		})
	}
	warm.Wait()
	if err, ok := warmErr.Load().(error); ok {
		return result{}, err
	}
	if started != nil {
		started()
	}
	var (
		issued, done                       atomic.Int64
		hits, misses, bypass, stale, other atomic.Int64
		sets, errs, l1Hits                 atomic.Int64
		firstErr                           atomic.Value
		mu                                 sync.Mutex
		lat, hitLat                        []time.Duration
		samples                            []sample
	)
	ctx, cancel := context.WithTimeout(ctx, f.d)
	defer cancel()
	start := time.Now()
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				el := time.Since(start).Seconds()
				fmt.Fprintf(os.Stderr, "\r%-10s %5.0fs %9d req %9.0f req/s  hit %d miss %d bypass %d stale %d err %d   ",
					name, el, done.Load(), float64(done.Load())/el, hits.Load(), misses.Load(), bypass.Load(), stale.Load(), errs.Load())
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range f.c {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var zipf *mrand.Zipf
			if f.keys == "zipf" {
				zipf = mrand.NewZipf(rng, f.zipfS, 1, uint64(len(ids)-1))
			}
			mine, mineHit := make([]time.Duration, 0, 4096), make([]time.Duration, 0, 4096)
			var mineS []sample
			// With -rate, worker w's k-th request is due at start + (w/c + k)·c/rate,
			// and its latency counts from then: a request the server held up delays
			// the next ones, and they count that wait (no coordinated omission).
			var every time.Duration
			due := start
			if f.rate > 0 {
				every = time.Duration(float64(f.c) / f.rate * float64(time.Second))
				due = start.Add(every * time.Duration(w) / time.Duration(f.c))
			}
			for ctx.Err() == nil {
				if f.n > 0 && issued.Add(1) > f.n {
					break
				}
				if every > 0 {
					if wait := time.Until(due); wait > 0 {
						select {
						case <-ctx.Done():
						case <-time.After(wait):
						}
						if ctx.Err() != nil {
							break
						}
					}
				}
				var id string
				switch {
				case f.keys == "hot":
					id = ids[0]
				case zipf != nil:
					id = ids[zipf.Uint64()]
				default:
					id = ids[rng.IntN(len(ids))]
				}
				if f.hitRatio < 1 && rng.Float64() >= f.hitRatio {
					_ = ctl.Del(context.Background(), fullKey(id)).Err()
				}
				t0 := time.Now()
				if every > 0 {
					t0 = due
					due = due.Add(every)
				}
				o, err := do(ctx, w, id)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						break // the run ended during the request
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					switch o {
					case outHit:
						hits.Add(1)
						mineHit = append(mineHit, d)
					case outHitL1:
						hits.Add(1)
						l1Hits.Add(1)
						mineHit = append(mineHit, d)
					case outStale:
						stale.Add(1)
					case outMiss:
						misses.Add(1)
					case outBypass:
						bypass.Add(1)
					case outSet:
						sets.Add(1)
					default:
						other.Add(1)
					}
				}
				done.Add(1)
				mine = append(mine, d)
				if f.report != "" {
					mineS = append(mineS, sample{at: time.Since(start), lat: d, o: o, err: err != nil})
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			samples = append(samples, mineS...)
			hitLat = append(hitLat, mineHit...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()
	<-progressDone
	fmt.Fprintln(os.Stderr)
	r := result{
		Name: name, Concurrency: f.c, Rate: f.rate, Requests: int64(len(lat)), Seconds: elapsed.Seconds(),
		Hits: hits.Load(), L1Hits: l1Hits.Load(), Misses: misses.Load(), Bypass: bypass.Load(), Stale: stale.Load(), Other: other.Load(), Sets: sets.Load(), Errors: errs.Load(),
		lat: lat, hitLat: hitLat, samples: samples,
	}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstError = s
	}
	r.finish()
	return r, nil
}

func (r *result) finish() {
	slices.Sort(r.lat)
	slices.Sort(r.hitLat)
	r.Requests = int64(len(r.lat))
	if r.Seconds > 0 {
		r.OpsPerSec = float64(r.Requests) / r.Seconds
	}
	q := func(lat []time.Duration, p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		return float64(lat[max(i, 0)].Nanoseconds()) / 1e3
	}
	r.P50us, r.P95us, r.P99us, r.MaxUs = q(r.lat, 0.50), q(r.lat, 0.95), q(r.lat, 0.99), q(r.lat, 1)
	r.HitP50us, r.HitP99us = q(r.hitLat, 0.50), q(r.hitLat, 0.99)
}

// merge adds up the rounds of one target.
func merge(rs []result) result {
	if len(rs) == 1 {
		return rs[0]
	}
	m := result{Name: rs[0].Name, Concurrency: rs[0].Concurrency, Rate: rs[0].Rate}
	for _, r := range rs {
		// The rounds follow each other on the report's time axis.
		off := time.Duration(m.Seconds * float64(time.Second))
		for _, s := range r.samples {
			s.at += off
			m.samples = append(m.samples, s)
		}
		m.Seconds += r.Seconds
		m.Hits += r.Hits
		m.L1Hits += r.L1Hits
		m.Misses += r.Misses
		m.Bypass += r.Bypass
		m.Stale += r.Stale
		m.Other += r.Other
		m.Sets += r.Sets
		m.Errors += r.Errors
		if m.FirstError == "" {
			m.FirstError = r.FirstError
		}
		m.lat = append(m.lat, r.lat...)
		m.hitLat = append(m.hitLat, r.hitLat...)
	}
	m.finish()
	return m
}

func report(w io.Writer, f flags, rs []result) {
	if f.jsonOut {
		out := map[string]any{"mode": f.mode, "keys": f.keys, "hitRatioTarget": f.hitRatio, "results": rs}
		if len(rs) == 2 && rs[1].OpsPerSec > 0 {
			out["targetVsBaseline"] = rs[0].OpsPerSec / rs[1].OpsPerSec
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return
	}
	for _, r := range rs {
		fmt.Fprintf(w, "%s: c=%d %d requests in %.1fs = %.0f req/s\n", r.Name, r.Concurrency, r.Requests, r.Seconds, r.OpsPerSec)
		if r.Rate > 0 {
			fmt.Fprintf(w, "  open loop at %.0f req/s offered: latency counts from when each request was due\n", r.Rate)
			if r.OpsPerSec < 0.95*r.Rate {
				fmt.Fprintf(w, "  the server (or -c) did not keep up: %.0f of %.0f req/s answered\n", r.OpsPerSec, r.Rate)
			}
		}
		fmt.Fprintf(w, "  latency p50 %.0fµs p95 %.0fµs p99 %.0fµs max %.0fµs (HIT alone: p50 %.0fµs p99 %.0fµs)\n",
			r.P50us, r.P95us, r.P99us, r.MaxUs, r.HitP50us, r.HitP99us)
		fmt.Fprintf(w, "  hit %d (L1 %d, L2 %d) miss %d bypass %d stale %d other %d sets %d errors %d", r.Hits, r.L1Hits, r.Hits-r.L1Hits, r.Misses, r.Bypass, r.Stale, r.Other, r.Sets, r.Errors)
		if r.FirstError != "" {
			fmt.Fprintf(w, " (first: %s)", r.FirstError)
		}
		fmt.Fprintln(w)
		if s := r.Cache; s != nil {
			fmt.Fprintf(w, "  cache: fetches %d (refreshes %d, early %d, failed %d), lease waits %d, stale served %d\n",
				s.Fetches, s.Refreshes, s.EarlyRefreshes, s.RefreshFailures, s.LeaseWaits, s.Stale)
		}
		if s := r.Source; s != nil {
			fmt.Fprintf(w, "  source: %d reads during the run, %d failed (%d products, at most %d failed reads each)\n",
				s.Reads, s.Failures, s.FailedIDs, s.MostFailuresPerID)
		}
	}
	if len(rs) == 2 && rs[1].OpsPerSec > 0 {
		fmt.Fprintf(w, "target/baseline throughput: %.2f\n", rs[0].OpsPerSec/rs[1].OpsPerSec)
	}
}
