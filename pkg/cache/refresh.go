package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"time"

	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/redis/go-redis/v9"
)

// refreshMode says why a call refreshes the entry it found.
type refreshMode uint8

const (
	// refreshEarly: the entry is fresh, but XFetch drew it for an early refresh; a
	// failed refresh still serves it as a Hit.
	refreshEarly refreshMode = iota + 1
	// refreshStale: the entry is inside its stale-while-revalidate window; it is
	// served Stale unless this call refreshes it.
	refreshStale
	// refreshSync: the entry is past that window, inside its stale-if-error window:
	// a reader refreshes (or waits for the refresh) before answering, and serves the
	// entry Stale only when the refresh fails.
	refreshSync
)

// maxBackoffShift caps the refresh backoff at 32 × RefreshBackoff.
const maxBackoffShift = 5

// newEntry returns the entry to store for a fetched value and its Redis TTL: fresh
// for the call's TTL (less jitter), kept for the stale windows after it.
func (c *call) newEntry(v string) (string, time.Duration) {
	if c.ttl <= 0 {
		return encodeEntry(newGen(), time.UnixMilli(9_999_999_999_999), c.r.Fetch, v), 0
	}
	soft := jitter(c.ttl, c.s.o.TTLJitter)
	return encodeEntry(newGen(), c.s.now().Add(soft), c.r.Fetch, v), soft + c.s.o.StaleWhileRevalidate + c.s.o.StaleIfError
}

// lookEntry decides what a well-formed entry means at this moment: a Hit, a Stale
// answer, a refresh to make before answering, or a wait for another caller's refresh.
func (c *call) lookEntry(e entry) (state, string, error) {
	now := c.s.now()
	c.entry, c.hasEntry = e, true
	leased := e.until.After(now)
	backoff := leased && e.holder == noHolder
	switch {
	case now.Before(e.fresh):
		if leased || !c.s.early(e, now) {
			return c.serve(Hit)
		}
		c.mode = refreshEarly
	case now.Before(e.fresh.Add(c.s.o.StaleWhileRevalidate)):
		if backoff {
			c.r.SourceErr = ErrRefreshBackoff
		}
		if leased {
			return c.serve(Stale)
		}
		c.mode = refreshStale
	default:
		// Redis keeps an entry only to the end of its stale-if-error window.
		c.mode = refreshSync
		switch {
		case backoff:
			c.r.SourceErr = ErrRefreshBackoff
			return c.serve(Stale)
		case leased:
			return stateWait, "", nil
		}
	}
	if c.s.o.BackgroundRefresh && c.mode != refreshSync {
		c.s.refreshLater(c)
		c.r.RefreshStarted = true
		if c.mode == refreshEarly {
			return c.serve(Hit)
		}
		return c.serve(Stale)
	}
	return stateRefresh, "", nil
}

// serve answers with the entry the call holds.
func (c *call) serve(o Outcome) (state, string, error) {
	c.endWait()
	c.r.Outcome = o
	if o == Stale {
		c.r.StaleFor = c.s.now().Sub(c.entry.fresh)
	}
	return stateDone, c.entry.value, nil
}

// settle answers with the entry the call holds after a refresh that did not happen or
// failed: Hit while it is fresh, else Stale.
func (c *call) settle() (state, string, error) {
	if c.mode == refreshEarly {
		return c.serve(Hit)
	}
	return c.serve(Stale)
}

// orStale turns a failed fetch into the stale entry the call holds, if it holds one
// (stale-if-error). A value that does not exist at the source is not an error to
// serve over: ErrNotFound stands.
func (c *call) orStale(v string, err error) (string, error) {
	if err == nil || !c.hasEntry || errors.Is(err, ErrNotFound) {
		return v, err
	}
	c.r.SourceErr = err
	_, v, err = c.settle()
	return v, err
}

// early reports whether XFetch draws a fresh entry for an early refresh: with
// probability exp(-gap/(β·took)), gap being the time left before it goes stale.
func (s *Service) early(e entry, now time.Time) bool {
	scale := s.o.EarlyRefresh * float64(e.took)
	if scale <= 0 {
		return false
	}
	gap := float64(e.fresh.Sub(now))
	if gap > 30*scale { // probability below e^-30: skip the draw
		return false
	}
	return -math.Log(1-mrand.Float64())*scale >= gap
}

