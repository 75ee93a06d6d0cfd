package cache_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// clock is a settable clock for entries' freshness.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// staleEnv is a Service with stale windows on a clock the test moves, and a view of
// its Redis: miniredis, or the real shared Redis under a fresh prefix (so the Lua
// scripts are proven on Redis itself).
type staleEnv struct {
	s   *cache.Service
	clk *clock
	// set writes a raw value at a key (without the prefix); exists and ttl look.
	set    func(key, v string)
	exists func(key string) bool
	ttl    func(key string) time.Duration
	// mr is set on miniredis, whose time the test can move.
	mr *miniredis.Miniredis
}

// staleTest runs body on miniredis and on the real Redis, with TTL 1m, then 1m of
// stale-while-revalidate, then 10m of stale-if-error unless o says otherwise.
func staleTest(t *testing.T, o cache.Options, body func(t *testing.T, env staleEnv)) {
	if o.StaleWhileRevalidate == 0 {
		o.StaleWhileRevalidate = time.Minute
	}
	if o.StaleIfError == 0 {
		o.StaleIfError = 10 * time.Minute
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 5 * time.Second
	}
	// Entries keep times in milliseconds.
	clk := func() *clock { return &clock{now: time.Now().Truncate(time.Millisecond)} }
	t.Run("miniredis", func(t *testing.T) {
		s, mr := newUnit(t, o)
		c := clk()
		cache.SetClock(s, c.Now)
		body(t, staleEnv{s: s, clk: c, mr: mr,
			set:    func(k, v string) { mr.Set("t:"+k, v) },
			exists: func(k string) bool { return mr.Exists("t:" + k) },
			ttl:    func(k string) time.Duration { return mr.TTL("t:" + k) },
		})
	})
	t.Run("redis", func(t *testing.T) {
		addr := redistest.SharedAddr(t)
		o := o
		o.Prefix = redistest.Prefix(t)
		itDeletePrefix(t, addr, o.Prefix)
		raw := itRaw(t, addr, "")
		rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4, MaxRetries: -1, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = rdb.Close() })
		if o.OpTimeout == 0 {
			o.OpTimeout = 2 * time.Second
		}
		s := cache.New(cache.Fixed(rdb), o)
		c := clk()
		cache.SetClock(s, c.Now)
		ctx := context.Background()
		body(t, staleEnv{s: s, clk: c,
			set: func(k, v string) {
				if err := raw.Set(ctx, o.Prefix+k, v, 0).Err(); err != nil {
					t.Fatal(err)
				}
			},
			exists: func(k string) bool { return raw.Exists(ctx, o.Prefix+k).Val() == 1 },
			ttl:    func(k string) time.Duration { return itPTTL(t, raw, o.Prefix+k) },
		})
	})
}

// source is a fetch function that returns "v1", "v2", ... and can be made to fail or
// to block.
type source struct {
	n     atomic.Int64
	fail  atomic.Bool
	gate  chan struct{} // when set, each fetch waits for a receive... a close
	inner chan struct{} // closed by the first fetch that reaches the gate
	once  sync.Once
}

func (src *source) fetch(context.Context) (string, error) {
	if src.gate != nil {
		src.once.Do(func() { close(src.inner) })
		<-src.gate
	}
	n := src.n.Add(1)
	if src.fail.Load() {
		return "", errors.New("source down")
	}
	return "v" + string(rune('0'+n)), nil
}

func gated() *source { return &source{gate: make(chan struct{}), inner: make(chan struct{})} }

func get(t *testing.T, s *cache.Service, fetch cache.FetchFunc) (string, cache.Result) {
	t.Helper()
	v, r, err := s.GetOrSet(context.Background(), "k", time.Minute, fetch)
	if err != nil {
		t.Fatalf("GetOrSet: %v (%+v)", err, r)
	}
	return v, r
}

