package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/redis/go-redis/v9"
)

// Outcome says how a GetOrSet call was served.
type Outcome uint8

const (
	// Hit: the value came from Redis (or from another caller's fill of it).
	Hit Outcome = iota + 1
	// Miss: Redis had no usable value; this call fetched it and stored it.
	Miss
	// Bypass: Redis failed or the breaker was open; the value came straight from the
	// source and was not stored.
	Bypass
)

// String returns "HIT", "MISS" or "BYPASS", as in the X-Cache header.
func (o Outcome) String() string {
	switch o {
	case Hit:
		return "HIT"
	case Miss:
		return "MISS"
	case Bypass:
		return "BYPASS"
	}
	return "NONE"
}

// Result describes one GetOrSet call, for the caller's log line and metrics.
type Result struct {
	Outcome Outcome
	// Redis is the time spent waiting on Redis, lease polls included.
	Redis time.Duration
	// Fetch is the time spent in the fetch function (0 when it did not run here).
	Fetch time.Duration
	// Waited is the time spent waiting for another caller's fill.
	Waited time.Duration
	// Shared is set when another call in this process did the fill (Dedupe).
	Shared bool
	// Cause classifies the Redis failure behind a Bypass.
	Cause fault.Cause
	// Err is the Redis error behind a Bypass, absorbed so the reader was served.
	Err error
	// StoreErr is set when the value was fetched but could not be stored (for example
	// Redis is out of memory). The value was still returned.
	StoreErr error
	// Corrupt is set when a stored entry failed the wholeness check and was replaced.
	Corrupt bool
}

// Stats are running counters of a Service since it was created.
type Stats struct {
	Hits, Misses, Bypasses int64
	// Errors counts failed Redis commands (faults and error replies).
	Errors int64
	// Fetches counts fetch calls; StoreFailures fetched values that were not stored.
	Fetches, StoreFailures int64
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
}

type counters struct {
	hits, misses, bypasses, errors, fetches, storeFailures atomic.Int64
	leaseWaits, leaseTimeouts, shared, corrupt, skipped    atomic.Int64
	breakerOpens                                           atomic.Int64
}

// Stats returns the Service's counters.
func (s *Service) Stats() Stats {
	c := &s.stats
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Bypasses: c.bypasses.Load(),
		Errors: c.errors.Load(), Fetches: c.fetches.Load(), StoreFailures: c.storeFailures.Load(),
		LeaseWaits: c.leaseWaits.Load(), LeaseTimeouts: c.leaseTimeouts.Load(),
		Shared: c.shared.Load(), Corrupt: c.corrupt.Load(),
		Skipped: c.skipped.Load(), BreakerOpens: c.breakerOpens.Load(),
	}
}

// FetchFunc loads a value from the source. Return ErrNotFound (possibly wrapped) for a
// value that does not exist, to have it remembered for NegativeTTL.
type FetchFunc func(ctx context.Context) (string, error)

// tombstone marks a remembered "not found". It is not valid JSON or UTF-8 text, so it
// cannot be confused with a stored value of the typed helpers.
const tombstone = "\x00cache:not-found"

// leaseSuffix names the fill lease of a key. The lease is a key of its own (not a hash
// tag) so it may live in another cluster slot: every lease command touches one key.
const leaseSuffix = ":lease"

// releaseLease deletes a lease only if it still holds the caller's token, so a holder
// whose lease expired and was taken over does not release the new holder's.
const releaseLease = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

// GetOrSet returns the value at key or, when there is none, calls fetch, stores its value
// for ttl (shortened by up to TTLJitter) and returns it.
//
// Concurrency: with LeaseWait > 0, the first caller to miss takes a fill lease in Redis
// (SET NX PX LeaseTTL) and fetches; other callers, in any process, poll for the value
// (every 5 ms growing to 100 ms) for up to LeaseWait. If the holder dies, its lease
// expires after LeaseTTL and the next poller takes it over. A caller that waited
// LeaseWait in vain fetches itself. So fetch runs once per key per fill while holders
// live, and otherwise once per LeaseTTL plus once per caller whose wait ran out. With
// Dedupe, concurrent misses in this process also share one fill (and its lease).
//
// Failures: a Redis error or an open breaker never fails the call: the value is
// fetched and returned with Outcome Bypass and the error in Result.Err. A value that
// was fetched but could not be stored is returned, with Result.StoreErr set. An error
// from fetch is returned and never stored, except ErrNotFound, which is remembered for
// NegativeTTL when that is set (later calls return ErrNotFound as a Hit).
func (s *Service) GetOrSet(ctx context.Context, key string, ttl time.Duration, fetch FetchFunc) (string, Result, error) {
	return s.getOrSet(ctx, key, ttl, nil, fetch)
}

