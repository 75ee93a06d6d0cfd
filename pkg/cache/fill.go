package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/redis/go-redis/v9"
)

// tombstone marks a remembered "not found": one NUL byte, the smallest value Redis
// keeps (a negative entry costs about 104 bytes of Redis memory with a short key, 16
// fewer than a 16-byte marker). Like a lease it starts with a NUL byte, so it is not
// valid JSON or text and cannot be confused with a stored value of the typed helpers;
// a raw GetOrSet value of exactly one NUL byte is reserved for it.
const tombstone = "\x00"

// leasePrefix starts the marker a fill writes into the key it fills: the lease is the
// key itself, so whatever removes the key (Del, Clear, expiry) removes its lease too,
// in any cluster slot, and a SCAN that finds neither lease nor value finds nothing to
// fence.
const leasePrefix = "\x00cache:lease:"

func isLease(v string) bool { return len(v) > 0 && v[0] == 0 && strings.HasPrefix(v, leasePrefix) }

// newLease returns a lease marker no other fill holds.
func newLease() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return leasePrefix + hex.EncodeToString(b[:])
}

// fencedStore replaces the caller's lease with the value, atomically, only if the key
// still holds that lease: an invalidation that removed it wins. ARGV: lease, value, TTL
// in milliseconds (0: no expiry). Returns 1 when stored.
var fencedStore = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == "0" then redis.call("SET", KEYS[1], ARGV[2])
else redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3]) end
return 1`)

// releaseLease deletes the key only if it still holds the caller's lease, so a holder
// whose lease expired and was taken over does not release the new holder's.
var releaseLease = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0`)

// state names where a call is on its way from a miss to a value.
type state uint8

const (
	// stateDone: the call has its answer.
	stateDone state = iota
	// stateLook: read the key and decide from what is there.
	stateLook
	// stateAcquire: the key is empty; take its lease (SET NX of a lease marker).
	stateAcquire
	// stateWait: another caller holds the lease; sleep, then look again.
	stateWait
	// stateReplace: the key holds an entry that failed the check; delete it.
	stateReplace
	// stateUnleased: fetch without the lease (the wait ran out, or the server refused
	// the lease) and store nothing.
	stateUnleased
	// stateBypass: Redis failed; fetch from the source and store nothing.
	stateBypass
	// stateHeld: the key holds this call's own lease (its SET NX was applied but the
	// reply was lost, and a retry or a look found it): fill.
	stateHeld
	// stateRefresh: the key holds an entry due for a refresh that this call makes
	// before answering: take the entry's refresh lease, fetch, store over it.
	stateRefresh
)

// call is one GetOrSet in progress. The lease holder's path is acquire → fetch →
// fenced store (or release); a waiter's is wait → look, until a value, an empty key
// (acquire) or the end of LeaseWait (unleased).
type call struct {
	// ctx is the caller's context, whose values a background refresh keeps.
	ctx   context.Context
	s     *Service
	key   string // with the prefix
	ttl   time.Duration
	check func(string) bool
	fetch FetchFunc
	// makeFetch makes fetch; with background set, one that may run after the call
	// returned (a background refresh).
	makeFetch func(background bool) FetchFunc
	// beforeFetch, when set, runs just before fetch: an in-process flight closes
	// itself to new callers there.
	beforeFetch func()

	// entry is the stored entry the call found, when it found one that passed the
	// check but was due for a refresh; mode says what kind.
	entry    entry
	hasEntry bool
	mode     refreshMode

	r         Result
	lease     string // the last lease this call tried to take
	waitStart time.Time
	pause     time.Duration
	// waitEnd ends the WaitHook's wait, while one is open.
	waitEnd func()
}

// run moves the call from state st until it is done.
func (c *call) run(ctx context.Context, st state) (v string, err error) {
	for st != stateDone {
		switch st {
		case stateLook:
			v, err = c.read(ctx)
			st, v, err = c.look(v, err)
		case stateAcquire:
			st, v, err = c.acquire(ctx)
		case stateWait:
			st, err = c.wait(ctx)
		case stateReplace:
			st, err = c.replace(ctx)
		case stateHeld:
			c.endWait()
			v, err = c.fill(ctx, c.lease)
			st = stateDone
		case stateRefresh:
			st, v, err = c.refresh(ctx)
		case stateUnleased, stateBypass:
			if st == stateUnleased {
				c.r.Outcome = Miss
			}
			v, err = c.fetchNow(ctx)
			v, err = c.orStale(v, err)
			st = stateDone
		}
	}
	return v, err
}