// Under Lambda (no background refresh) the caller that takes a stale entry's refresh
// lease refreshes before answering; every other caller is served the stale entry at
// once.
func TestStaleWhileRevalidateLeaseHolderRefreshes(t *testing.T) {
	staleTest(t, cache.Options{}, func(t *testing.T, env staleEnv) {
		s, clk := env.s, env.clk
		src := &source{}
		if v, r := get(t, s, src.fetch); v != "v1" || r.Outcome != cache.Miss {
			t.Fatalf("first = %q %v", v, r.Outcome)
		}
		clk.Add(90 * time.Second) // 30 s into the stale-while-revalidate window

		slow := gated()
		slow.n.Store(1)
		type answer struct {
			v string
			r cache.Result
		}
		holder := make(chan answer, 1)
		go func() {
			v, r, _ := s.GetOrSet(context.Background(), "k", time.Minute, slow.fetch)
			holder <- answer{v, r}
		}()
		<-slow.inner
		v, r := get(t, s, func(context.Context) (string, error) {
			t.Error("a second caller fetched while the refresh lease was held")
			return "", nil
		})
		if v != "v1" || r.Outcome != cache.Stale || r.StaleFor != 30*time.Second || r.Refreshed {
			t.Fatalf("while refreshing = %q %+v; want v1 STALE for 30s", v, r)
		}
		close(slow.gate)
		a := <-holder
		if a.v != "v2" || a.r.Outcome != cache.Miss || !a.r.Refreshed || !a.r.Stored || a.r.Early {
			t.Fatalf("holder = %q %+v; want v2, refreshed and stored", a.v, a.r)
		}
		if v, r := get(t, s, src.fetch); v != "v2" || r.Outcome != cache.Hit {
			t.Fatalf("after the refresh = %q %v; want v2 HIT", v, r.Outcome)
		}
		if st := s.Stats(); st.Stale != 1 || st.Refreshes != 1 || st.RefreshFailures != 0 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

// In a long-lived server every reader of a stale entry is served at once, and one
// refresh runs in the background per key.
func TestStaleWhileRevalidateInBackground(t *testing.T) {
	staleTest(t, cache.Options{BackgroundRefresh: true, Dedupe: true}, func(t *testing.T, env staleEnv) {
		s, clk := env.s, env.clk
		src := &source{}
		get(t, s, src.fetch)
		clk.Add(61 * time.Second)

		slow := gated()
		slow.n.Store(1)
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, r, err := s.GetOrSet(context.Background(), "k", time.Minute, slow.fetch)
				if err != nil || v != "v1" || r.Outcome != cache.Stale {
					t.Errorf("reader = %q %v %v; want v1 STALE at once", v, r.Outcome, err)
				}
			}()
		}
		wg.Wait() // every reader answered while the refresh is blocked in its fetch
		<-slow.inner
		close(slow.gate)
		if err := s.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := slow.n.Load(); n != 2 {
			t.Fatalf("%d refresh fetches, want 1", n-1)
		}
		if v, r := get(t, s, src.fetch); v != "v2" || r.Outcome != cache.Hit {
			t.Fatalf("after the refresh = %q %v", v, r.Outcome)
		}
	})
}

// Past the stale-while-revalidate window a reader refreshes before answering, and
// serves the stale entry only when the source fails; a source that keeps failing is
// asked at most once per backoff step, which doubles.
func TestStaleIfErrorWithBackoff(t *testing.T) {
	staleTest(t, cache.Options{RefreshBackoff: time.Second}, func(t *testing.T, env staleEnv) {
		s, clk := env.s, env.clk
		src := &source{}
		get(t, s, src.fetch)
		clk.Add(3 * time.Minute) // past TTL + SWR, inside stale-if-error

		src.fail.Store(true)
		v, r := get(t, s, src.fetch)
		if v != "v1" || r.Outcome != cache.Stale || !r.Refreshed || r.SourceErr == nil || errors.Is(r.SourceErr, cache.ErrRefreshBackoff) {
			t.Fatalf("failed refresh = %q %+v; want v1 STALE with the source error", v, r)
		}
		for range 5 {
			v, r = get(t, s, src.fetch)
			if v != "v1" || r.Outcome != cache.Stale || !errors.Is(r.SourceErr, cache.ErrRefreshBackoff) || r.Refreshed {
				t.Fatalf("inside the backoff = %q %+v; want STALE without asking the source", v, r)
			}
		}
		if n := src.n.Load(); n != 2 {
			t.Fatalf("source asked %d times, want 2 (the fill, one refresh)", n)
		}
		// Steps of 1 s, 2 s, 4 s: one more attempt at each step's end, none inside.
		for i, step := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			clk.Add(step - 100*time.Millisecond)
			get(t, s, src.fetch)
			if n := src.n.Load(); n != int64(2+i) {
				t.Fatalf("step %d: source asked %d times before the backoff ended", i, n)
			}
			clk.Add(100 * time.Millisecond)
			get(t, s, src.fetch)
			if n := src.n.Load(); n != int64(3+i) {
				t.Fatalf("step %d: source asked %d times after the backoff ended, want one more", i, n)
			}
		}
		src.fail.Store(false)
		clk.Add(8 * time.Second)
		if v, r := get(t, s, src.fetch); v != "v6" || r.Outcome != cache.Miss || !r.Stored {
			t.Fatalf("source back = %q %+v; want a refresh", v, r)
		}
		if v, r := get(t, s, src.fetch); v != "v6" || r.Outcome != cache.Hit {
			t.Fatalf("after = %q %v", v, r.Outcome)
		}
		if st := s.Stats(); st.RefreshFailures != 4 || st.Refreshes != 5 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

// Inside the stale-while-revalidate window a failed refresh serves the entry too, and
// the backoff keeps the other readers from the source.
func TestStaleWhileRevalidateFailedRefresh(t *testing.T) {
	staleTest(t, cache.Options{}, func(t *testing.T, env staleEnv) {
		s, clk := env.s, env.clk
		src := &source{}
		get(t, s, src.fetch)
		clk.Add(70 * time.Second)
		src.fail.Store(true)
		for i := range 3 {
			v, r := get(t, s, src.fetch)
			if v != "v1" || r.Outcome != cache.Stale || r.SourceErr == nil {
				t.Fatalf("read %d = %q %+v", i, v, r)
			}
		}
		if n := src.n.Load(); n != 2 {
			t.Fatalf("source asked %d times, want 2", n)
		}
	})
}

// After the whole window Redis no longer has the entry: the source's error stands.
func TestStaleWindowEnds(t *testing.T) {
	staleTest(t, cache.Options{}, func(t *testing.T, env staleEnv) {
		s, clk := env.s, env.clk
		src := &source{}
		get(t, s, src.fetch)
		ttl := env.ttl("k")
		if ttl <= 11*time.Minute || ttl > 12*time.Minute {
			t.Fatalf("Redis TTL = %v, want TTL + both windows (12m)", ttl)
		}
		if env.mr == nil {
			return // the real Redis's time cannot be moved
		}
		env.mr.FastForward(ttl)
		clk.Add(ttl)
		src.fail.Store(true)
		if _, r, err := s.GetOrSet(context.Background(), "k", time.Minute, src.fetch); err == nil || r.Outcome != cache.Miss {
			t.Fatalf("after the window = %+v, %v; want the source's error", r, err)
		}
	})
}

// Invalidation wins over a refresh: one that fetched before Invalidate stores nothing.
func TestInvalidateFencesRefresh(t *testing.T) {
	staleTest(t, cache.Options{}, func(t *testing.T, env staleEnv) {
		s, clk := env.s, env.clk
		src := &source{}
		get(t, s, src.fetch)
		clk.Add(3 * time.Minute)
		slow := gated()
		slow.n.Store(1)
		done := make(chan cache.Result, 1)
		go func() {
			_, r, _ := s.GetOrSet(context.Background(), "k", time.Minute, slow.fetch)
			done <- r
		}()
		<-slow.inner
		if _, err := s.Invalidate(context.Background(), "k"); err != nil {
			t.Fatal(err)
		}
		close(slow.gate)
		if r := <-done; !r.Refreshed || r.Stored || !r.FenceLost {
			t.Fatalf("refresh across Invalidate = %+v; want FenceLost, not stored", r)
		}
		if env.exists("k") {
			t.Fatal("the refresh stored over the invalidation")
		}
		// A refresh over a newer fill is fenced too: it stores over the generation it saw.
		get(t, s, src.fetch) // v2, fresh
		clk.Add(3 * time.Minute)
		slow2 := gated()
		slow2.n.Store(100)
		go func() {
			_, r, _ := s.GetOrSet(context.Background(), "k", time.Minute, slow2.fetch)
			done <- r
		}()
		<-slow2.inner
		if _, err := s.Invalidate(context.Background(), "k"); err != nil {
			t.Fatal(err)
		}
		if v, r := get(t, s, src.fetch); v != "v3" || r.Outcome != cache.Miss {
			t.Fatalf("fill after Invalidate = %q %v", v, r.Outcome)
		}
		close(slow2.gate)
		if r := <-done; r.Stored || !r.FenceLost {
			t.Fatalf("refresh over a newer fill = %+v; want FenceLost", r)
		}
		if v, r := get(t, s, src.fetch); v != "v3" || r.Outcome != cache.Hit {
			t.Fatalf("after = %q %v; want the newer fill's v3", v, r.Outcome)
		}
	})
}

// A product gone at the source while its entry is stale is remembered as gone.
func TestRefreshNotFound(t *testing.T) {
	staleTest(t, cache.Options{NegativeTTL: 30 * time.Second}, func(t *testing.T, env staleEnv) {
		s, clk := env.s, env.clk
		src := &source{}
		get(t, s, src.fetch)
		clk.Add(90 * time.Second)
		gone := func(context.Context) (string, error) { return "", cache.ErrNotFound }
		for i := range 2 {
			if _, r, err := s.GetOrSet(context.Background(), "k", time.Minute, gone); !errors.Is(err, cache.ErrNotFound) {
				t.Fatalf("read %d = %+v, %v; want ErrNotFound", i, r, err)
			}
		}
	})
}

// A refresh whose fetch panics re-raises it in its caller, and backs off.
func TestRefreshPanic(t *testing.T) {
	staleTest(t, cache.Options{}, func(t *testing.T, env staleEnv) {
		s, clk := env.s, env.clk
		src := &source{}
		get(t, s, src.fetch)
		clk.Add(3 * time.Minute)
		func() {
			defer func() {
				if p := recover(); p == nil || !strings.Contains(p.(string), "boom") {
					t.Fatalf("recovered %v, want the fetch's panic", p)
				}
			}()
			_, _, _ = s.GetOrSet(context.Background(), "k", time.Minute, func(context.Context) (string, error) { panic("boom") })
		}()
		v, r := get(t, s, src.fetch)
		if v != "v1" || r.Outcome != cache.Stale || !errors.Is(r.SourceErr, cache.ErrRefreshBackoff) {
			t.Fatalf("after the panic = %q %+v; want STALE in backoff", v, r)
		}
	})
}

// XFetch: the chance of an early refresh is exp(-gap/(β·took)): none far from the end,
// about 1/e at gap = took, nearly sure at the end.
func TestEarlyRefreshDraw(t *testing.T) {
	s, _ := newUnit(t, cache.Options{EarlyRefresh: 1})
	took := 10 * time.Millisecond
	count := func(gap time.Duration) int {
		n := 0
		for range 4000 {
			if cache.EarlyDraw(s, took, gap) {
				n++
			}
		}
		return n
	}
	if n := count(time.Second); n != 0 {
		t.Fatalf("%d early refreshes 100 fetch-times before the end, want 0", n)
	}
	if n := count(took); n < 1200 || n > 1750 { // 4000/e ≈ 1472
		t.Fatalf("%d of 4000 at gap = took, want about 1472", n)
	}
	if n := count(time.Nanosecond); n < 3990 {
		t.Fatalf("%d of 4000 at the end, want nearly all", n)
	}
	off, _ := newUnit(t, cache.Options{})
	if cache.EarlyDraw(off, took, time.Nanosecond) {
		t.Fatal("an early refresh with EarlyRefresh off")
	}
}

// An early refresh serves the fresh entry when it fails, and the new value when it
// works (holder), without ever serving STALE.
func TestEarlyRefresh(t *testing.T) {
	staleTest(t, cache.Options{EarlyRefresh: 1}, func(t *testing.T, env staleEnv) {
		s, clk := env.s, env.clk
		fresh := clk.Now().Add(time.Minute)
		env.set("k", cache.NewEntry("v1", fresh)) // its fetch took 1 ms
		clk.Add(time.Minute - time.Microsecond)
		src := &source{}
		src.n.Store(1)
		src.fail.Store(true)
		v, r := get(t, s, src.fetch)
		if v != "v1" || r.Outcome != cache.Hit || !r.Refreshed || !r.Early || r.SourceErr == nil {
			t.Fatalf("failed early refresh = %q %+v; want v1 HIT with the error", v, r)
		}
		env.set("k", cache.NewEntry("v1", fresh))
		src.fail.Store(false)
		v, r = get(t, s, src.fetch)
		if v != "v3" || r.Outcome != cache.Miss || !r.Early || !r.Stored {
			t.Fatalf("early refresh = %q %+v", v, r)
		}
		if st := s.Stats(); st.EarlyRefreshes != 2 || st.Stale != 0 {
			t.Fatalf("stats = %+v", st)
		}
	})
}