// GetOrSetJSON is GetOrSet for a JSON-encoded T: the fetched value is encoded once and
// returned as is; a stored value is decoded, and one that does not decode is treated as
// a miss and overwritten.
func GetOrSetJSON[T any](ctx context.Context, s *Service, key string, ttl time.Duration, fetch func(context.Context) (T, error)) (T, Result, error) {
	var out T
	var have bool
	valid := func(v string) bool {
		var t T
		if json.Unmarshal(bytesOf(v), &t) != nil {
			return false
		}
		out, have = t, true
		return true
	}
	raw, r, err := s.getOrSet(ctx, key, ttl, valid, func(ctx context.Context) (string, error) {
		t, err := fetch(ctx)
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(t)
		if err != nil {
			return "", fmt.Errorf("cache: encode %q: %w", s.Key(key), err)
		}
		out, have = t, true
		return string(b), nil
	})
	if err != nil {
		var zero T
		return zero, r, err
	}
	if !have {
		// A fill done by another call in this process (Dedupe).
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
	return s.getOrSet(ctx, key, ttl, ValidJSON, func(ctx context.Context) (string, error) {
		t, err := fetch(ctx)
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(t)
		if err != nil {
			return "", fmt.Errorf("cache: encode %q: %w", s.Key(key), err)
		}
		return string(b), nil
	})
}

func (s *Service) getOrSet(ctx context.Context, key string, ttl time.Duration, valid func(string) bool, fetch FetchFunc) (string, Result, error) {
	var r Result
	k := s.Key(key)
	v, err := s.read(ctx, k, &r)
	switch {
	case err == nil:
		if v, err, ok := s.served(k, v, valid, &r); ok {
			return v, r, err
		}
	case errors.Is(err, redis.Nil):
	case classify(err) == fault.CauseWrongType:
		r.Corrupt = true
		s.stats.corrupt.Add(1)
	case classify(err) == fault.CauseCanceled:
		return "", r, fmt.Errorf("cache: get %q: %w", k, err)
	default:
		return s.bypass(ctx, err, fetch, r)
	}
	if s.o.Dedupe {
		return s.fillShared(ctx, k, ttl, valid, fetch, r)
	}
	return s.fill(ctx, k, ttl, valid, fetch, r)
}

func (s *Service) read(ctx context.Context, k string, r *Result) (string, error) {
	start := time.Now()
	var v string
	err := s.do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		var err error
		v, err = c.Get(ctx, k).Result()
		return err
	})
	r.Redis += time.Since(start)
	return v, err
}

// served decides whether a stored value answers the call. ok is false for an entry that
// fails the wholeness check (counted, to be overwritten).
func (s *Service) served(k, v string, valid func(string) bool, r *Result) (string, error, bool) {
	if v == tombstone {
		r.Outcome = Hit
		s.stats.hits.Add(1)
		return "", fmt.Errorf("cache: %q: %w", k, ErrNotFound), true
	}
	if valid != nil && !valid(v) {
		r.Corrupt = true
		s.stats.corrupt.Add(1)
		return "", nil, false
	}
	r.Outcome = Hit
	s.stats.hits.Add(1)
	return v, nil, true
}

// bypass serves the call from the source after a Redis failure.
func (s *Service) bypass(ctx context.Context, cause error, fetch FetchFunc, r Result) (string, Result, error) {
	r.Outcome = Bypass
	r.Err = cause
	r.Cause = CauseOf(cause)
	s.stats.bypasses.Add(1)
	start := time.Now()
	s.stats.fetches.Add(1)
	v, err := fetch(ctx)
	r.Fetch = time.Since(start)
	return v, r, err
}

// fill fetches a missing value under the key's fill lease, or waits for the holder's.
func (s *Service) fill(ctx context.Context, k string, ttl time.Duration, valid func(string) bool, fetch FetchFunc, r Result) (string, Result, error) {
	if s.o.LeaseWait <= 0 {
		return s.fetchAndStore(ctx, k, ttl, "", fetch, r)
	}
	lease := k + leaseSuffix
	token := randomToken()
	giveUp := time.Now().Add(s.o.LeaseWait)
	var waitStart time.Time
	pause := 5 * time.Millisecond
	for {
		start := time.Now()
		var got bool
		err := s.do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
			var err error
			got, err = c.SetNX(ctx, lease, token, s.o.LeaseTTL).Result()
			return err
		})
		r.Redis += time.Since(start)
		switch {
		case classify(err) == fault.CauseCanceled:
			return "", r, fmt.Errorf("cache: lease %q: %w", k, err)
		case err != nil && classify(err).Fault(), errors.Is(err, ErrUnavailable):
			return s.bypass(ctx, err, fetch, r)
		case err != nil:
			// A working server that refuses the lease (out of memory): fetch without it.
			return s.fetchAndStore(ctx, k, ttl, "", fetch, r)
		case got:
			if !waitStart.IsZero() {
				r.Waited = time.Since(waitStart)
			}
			// The lease is free either because nobody filled the key or because a
			// holder stored the value and released it after this caller's last read:
			// look once more so a finished fill is not run again.
			if v, err := s.read(ctx, k, &r); err == nil {
				if v, err, ok := s.served(k, v, valid, &r); ok {
					s.releaseLease(ctx, lease, token)
					return v, r, err
				}
			}
			return s.fetchAndStore(ctx, k, ttl, token, fetch, r)
		}
		now := time.Now()
		if waitStart.IsZero() {
			waitStart = now
			s.stats.leaseWaits.Add(1)
		}
		if !now.Before(giveUp) {
			r.Waited = now.Sub(waitStart)
			s.stats.leaseTimeouts.Add(1)
			return s.fetchAndStore(ctx, k, ttl, "", fetch, r)
		}
		if err := sleep(ctx, min(pause, giveUp.Sub(now))); err != nil {
			r.Waited = time.Since(waitStart)
			return "", r, fmt.Errorf("cache: wait for %q: %w", k, err)
		}
		pause = min(pause*3/2, 100*time.Millisecond)
		v, err := s.read(ctx, k, &r)
		switch {
		case err == nil:
			r.Waited = time.Since(waitStart)
			if v, err, ok := s.served(k, v, valid, &r); ok {
				return v, r, err
			}
		case errors.Is(err, redis.Nil):
		case classify(err) == fault.CauseCanceled:
			return "", r, fmt.Errorf("cache: wait for %q: %w", k, err)
		default:
			r.Waited = time.Since(waitStart)
			return s.bypass(ctx, err, fetch, r)
		}
	}
}

