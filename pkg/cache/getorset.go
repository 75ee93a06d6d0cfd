package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/acmestore/storeapi/pkg/fault"
)

// Outcome says how a GetOrSet call was served.
type Outcome uint8

const (
	// Hit: the value came from Redis (or from another caller's fill that stored it).
	Hit Outcome = iota + 1
	// Miss: Redis had no usable value; the value was fetched from the source, by this
	// call or by the in-process fill it joined. Result.Stored says whether it was kept.
	Miss
	// Bypass: Redis failed or the breaker was open; the value came straight from the
	// source and was not stored.
	Bypass
	// Stale: the value is a stored entry past its TTL, served inside its
	// stale-while-revalidate window (a refresh runs or is running) or its stale-if-error
	// window (the refresh failed: Result.SourceErr says why).
	Stale
)

// String returns "HIT", "MISS", "BYPASS" or "STALE", as in the X-Cache header.
func (o Outcome) String() string {
	switch o {
	case Hit:
		return "HIT"
	case Miss:
		return "MISS"
	case Bypass:
		return "BYPASS"
	case Stale:
		return "STALE"
	}
	return "NONE"
}

// Result describes one GetOrSet call, for the caller's log line and metrics.
type Result struct {
	Outcome Outcome
	// Redis is the time spent waiting on Redis, lease polls included.
	Redis time.Duration
	// Fetch is the time spent in the fetch function (0 when it did not run for this
	// call).
	Fetch time.Duration
	// Waited is the time spent waiting for another caller's fill.
	Waited time.Duration
	// Shared is set when another call in this process did the work (Dedupe).
	Shared bool
	// Stored is set when the fetched value (or a remembered "not found") was written to
	// Redis by the fill that served this call.
	Stored bool
	// FenceLost is set when the fill's lease was gone by the time it would store: an
	// invalidation (or the lease's expiry) came first, so nothing was stored.
	FenceLost bool
	// Cause classifies the Redis failure behind a Bypass.
	Cause fault.Cause
	// Err is the Redis error behind a Bypass, absorbed so the reader was served.
	Err error
	// StoreErr is set when the value was fetched but could not be stored (for example
	// Redis is out of memory). The value was still returned.
	StoreErr error
	// Corrupt is set when a stored entry failed the wholeness check and was replaced.
	Corrupt bool
	// Refreshed is set when this call fetched to refresh an entry it found stale or
	// due for early refresh (it held the entry's refresh lease); Early says it was
	// still fresh. RefreshStarted is set when it started that refresh in the
	// background instead (BackgroundRefresh).
	Refreshed, Early, RefreshStarted bool
	// StaleFor is how long past its TTL a Stale value was.
	StaleFor time.Duration
	// SourceErr is the fetch error a Stale (or still fresh) value was served over:
	// this call's refresh failed, or ErrRefreshBackoff when an earlier one had failed
	// and the source was not asked again yet.
	SourceErr error
	// Tier says which tier answered the call's last read of the key (with Outcome Hit:
	// which tier served the value); 0 when the Service has no in-process tier on.
	Tier Tier
}

// ErrRefreshBackoff is Result.SourceErr when a stale entry was served without asking
// the source, because its last refresh failed and its backoff runs.
var ErrRefreshBackoff = errors.New("cache: refresh backing off after a failed refresh")

// Stats are running counters of a Service since it was created.
type Stats struct {
	// Hits, Misses and Bypasses count GetOrSet calls by Outcome, shared ones included.
	Hits, Misses, Bypasses int64
	// Errors counts failed Redis commands (faults and error replies).
	Errors int64
	// Fetches counts fetch calls; StoreFailures fetched values that were not stored
	// because Redis failed.
	Fetches, StoreFailures int64
	// FenceLost counts fills that did not store because their lease was gone: an
	// invalidation won, as it must.
	FenceLost int64
	// LeaseWaits counts calls that waited for another caller's fill; LeaseTimeouts
	// those that gave up waiting and fetched themselves.
	LeaseWaits, LeaseTimeouts int64
	// Shared counts calls served by another call's fill in this process.
	Shared int64
	// Corrupt counts stored entries that failed the wholeness check.
	Corrupt int64
	// Skipped counts operations not sent because the breaker was open; BreakerOpens
	// how often it opened.
	Skipped, BreakerOpens int64
	// Stale counts GetOrSet calls served a stale entry (Outcome Stale).
	Stale int64
	// Refreshes counts refresh fetches (in the background or not), EarlyRefreshes
	// those of entries still fresh, RefreshFailures those that failed.
	Refreshes, EarlyRefreshes, RefreshFailures int64
	// L1Hits counts the Hits served from the in-process tier.
	L1Hits int64
}

