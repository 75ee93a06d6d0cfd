package cache

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// group joins concurrent fills of one key in this process (Dedupe).
//
// golang.org/x/sync/singleflight hands its result to every caller that joined while the
// work ran, and runs the work on the first caller's goroutine. Neither suits a cache
// that promises freshness: a caller that joins after the fetch began would be handed a
// value read before an invalidation it may have seen return, and the first caller's
// cancellation would end the work for all. So a flight here runs on a goroutine of its
// own, on a context detached from every caller (bounded by FillTimeout), and it closes
// to new callers just before it fetches. A caller that comes later joins the flight's
// successor, which starts when the flight ends, with a fresh read of the key: while one
// flight fetches, later callers wait together for one more, never for many.
//
// What a caller may take from its flight:
//   - from a fetch: everything (value, error, panic): the caller joined before the
//     fetch began;
//   - from a read of Redis: only a caller that joined before the flight started; one
//     that joined a running flight reads the key again itself.
type group struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one shared fill. Its result fields are written before done is closed.
type flight struct {
	done chan struct{}
	// call is the flight's own GetOrSet, made from the arguments of its owner, the
	// caller that brought it into being; ctx is the owner's, without its cancellation.
	call *call
	ctx  context.Context
	// Guarded by group.mu.
	started bool    // it may have read Redis
	open    bool    // it takes new callers: until it fetches
	fetched bool    // it called fetch
	next    *flight // its successor, for callers that came after it closed
	waiters int     // callers attached, for tests

	val   string
	err   error
	res   Result
	panic *panicError
}

// panicError is a fetch's panic, re-raised in every caller of the flight.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string {
	return fmt.Sprintf("cache: fetch panicked: %v\n\n%s", p.value, p.stack)
}

// join attaches c to the key's flight, starting one when there is none. early says
// that c joined before the flight started, owner that c brought it into being.
func (g *group) join(ctx context.Context, c *call, st state) (f *flight, early, owner bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.m[c.key]
	switch {
	case !ok:
		f = g.newFlight(ctx, c, st)
		g.m[c.key] = f
		g.start(f, st)
		early, owner = true, true
	case f.open:
	default:
		if f.next == nil {
			f.next = g.newFlight(ctx, c, stateLook)
			owner = true
		}
		f, early = f.next, true
	}
	f.waiters++
	return f, early, owner
}

// newFlight makes the flight for c that will start from st; one that starts with a
// bypass carries the Redis failure its owner saw. It keeps copies of c's arguments,
// not c, which stays on its caller's stack.
func (g *group) newFlight(ctx context.Context, c *call, st state) *flight {
	f := &flight{done: make(chan struct{}), open: true, ctx: context.WithoutCancel(ctx)}
	f.call = &call{ctx: f.ctx, s: c.s, key: c.key, ttl: c.ttl, check: c.check, fetch: c.fetch, makeFetch: c.makeFetch}
	if st == stateBypass {
		f.call.bypass(c.r.Err)
	}
	f.call.beforeFetch = func() {
		g.mu.Lock()
		f.open, f.fetched = false, true
		g.mu.Unlock()
	}
	return f
}

// start runs f from state st on a goroutine of its own. g.mu is held.
func (g *group) start(f *flight, st state) {
	f.started = true
	ctx, cancel := context.WithTimeout(f.ctx, f.call.s.o.FillTimeout)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				f.panic = &panicError{value: p, stack: debug.Stack()}
			}
			cancel()
			g.finish(f)
		}()
		f.val, f.err = f.call.run(ctx, st)
		f.call.endWaitHook()
		f.res = f.call.r
	}()
}

// finish ends f and starts its successor, if callers wait for one.
func (g *group) finish(f *flight) {
	g.mu.Lock()
	if next := f.next; next != nil {
		g.m[f.call.key] = next
		g.start(next, stateLook)
	} else if g.m[f.call.key] == f {
		delete(g.m, f.call.key)
	}
	g.mu.Unlock()
	close(f.done)
}

// waiting reports how many callers are attached to key's flights, for tests.
func (g *group) waiting(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for f := g.m[key]; f != nil; f = f.next {
		n += f.waiters
	}
	return n
}

// maxRejoins bounds how often a caller goes back to the group after a flight whose
// answer it could not take, before it fills on its own.
const maxRejoins = 3

// shared is run with Dedupe: the call joins or starts the key's flight.
func (c *call) shared(ctx context.Context, st state) (string, error) {
	g := &c.s.flights
	for range maxRejoins {
		f, early, owner := g.join(ctx, c, st)
		var end func()
		if h := c.s.o.WaitHook; h != nil && !owner {
			end = h(ctx, c.key, true)
		}
		err := c.waitFlight(ctx, f)
		if end != nil {
			end()
		}
		if err != nil {
			return "", err
		}
		if f.panic != nil {
			panic(f.panic)
		}
		if early || f.fetched {
			c.take(f, owner)
			return f.val, f.err
		}
		// A late joiner, and the flight answered from Redis: that read may predate
		// this caller. Read again.
		v, err := c.read(ctx)
		if st, v, err = c.look(v, err); st == stateDone {
			return v, err
		}
		if c.hasEntry {
			// A stale entry to refresh or serve: nothing to share.
			return c.run(ctx, st)
		}
	}
	return c.run(ctx, st)
}

// take makes the flight's result the call's: the owner's own work, or, for the
// others, a shared one, which is a Hit when it came from Redis or was stored there.
func (c *call) take(f *flight, owner bool) {
	own := c.r
	c.r = f.res
	c.r.Redis += own.Redis
	c.r.Corrupt = c.r.Corrupt || own.Corrupt
	if owner {
		return
	}
	c.r.Waited = own.Waited
	c.r.Shared = true
	if f.res.Stored {
		c.r.Outcome = Hit
	}
	if own.Tier != 0 {
		// The waiter's own read went through the in-process tier (and found nothing
		// there); its answer is what the fill stored in Redis, not memory.
		c.r.Tier = TierL2
	}
}

// waitFlight waits for f to end or for the caller to leave; leaving ends nothing else.
func (c *call) waitFlight(ctx context.Context, f *flight) error {
	start := time.Now()
	defer func() { c.r.Waited += time.Since(start) }()
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cache: wait for %q: %w", c.key, ctx.Err())
	}
}