// releaseLease gives up a lease that was not needed after all (best effort: it
// expires after LeaseTTL anyway).
func (s *Service) releaseLease(ctx context.Context, lease, token string) {
	_ = s.do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		return c.Eval(ctx, releaseLease, []string{lease}, token).Err()
	})
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetchAndStore runs fetch and stores its value (or a tombstone for ErrNotFound),
// releasing the lease held with token, if any, in the same round trip.
func (s *Service) fetchAndStore(ctx context.Context, k string, ttl time.Duration, token string, fetch FetchFunc, r Result) (string, Result, error) {
	r.Outcome = Miss
	s.stats.misses.Add(1)
	s.stats.fetches.Add(1)
	start := time.Now()
	v, ferr := fetch(ctx)
	r.Fetch = time.Since(start)
	stored, storeTTL, store := v, jitter(ttl, s.o.TTLJitter), ferr == nil
	if ferr != nil && errors.Is(ferr, ErrNotFound) && s.o.NegativeTTL > 0 {
		stored, storeTTL, store = tombstone, s.o.NegativeTTL, true
	}
	if !store && token == "" {
		return v, r, ferr
	}
	if ctx.Err() != nil {
		// The caller's time is up: no point in a write that cannot finish.
		if store {
			r.StoreErr = fmt.Errorf("cache: store %q: %w", k, ctx.Err())
			s.stats.storeFailures.Add(1)
		}
		return v, r, ferr
	}
	start = time.Now()
	err := s.do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		if token == "" {
			return c.Set(ctx, k, stored, storeTTL).Err()
		}
		cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			if store {
				p.Set(ctx, k, stored, storeTTL)
			}
			p.Eval(ctx, releaseLease, []string{k + leaseSuffix}, token)
			return nil
		})
		if err == nil || !store {
			return err
		}
		return cmds[0].Err()
	})
	r.Redis += time.Since(start)
	if err != nil && store {
		r.StoreErr = wrap("set", k, err)
		s.stats.storeFailures.Add(1)
	}
	return v, r, ferr
}

// fillShared joins concurrent fills of one key in this process.
func (s *Service) fillShared(ctx context.Context, k string, ttl time.Duration, valid func(string) bool, fetch FetchFunc, r Result) (string, Result, error) {
	s.flights.mu.Lock()
	if f, ok := s.flights.m[k]; ok {
		s.flights.mu.Unlock()
		start := time.Now()
		select {
		case <-f.done:
		case <-ctx.Done():
			r.Waited = time.Since(start)
			return "", r, fmt.Errorf("cache: wait for %q: %w", k, ctx.Err())
		}
		r.Waited = time.Since(start)
		r.Shared = true
		r.Outcome = Hit
		if f.res.Outcome == Bypass {
			r.Outcome, r.Cause, r.Err = Bypass, f.res.Cause, f.res.Err
		}
		s.stats.shared.Add(1)
		if r.Outcome == Hit {
			s.stats.hits.Add(1)
		} else {
			s.stats.bypasses.Add(1)
		}
		return f.val, r, f.err
	}
	f := &flight{done: make(chan struct{})}
	s.flights.m[k] = f
	s.flights.mu.Unlock()
	defer func() {
		s.flights.mu.Lock()
		delete(s.flights.m, k)
		s.flights.mu.Unlock()
		close(f.done)
	}()
	f.val, f.res, f.err = s.fill(ctx, k, ttl, valid, fetch, r)
	return f.val, f.res, f.err
}