func (c *call) read(ctx context.Context) (string, error) {
	start := time.Now()
	var v string
	err := c.s.do(ctx, func(ctx context.Context, cl redis.UniversalClient) error {
		var err error
		v, err = c.s.readKey(ctx, cl, c.key, &c.r)
		return err
	})
	c.r.Redis += time.Since(start)
	return v, err
}

// look decides what a read of the key means: an answer (stateDone), or where to go.
func (c *call) look(v string, err error) (state, string, error) {
	if err == nil {
		switch {
		case v == tombstone:
			c.endWait()
			c.r.Outcome = Hit
			return stateDone, "", fmt.Errorf("cache: %q: %w", c.key, ErrNotFound)
		case isLease(v) && v == c.lease:
			return stateHeld, "", nil
		case isLease(v):
			return stateWait, "", nil
		}
		e, ok := parseEntry(v)
		if !ok || c.check != nil && !c.check(e.value) {
			return stateReplace, "", nil
		}
		return c.lookEntry(e)
	}
	switch cause := classify(err); {
	case errors.Is(err, redis.Nil):
		return stateAcquire, "", nil
	case cause == fault.CauseWrongType:
		return stateReplace, "", nil
	case cause == fault.CauseCanceled:
		return stateDone, "", fmt.Errorf("cache: get %q: %w", c.key, err)
	}
	c.endWait()
	c.bypass(err)
	return stateBypass, "", nil
}

// bypass records the Redis failure the call is served around.
func (c *call) bypass(err error) {
	c.r.Outcome, c.r.Err, c.r.Cause = Bypass, err, CauseOf(err)
}

// acquire tries to take the key's lease; the holder fetches and stores.
func (c *call) acquire(ctx context.Context) (state, string, error) {
	c.lease = newLease()
	start := time.Now()
	var got bool
	err := c.s.do(ctx, func(ctx context.Context, cl redis.UniversalClient) error {
		var err error
		got, err = cl.SetNX(ctx, c.key, c.lease, c.s.o.LeaseTTL).Result()
		return err
	})
	c.r.Redis += time.Since(start)
	switch cause := classify(err); {
	case err == nil && got:
		return stateHeld, "", nil
	case err == nil:
		// Another caller's lease, or the value it has just stored.
		return stateLook, "", nil
	case cause == fault.CauseCanceled:
		return stateDone, "", fmt.Errorf("cache: lease %q: %w", c.key, err)
	case cause.Fault(), errors.Is(err, ErrUnavailable):
		c.bypass(err)
		return stateBypass, "", nil
	}
	// A working server that refuses the lease (out of memory) would refuse the value
	// too: fetch without it, and say why nothing was stored.
	c.r.StoreErr = wrap("set", c.key, err)
	c.s.stats.storeFailures.Add(1)
	return stateUnleased, "", nil
}

// wait sleeps before the next look, or gives up after LeaseWait.
func (c *call) wait(ctx context.Context) (state, error) {
	now := time.Now()
	if c.waitStart.IsZero() {
		c.waitStart, c.pause = now, 5*time.Millisecond
		c.s.stats.leaseWaits.Add(1)
		if h := c.s.o.WaitHook; h != nil {
			c.waitEnd = h(ctx, c.key, false)
		}
	}
	giveUp := c.waitStart.Add(c.s.o.LeaseWait)
	if !now.Before(giveUp) {
		c.endWait()
		c.s.stats.leaseTimeouts.Add(1)
		return stateUnleased, nil
	}
	select {
	case <-time.After(min(c.pause, giveUp.Sub(now))):
	case <-ctx.Done():
		c.endWait()
		return stateDone, fmt.Errorf("cache: wait for %q: %w", c.key, ctx.Err())
	}
	c.pause = min(c.pause*3/2, 100*time.Millisecond)
	return stateLook, nil
}