type counters struct {
	hits, misses, bypasses, errors, fetches, storeFailures atomic.Int64
	fenceLost, leaseWaits, leaseTimeouts, shared, corrupt  atomic.Int64
	skipped, breakerOpens, stale, l1Hits                   atomic.Int64
	refreshes, earlyRefreshes, refreshFailures             atomic.Int64
}

// Stats returns the Service's counters.
func (s *Service) Stats() Stats {
	c := &s.stats
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Bypasses: c.bypasses.Load(),
		Errors: c.errors.Load(), Fetches: c.fetches.Load(), StoreFailures: c.storeFailures.Load(),
		FenceLost: c.fenceLost.Load(), LeaseWaits: c.leaseWaits.Load(), LeaseTimeouts: c.leaseTimeouts.Load(),
		Shared: c.shared.Load(), Corrupt: c.corrupt.Load(),
		Skipped: c.skipped.Load(), BreakerOpens: c.breakerOpens.Load(), L1Hits: c.l1Hits.Load(),
		Stale: c.stale.Load(), Refreshes: c.refreshes.Load(), EarlyRefreshes: c.earlyRefreshes.Load(),
		RefreshFailures: c.refreshFailures.Load(),
	}
}

// Add returns the sum of s and o, for figures over several Services (one per
// environment or process).
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Hits: s.Hits + o.Hits, Misses: s.Misses + o.Misses, Bypasses: s.Bypasses + o.Bypasses,
		Errors: s.Errors + o.Errors, Fetches: s.Fetches + o.Fetches, StoreFailures: s.StoreFailures + o.StoreFailures,
		FenceLost: s.FenceLost + o.FenceLost, LeaseWaits: s.LeaseWaits + o.LeaseWaits,
		LeaseTimeouts: s.LeaseTimeouts + o.LeaseTimeouts, Shared: s.Shared + o.Shared, Corrupt: s.Corrupt + o.Corrupt,
		Skipped: s.Skipped + o.Skipped, BreakerOpens: s.BreakerOpens + o.BreakerOpens, L1Hits: s.L1Hits + o.L1Hits,
		Stale: s.Stale + o.Stale, Refreshes: s.Refreshes + o.Refreshes, EarlyRefreshes: s.EarlyRefreshes + o.EarlyRefreshes,
		RefreshFailures: s.RefreshFailures + o.RefreshFailures,
	}
}

// count adds a finished call to the outcome counters.
func (s *Service) count(r *Result) {
	switch r.Outcome {
	case Hit:
		s.stats.hits.Add(1)
		if r.Tier == TierL1 {
			s.stats.l1Hits.Add(1)
		}
	case Miss:
		s.stats.misses.Add(1)
	case Bypass:
		s.stats.bypasses.Add(1)
	case Stale:
		s.stats.stale.Add(1)
	}
	if r.Shared {
		s.stats.shared.Add(1)
	}
}

// FetchFunc loads a value from the source. Return ErrNotFound (possibly wrapped) for a
// value that does not exist, to have it remembered for NegativeTTL.
type FetchFunc func(ctx context.Context) (string, error)

// GetOrSet returns the value at key or, when there is none, calls fetch, stores its value
// for ttl (shortened by up to TTLJitter; 0 keeps it) and returns it.
//
// Concurrency: the first caller to miss takes the key's fill lease, a marker it writes
// into the key itself (SET NX PX LeaseTTL), and fetches; other callers, in any process,
// see the marker and poll the key (every 5 ms growing to 100 ms) for up to LeaseWait.
// If the holder dies, its lease expires after LeaseTTL and the next poller takes it
// over. A caller that waited LeaseWait in vain fetches and returns its value without
// storing it. So fetch runs once per key per fill while holders live. With Dedupe,
// concurrent misses in this process also share one fill: it runs detached from the
// callers (bounded by FillTimeout), so a caller whose context ends stops waiting
// without failing the others. Callers that joined before its fetch began get what the
// fetch returned (its value or its error, or its panic, re-raised); a caller arriving
// later waits for it to end and then reads Redis again.
//
// Freshness: the holder stores only if its lease is still in the key, atomically (a
// fenced fill). Del and Clear remove the key, lease and all, so a fill that fetched
// before an invalidation stores nothing (Result.FenceLost) and returns its value to its
// own callers only, who asked before the invalidation returned. A read that starts
// after an invalidation has returned therefore never gets a value fetched before it
// (given a source that returns its latest version), from Redis or from a shared fill.
//
// Failures: a Redis error or an open breaker never fails the call: the value is
// fetched and returned with Outcome Bypass and the error in Result.Err. A value that
// was fetched but could not be stored is returned, with Result.StoreErr set. An error
// from fetch is returned and never stored, except ErrNotFound, which is remembered for
// NegativeTTL when that is set (later calls return ErrNotFound as a Hit). The lease is
// released on every way out: a fetch error, a panic, a caller that left.
//
// Staleness: a value is stored as an entry, fresh for ttl and kept by Redis for
// StaleWhileRevalidate and StaleIfError after it. Inside the first window a reader gets
// the entry at once (Outcome Stale) and one refresh runs per entry across processes,
// under a refresh lease kept in the entry itself: after answering on a goroutine with
// BackgroundRefresh (fetch then runs after GetOrSet returned, on ctx without its
// cancellation, bounded by FillTimeout), else by the caller that takes the lease,
// before it answers. Inside the second a reader refreshes (or waits for the refresh)
// before answering, and gets the entry (Stale, Result.SourceErr set) only when the
// fetch fails. A failed refresh leaves the entry and starts a backoff (RefreshBackoff,
// doubling), during which stale readers are served without asking the source. With
// EarlyRefresh, a fresh entry near its end may be refreshed early (XFetch). A refresh
// stores only over the entry it read: an invalidation that removed it, or a newer
// fill, wins.
func (s *Service) GetOrSet(ctx context.Context, key string, ttl time.Duration, fetch FetchFunc) (string, Result, error) {
	return s.getOrSet(ctx, key, ttl, nil, func(bool) FetchFunc { return fetch })
}