// refresh takes the refresh lease of the entry the call holds and, when it gets it,
// refreshes the entry; otherwise it answers from what it learnt.
func (c *call) refresh(ctx context.Context) (state, string, error) {
	holder := newHolder()
	now := c.s.now()
	lease := untilField(now.Add(c.s.o.LeaseTTL), holder, c.entry.fails)
	start := time.Now()
	var got int64
	err := c.s.do(ctx, func(ctx context.Context, cl redis.UniversalClient) error {
		var err error
		got, err = takeRefresh.Run(ctx, cl, []string{c.key}, c.entry.gen, strconv.FormatInt(now.UnixMilli(), 10), lease).Int64()
		return err
	})
	c.r.Redis += time.Since(start)
	switch cause := classify(err); {
	case err == nil && got == 1:
		v, err := c.refill(ctx, holder)
		return stateDone, v, err
	case err == nil && got == 0:
		// Removed or replaced since it was read: look again.
		c.hasEntry = false
		return stateLook, "", nil
	case err == nil && got == -2:
		c.r.SourceErr = ErrRefreshBackoff
		return c.settle()
	case err == nil:
		// Another caller refreshes it.
		if c.mode == refreshSync {
			return stateWait, "", nil
		}
		return c.settle()
	case cause == fault.CauseCanceled:
		return stateDone, "", wrap("refresh", c.key, err)
	}
	if c.mode != refreshSync {
		return c.settle()
	}
	c.bypass(err)
	return stateBypass, "", nil
}

// refill is the refresh lease holder's work: fetch, then store over the entry it
// refreshes if that entry is still there (the fence: an invalidation removed it, or a
// newer fill replaced it). A failed fetch leaves the entry and starts a backoff; the
// entry is served.
func (c *call) refill(ctx context.Context, holder string) (v string, err error) {
	c.r.Refreshed, c.r.Early = true, c.mode == refreshEarly
	c.s.stats.refreshes.Add(1)
	if c.r.Early {
		c.s.stats.earlyRefreshes.Add(1)
	}
	settled := false
	defer func() {
		if !settled { // fetch panicked
			c.s.stats.refreshFailures.Add(1)
			c.backoff(ctx, holder)
		}
	}()
	v, err = c.fetchNow(ctx)
	settled = true
	switch {
	case err == nil:
		c.r.Outcome = Miss
		value, ttl := c.newEntry(v)
		c.endRefresh(ctx, holder, "store", value, ttl)
		return v, nil
	case errors.Is(err, ErrNotFound):
		// Gone at the source: remember that, or forget the entry.
		c.r.Outcome = Miss
		if c.s.o.NegativeTTL > 0 {
			c.endRefresh(ctx, holder, "store", tombstone, c.s.o.NegativeTTL)
		} else {
			c.endRefresh(ctx, holder, "delete", "", 0)
		}
		return "", err
	}
	c.s.stats.refreshFailures.Add(1)
	c.backoff(ctx, holder)
	c.r.SourceErr = err
	_, v, err = c.settle()
	return v, err
}

// backoff ends a failed refresh: no refresh of the entry until the backoff ends.
func (c *call) backoff(ctx context.Context, holder string) {
	fails := c.entry.fails
	wait := c.s.o.RefreshBackoff << min(fails, maxBackoffShift)
	c.endRefresh(ctx, holder, "fail", untilField(c.s.now().Add(wait), noHolder, fails+1), 0)
}

// endRefresh settles the refresh lease under the fence (see the endRefresh script).
func (c *call) endRefresh(ctx context.Context, holder, how, value string, ttl time.Duration) {
	ms := pxArg(ttl)
	start := time.Now()
	var done int64
	err := c.s.do(detached(ctx), func(ctx context.Context, cl redis.UniversalClient) error {
		var err error
		done, err = endRefresh.Run(ctx, cl, []string{c.key}, c.entry.gen, holder, value, ms, how).Int64()
		return err
	})
	c.r.Redis += time.Since(start)
	switch {
	case how == "fail":
	case err != nil:
		c.r.StoreErr = wrap("set", c.key, err)
		c.s.stats.storeFailures.Add(1)
	case done == 0:
		c.r.FenceLost = true
		c.s.stats.fenceLost.Add(1)
	default:
		c.r.Stored = true
	}
}

// refreshLater refreshes c's entry on a goroutine of its own, on c's context without
// its cancellation, bounded by FillTimeout; at most one per key in this process. The
// refresh lease keeps it to one across processes.
func (s *Service) refreshLater(c *call) {
	if _, running := s.refreshing.LoadOrStore(c.key, struct{}{}); running {
		return
	}
	bg := &call{s: s, key: c.key, ttl: c.ttl, fetch: c.makeFetch(true), entry: c.entry, hasEntry: true, mode: c.mode}
	s.background.Add(1)
	go func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, s.o.FillTimeout)
		defer func() {
			// Nobody is left to re-raise a panic to: refill counted it as a failed
			// refresh and started the backoff.
			_ = recover()
			cancel()
			s.refreshing.Delete(bg.key)
			s.background.Done()
		}()
		_, _, _ = bg.refresh(ctx)
	}(context.WithoutCancel(c.ctx))
}

// Wait blocks until the background refreshes started so far have ended (each is
// bounded by FillTimeout) or ctx ends, so a program can let them store before it
// closes the client.
func (s *Service) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.background.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cache: wait for background refreshes: %w", ctx.Err())
	}
}