// endWait closes the wait, if the call was waiting.
func (c *call) endWait() {
	if !c.waitStart.IsZero() && c.r.Waited == 0 {
		c.r.Waited = time.Since(c.waitStart)
	}
	c.endWaitHook()
}

// endWaitHook ends the WaitHook's wait, if one is open.
func (c *call) endWaitHook() {
	if c.waitEnd != nil {
		c.waitEnd()
		c.waitEnd = nil
	}
}

// replace deletes an entry that failed the check (or holds another type), so that a
// fill can take its place. Deleting a lease or value another caller wrote meanwhile
// costs that caller its store (FenceLost), never a wrong answer.
func (c *call) replace(ctx context.Context) (state, error) {
	c.r.Corrupt = true
	c.s.stats.corrupt.Add(1)
	start := time.Now()
	err := c.s.do(ctx, func(ctx context.Context, cl redis.UniversalClient) error {
		return cl.Del(ctx, c.key).Err()
	})
	c.r.Redis += time.Since(start)
	switch cause := classify(err); {
	case err == nil:
		return stateAcquire, nil
	case cause == fault.CauseCanceled:
		return stateDone, fmt.Errorf("cache: del %q: %w", c.key, err)
	}
	c.bypass(err)
	return stateBypass, nil
}

// fetchNow runs fetch, timed and counted.
func (c *call) fetchNow(ctx context.Context) (string, error) {
	if c.beforeFetch != nil {
		c.beforeFetch()
	}
	c.s.stats.fetches.Add(1)
	start := time.Now()
	v, err := c.fetch(ctx)
	c.r.Fetch = time.Since(start)
	return v, err
}

// fill is the lease holder's work: fetch, then store under the fence, or release the
// lease when there is nothing to store (a fetch error, a panic).
func (c *call) fill(ctx context.Context, lease string) (v string, err error) {
	c.r.Outcome = Miss
	settled := false
	defer func() {
		if !settled { // fetch panicked
			c.release(ctx, lease)
		}
	}()
	v, err = c.fetchNow(ctx)
	var value string
	var ttl time.Duration
	switch {
	case err == nil:
		value, ttl = c.newEntry(v)
	case errors.Is(err, ErrNotFound) && c.s.o.NegativeTTL > 0:
		value, ttl = tombstone, c.s.o.NegativeTTL
	default:
		settled = true
		c.release(ctx, lease)
		return v, err
	}
	settled = true
	c.store(ctx, lease, value, ttl)
	return v, err
}

// store writes value in place of the lease if the lease is still there. A caller that
// left meanwhile does not stop it: the value is fetched, and the lease must be settled
// either way.
func (c *call) store(ctx context.Context, lease, value string, ttl time.Duration) {
	ms := pxArg(ttl)
	start := time.Now()
	var stored int64
	err := c.s.do(detached(ctx), func(ctx context.Context, cl redis.UniversalClient) error {
		var err error
		stored, err = fencedStore.Run(ctx, cl, []string{c.key}, lease, value, ms).Int64()
		return err
	})
	c.r.Redis += time.Since(start)
	switch {
	case err != nil:
		c.r.StoreErr = wrap("set", c.key, err)
		c.s.stats.storeFailures.Add(1)
		c.release(ctx, lease)
	case stored == 0:
		c.r.FenceLost = true
		c.s.stats.fenceLost.Add(1)
	default:
		c.r.Stored = true
	}
}

// pxArg is a TTL as the store scripts take it: milliseconds, at least 1, or "0" for
// no expiry.
func pxArg(ttl time.Duration) string {
	if ttl <= 0 {
		return "0"
	}
	return strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)
}

// release gives up the lease, best effort (it expires after LeaseTTL anyway), on a
// context of its own: a caller that left must not leave its lease behind.
func (c *call) release(ctx context.Context, lease string) {
	_ = c.s.do(detached(ctx), func(ctx context.Context, cl redis.UniversalClient) error {
		return releaseLease.Run(ctx, cl, []string{c.key}, lease).Err()
	})
}

// detached returns ctx without its cancellation when it has ended, so the one
// operation that settles a lease still runs (bounded by the operation timeout).
func detached(ctx context.Context) context.Context {
	if callerGone(ctx) != nil {
		return context.WithoutCancel(ctx)
	}
	return ctx
}