// GetOrSetJSON is GetOrSet for a JSON-encoded T: the fetched value is encoded once and
// returned as is; a stored value is decoded once, and one that does not decode is
// treated as a miss and overwritten.
func GetOrSetJSON[T any](ctx context.Context, s *Service, key string, ttl time.Duration, fetch func(context.Context) (T, error)) (T, Result, error) {
	var out T
	var have bool
	check := func(v string) bool {
		var t T
		if json.Unmarshal(bytesOf(v), &t) != nil {
			return false
		}
		out, have = t, true
		return true
	}
	raw, r, err := s.getOrSet(ctx, key, ttl, check, func(background bool) FetchFunc {
		if background {
			// It runs after this call returned: it must not touch out.
			return encodeJSON(s, key, fetch)
		}
		return encodeJSON(s, key, func(ctx context.Context) (T, error) {
			t, err := fetch(ctx)
			out, have = t, err == nil
			return t, err
		})
	})
	if err != nil {
		var zero T
		return zero, r, err
	}
	if !have {
		// Served by a fill another call in this process ran (Dedupe).
		if err := json.Unmarshal(bytesOf(raw), &out); err != nil {
			var zero T
			return zero, r, fmt.Errorf("cache: decode %q: %w", s.Key(key), err)
		}
	}
	return out, r, nil
}

// GetOrSetRawJSON is GetOrSet for callers that serve the JSON text itself: fetch's T is
// encoded once, and a stored value is returned as the stored text after a cheap,
// allocation-free wholeness check (ValidJSON), never decoded. An entry that fails the
// check is a miss and is overwritten.
func GetOrSetRawJSON[T any](ctx context.Context, s *Service, key string, ttl time.Duration, fetch func(context.Context) (T, error)) (string, Result, error) {
	return s.getOrSet(ctx, key, ttl, ValidJSON, func(bool) FetchFunc { return encodeJSON(s, key, fetch) })
}

// encodeJSON turns a fetch of T into a fetch of its JSON text.
func encodeJSON[T any](s *Service, key string, fetch func(context.Context) (T, error)) FetchFunc {
	return func(ctx context.Context) (string, error) {
		t, err := fetch(ctx)
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(t)
		if err != nil {
			return "", fmt.Errorf("cache: encode %q: %w", s.Key(key), err)
		}
		return string(b), nil
	}
}

// getOrSet is the hit path: one GET, one header parse, one check. Anything else is a
// fill or a refresh, for which fetch makes the fetch function (one that may run after
// the call returned when background is set): a hit allocates none.
func (s *Service) getOrSet(ctx context.Context, key string, ttl time.Duration, check func(string) bool, fetch func(background bool) FetchFunc) (string, Result, error) {
	c := &call{ctx: ctx, s: s, key: s.Key(key), ttl: ttl, check: check, makeFetch: fetch}
	v, err := c.read(ctx)
	next, v, err := c.look(v, err)
	if next != stateDone {
		c.fetch = fetch(false)
		// A call that holds a stale entry refreshes it or serves it itself: there is
		// always something to serve, so there is nothing to share.
		if s.o.Dedupe && !c.hasEntry {
			v, err = c.shared(ctx, next)
		} else {
			v, err = c.run(ctx, next)
		}
		// A wait that ended on a path that does not close it (a bypass after it).
		c.endWaitHook()
	}
	s.count(&c.r)
	return v, c.r, err
}
