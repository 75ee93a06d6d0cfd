package cache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// newUnit returns a Service on a fresh miniredis, with fast timeouts, and the server.
func newUnit(tb testing.TB, o cache.Options) (*cache.Service, *miniredis.Miniredis) {
	tb.Helper()
	mr := miniredis.RunT(tb)
	rdb := redis.NewClient(&redis.Options{
		Addr: mr.Addr(), DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
		MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true, PoolSize: 2,
	})
	tb.Cleanup(func() { _ = rdb.Close() })
	if o.Prefix == "" {
		o.Prefix = "t:"
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 500 * time.Millisecond
	}
	return cache.New(cache.Fixed(rdb), o), mr
}

func TestKeysArePrefixed(t *testing.T) {
	s, mr := newUnit(t, cache.Options{Prefix: "shop:"})
	ctx := context.Background()
	if _, err := s.Set(ctx, "a", "1", cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HSet(ctx, "h", "f", "v"); err != nil {
		t.Fatal(err)
	}
	got := mr.Keys()
	want := []string{"shop:a", "shop:h"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("keys = %v, want %v", got, want)
	}
	if k := s.Key(cache.Versioned("product", 3).Key("p1")); k != "shop:product:v3:p1" {
		t.Fatalf("versioned key = %q", k)
	}
}

func TestSetOptions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		preset  bool
		opts    cache.SetOptions
		wantSet bool
		wantVal string
		wantTTL time.Duration
		wantErr bool
	}{
		{name: "plain", opts: cache.SetOptions{}, wantSet: true, wantVal: "new"},
		{name: "ttl", opts: cache.SetOptions{TTL: time.Minute}, wantSet: true, wantVal: "new", wantTTL: time.Minute},
		{name: "nx on missing", opts: cache.SetOptions{NX: true}, wantSet: true, wantVal: "new"},
		{name: "nx on existing", preset: true, opts: cache.SetOptions{NX: true}, wantSet: false, wantVal: "old", wantTTL: time.Hour},
		{name: "xx on missing", opts: cache.SetOptions{XX: true}, wantSet: false},
		{name: "xx on existing", preset: true, opts: cache.SetOptions{XX: true}, wantSet: true, wantVal: "new"},
		{name: "keepttl", preset: true, opts: cache.SetOptions{KeepTTL: true}, wantSet: true, wantVal: "new", wantTTL: time.Hour},
		{name: "nx and xx", opts: cache.SetOptions{NX: true, XX: true}, wantErr: true},
		{name: "keepttl and ttl", opts: cache.SetOptions{KeepTTL: true, TTL: time.Second}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, mr := newUnit(t, cache.Options{})
			if tt.preset {
				mr.Set("t:k", "old")
				mr.SetTTL("t:k", time.Hour)
			}
			set, err := s.Set(ctx, "k", "new", tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if set != tt.wantSet {
				t.Fatalf("set = %v, want %v", set, tt.wantSet)
			}
			if tt.wantErr {
				return
			}
			v, _ := mr.Get("t:k")
			if v != tt.wantVal {
				t.Fatalf("value = %q, want %q", v, tt.wantVal)
			}
			if ttl := mr.TTL("t:k"); ttl != tt.wantTTL {
				t.Fatalf("ttl = %v, want %v", ttl, tt.wantTTL)
			}
		})
	}
}

func TestGetAndExpiry(t *testing.T) {
	s, mr := newUnit(t, cache.Options{})
	ctx := context.Background()
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get missing: err = %v, want ErrMiss", err)
	}
	if err := s.SetWithExpiry(ctx, "k", "v", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || v != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	mr.FastForward(11 * time.Second)
	if _, err := s.Get(ctx, "k"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get after expiry: err = %v, want ErrMiss", err)
	}
	if err := s.SetWithExpiry(ctx, "k", "v", 0); err == nil {
		t.Fatal("SetWithExpiry with 0 TTL: no error")
	}
}

func TestDel(t *testing.T) {
	s, mr := newUnit(t, cache.Options{})
	ctx := context.Background()
	mr.Set("t:a", "1")
	mr.Set("t:b", "2")
	mr.Set("other", "3")
	n, err := s.Del(ctx, "a", "b", "c")
	if err != nil || n != 2 {
		t.Fatalf("Del = %d, %v; want 2", n, err)
	}
	if !mr.Exists("other") {
		t.Fatal("Del removed a key outside the prefix")
	}
	if n, err := s.Del(ctx); n != 0 || err != nil {
		t.Fatalf("Del() = %d, %v", n, err)
	}
}

func TestHash(t *testing.T) {
	s, _ := newUnit(t, cache.Options{})
	ctx := context.Background()
	if n, err := s.HSet(ctx, "h", "f1", "a"); err != nil || n != 1 {
		t.Fatalf("HSet new = %d, %v", n, err)
	}
	if n, err := s.HSet(ctx, "h", "f1", "b"); err != nil || n != 0 {
		t.Fatalf("HSet update = %d, %v", n, err)
	}
	if _, err := s.HSet(ctx, "h", "f2", "c"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.HGet(ctx, "h", "f1"); err != nil || v != "b" {
		t.Fatalf("HGet = %q, %v", v, err)
	}
	if _, err := s.HGet(ctx, "h", "zz"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("HGet missing field: %v", err)
	}
	m, err := s.HGetAll(ctx, "h")
	if err != nil || len(m) != 2 || m["f1"] != "b" || m["f2"] != "c" {
		t.Fatalf("HGetAll = %v, %v", m, err)
	}
	if m, err := s.HGetAll(ctx, "none"); err != nil || len(m) != 0 {
		t.Fatalf("HGetAll missing = %v, %v", m, err)
	}
	if _, err := s.Set(ctx, "str", "x", cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = s.HGet(ctx, "str", "f")
	if cache.CauseOf(err) != fault.CauseWrongType {
		t.Fatalf("HGet on a string: cause %q (%v)", cache.CauseOf(err), err)
	}
}

func TestServerErrors(t *testing.T) {
	s, mr := newUnit(t, cache.Options{BreakerFailures: 100})
	ctx := context.Background()
	mr.SetError("ERR something broke")
	_, err := s.Get(ctx, "k")
	if err == nil || errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get with server error: %v", err)
	}
	if !strings.Contains(err.Error(), `cache: get "t:k"`) {
		t.Fatalf("error lacks context: %v", err)
	}
	if !s.IsConnected() {
		t.Fatal("an error reply made IsConnected false")
	}
	mr.SetError("")
	if _, err := s.Set(ctx, "k", "v", cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestBreakerOpensOnFaultsOnly(t *testing.T) {
	s, mr := newUnit(t, cache.Options{BreakerFailures: 3, BreakerCooldown: time.Hour})
	ctx := context.Background()
	mr.SetError("OOM command not allowed when used memory > 'maxmemory'.")
	for range 5 {
		_, _ = s.Set(ctx, "k", "v", cache.SetOptions{})
	}
	if s.BreakerOpen() || !s.IsConnected() {
		t.Fatal("OOM replies opened the breaker")
	}
	mr.SetError("")
	mr.Close()
	for range 3 {
		if _, err := s.Get(ctx, "k"); cache.CauseOf(err) != fault.CauseConnectionRefused {
			t.Fatalf("Get on a closed server: cause %q (%v)", cache.CauseOf(err), err)
		}
	}
	if !s.BreakerOpen() || s.IsConnected() {
		t.Fatal("three connection faults did not open the breaker")
	}
	before := s.Stats().Skipped
	_, err := s.Get(ctx, "k")
	if !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("Get with open breaker: %v", err)
	}
	if s.Stats().Skipped != before+1 {
		t.Fatal("open breaker did not count a skip")
	}
	v, r, err := s.GetOrSet(ctx, "k", time.Minute, func(context.Context) (string, error) { return "fresh", nil })
	if err != nil || v != "fresh" || r.Outcome != cache.Bypass {
		t.Fatalf("GetOrSet with open breaker = %q, %v, %v", v, r.Outcome, err)
	}
}

func TestGetOrSet(t *testing.T) {
	s, mr := newUnit(t, cache.Options{TTLJitter: 0.2})
	ctx := context.Background()
	var calls atomic.Int32
	fetch := func(context.Context) (string, error) { calls.Add(1); return "value", nil }
	v, r, err := s.GetOrSet(ctx, "k", 100*time.Second, fetch)
	if err != nil || v != "value" || r.Outcome != cache.Miss {
		t.Fatalf("first = %q, %v, %v", v, r.Outcome, err)
	}
	if ttl := mr.TTL("t:k"); ttl < 80*time.Second || ttl > 100*time.Second {
		t.Fatalf("ttl %v outside the jitter window [80s, 100s]", ttl)
	}
	v, r, err = s.GetOrSet(ctx, "k", 100*time.Second, fetch)
	if err != nil || v != "value" || r.Outcome != cache.Hit {
		t.Fatalf("second = %q, %v, %v", v, r.Outcome, err)
	}
	if calls.Load() != 1 {
		t.Fatalf("fetch ran %d times", calls.Load())
	}
	if mr.Exists("t:k:lease") {
		t.Fatal("lease left behind") // no lease in this Service, but none must exist either
	}
	st := s.Stats()
	if st.Hits != 1 || st.Misses != 1 || st.Fetches != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestGetOrSetJitterSpreadsExpiry(t *testing.T) {
	s, mr := newUnit(t, cache.Options{TTLJitter: 0.5})
	ctx := context.Background()
	seen := map[time.Duration]bool{}
	for i := range 20 {
		key := fmt.Sprint("k", i)
		if _, _, err := s.GetOrSet(ctx, key, time.Hour, func(context.Context) (string, error) { return "v", nil }); err != nil {
			t.Fatal(err)
		}
		seen[mr.TTL("t:"+key).Truncate(time.Second)] = true
	}
	if len(seen) < 5 {
		t.Fatalf("20 keys got only %d distinct TTLs", len(seen))
	}
}

func TestGetOrSetFetchErrorNotCached(t *testing.T) {
	s, mr := newUnit(t, cache.Options{NegativeTTL: time.Minute})
	ctx := context.Background()
	boom := errors.New("db down")
	_, r, err := s.GetOrSet(ctx, "k", time.Minute, func(context.Context) (string, error) { return "", boom })
	if !errors.Is(err, boom) || r.Outcome != cache.Miss {
		t.Fatalf("err = %v, outcome %v", err, r.Outcome)
	}
	if mr.Exists("t:k") {
		t.Fatal("a fetch error was cached")
	}
}

func TestGetOrSetNegativeCaching(t *testing.T) {
	s, mr := newUnit(t, cache.Options{NegativeTTL: 30 * time.Second})
	ctx := context.Background()
	var calls atomic.Int32
	fetch := func(context.Context) (string, error) {
		calls.Add(1)
		return "", fmt.Errorf("product 42: %w", cache.ErrNotFound)
	}
	for i, want := range []cache.Outcome{cache.Miss, cache.Hit} {
		_, r, err := s.GetOrSet(ctx, "k", time.Minute, fetch)
		if !errors.Is(err, cache.ErrNotFound) || r.Outcome != want {
			t.Fatalf("call %d: err = %v, outcome %v, want ErrNotFound %v", i, err, r.Outcome, want)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("fetch ran %d times, want 1", calls.Load())
	}
	mr.FastForward(31 * time.Second)
	_, _, _ = s.GetOrSet(ctx, "k", time.Minute, fetch)
	if calls.Load() != 2 {
		t.Fatal("not-found was remembered past NegativeTTL")
	}

	off, mr2 := newUnit(t, cache.Options{})
	_, _, _ = off.GetOrSet(ctx, "k", time.Minute, fetch)
	if mr2.Exists("t:k") {
		t.Fatal("not-found stored with negative caching off")
	}
}

func TestGetOrSetCorruptEntryIsOverwritten(t *testing.T) {
	type product struct{ ID, Name string }
	ctx := context.Background()
	fetch := func(context.Context) (product, error) { return product{"p1", "Lamp"}, nil }
	for name, stored := range map[string]string{"truncated": `{"ID":"p1","Na`, "garbage": "\xff\xfe"} {
		t.Run(name, func(t *testing.T) {
			s, mr := newUnit(t, cache.Options{})
			mr.Set("t:p1", stored)
			raw, r, err := cache.GetOrSetRawJSON(ctx, s, "p1", time.Minute, fetch)
			if err != nil || r.Outcome != cache.Miss || !r.Corrupt || raw != `{"ID":"p1","Name":"Lamp"}` {
				t.Fatalf("raw = %q, %+v, %v", raw, r, err)
			}
			if v, _ := mr.Get("t:p1"); cache.StoredValue(v) != raw {
				t.Fatalf("entry not overwritten: %q", v)
			}
			mr.Set("t:p1", stored)
			p, r, err := cache.GetOrSetJSON(ctx, s, "p1", time.Minute, fetch)
			if err != nil || r.Outcome != cache.Miss || p.Name != "Lamp" {
				t.Fatalf("typed = %+v, %v, %v", p, r.Outcome, err)
			}
		})
	}
	t.Run("wrong type", func(t *testing.T) {
		s, mr := newUnit(t, cache.Options{})
		mr.HSet("t:p1", "f", "v")
		raw, r, err := cache.GetOrSetRawJSON(ctx, s, "p1", time.Minute, fetch)
		if err != nil || r.Outcome != cache.Miss || !r.Corrupt || raw == "" {
			t.Fatalf("raw = %q, %+v, %v", raw, r, err)
		}
		if v, _ := mr.Get("t:p1"); cache.StoredValue(v) != raw {
			t.Fatalf("hash not replaced by the value: %q", v)
		}
	})
}

func TestJSONHelpers(t *testing.T) {
	type item struct {
		ID    string `json:"id"`
		Price int64  `json:"price"`
	}
	s, mr := newUnit(t, cache.Options{})
	ctx := context.Background()
	if err := cache.SetJSON(ctx, s, "i", item{"a", 100}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, _ := mr.Get("t:i"); v != `{"id":"a","price":100}` {
		t.Fatalf("stored %q", v)
	}
	got, err := cache.GetJSON[item](ctx, s, "i")
	if err != nil || got != (item{"a", 100}) {
		t.Fatalf("GetJSON = %+v, %v", got, err)
	}
	mr.Set("t:bad", "{")
	if _, err := cache.GetJSON[item](ctx, s, "bad"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("GetJSON of a broken entry: %v", err)
	}
	if err := cache.SetJSON(ctx, s, "ch", make(chan int), 0); err == nil {
		t.Fatal("SetJSON of a channel: no error")
	}
	var calls int
	fetch := func(context.Context) (item, error) { calls++; return item{"b", 5}, nil }
	for _, want := range []cache.Outcome{cache.Miss, cache.Hit} {
		v, r, err := cache.GetOrSetJSON(ctx, s, "j", time.Minute, fetch)
		if err != nil || v != (item{"b", 5}) || r.Outcome != want {
			t.Fatalf("GetOrSetJSON = %+v, %v, %v; want %v", v, r.Outcome, err, want)
		}
	}
	if calls != 1 {
		t.Fatalf("fetch ran %d times", calls)
	}
}

func TestValidJSONDoesNotAllocate(t *testing.T) {
	doc := `{"id":"prod-0001","name":"Lamp","price":{"amount":1999,"currency":"EUR"}}`
	if !cache.ValidJSON(doc) || cache.ValidJSON(doc[:20]) {
		t.Fatal("ValidJSON misjudged")
	}
	if n := testing.AllocsPerRun(100, func() { cache.ValidJSON(doc) }); n != 0 {
		t.Fatalf("ValidJSON allocates %v times", n)
	}
}

func TestGetOrSetBypassWhenRedisDown(t *testing.T) {
	s, mr := newUnit(t, cache.Options{BreakerFailures: 2, BreakerCooldown: time.Hour})
	ctx := context.Background()
	mr.Close()
	for i := range 4 {
		v, r, err := s.GetOrSet(ctx, "k", time.Minute, func(context.Context) (string, error) { return "src", nil })
		if err != nil || v != "src" || r.Outcome != cache.Bypass {
			t.Fatalf("call %d = %q, %v, %v", i, v, r.Outcome, err)
		}
		if i < 2 && (r.Err == nil || r.Cause != fault.CauseConnectionRefused) {
			t.Fatalf("call %d: cause %q, err %v", i, r.Cause, r.Err)
		}
	}
	st := s.Stats()
	if st.Bypasses != 4 || st.Skipped != 2 || st.BreakerOpens != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if s.IsConnected() {
		t.Fatal("IsConnected with Redis down")
	}
}

func TestLeaseWaiterGetsHolderValue(t *testing.T) {
	s, mr := newUnit(t, cache.Options{LeaseTTL: time.Second, LeaseWait: 2 * time.Second})
	ctx := context.Background()
	mr.Set("t:k", cache.LeaseMarker)
	go func() {
		time.Sleep(50 * time.Millisecond)
		mr.Set("t:k", cache.NewEntry("theirs", time.Now().Add(time.Minute)))
	}()
	v, r, err := s.GetOrSet(ctx, "k", time.Minute, func(context.Context) (string, error) {
		t.Error("fetch ran although another caller held the lease")
		return "mine", nil
	})
	if err != nil || v != "theirs" || r.Outcome != cache.Hit || r.Waited <= 0 {
		t.Fatalf("= %q, %+v, %v", v, r, err)
	}
	if st := s.Stats(); st.LeaseWaits != 1 {
		t.Fatalf("LeaseWaits = %d", st.LeaseWaits)
	}
}

// TestLeaseWaitRunsOut: a caller that waited LeaseWait in vain serves its own fetch, but
// stores nothing: only the lease holder may store (the lease is the fence).
func TestLeaseWaitRunsOut(t *testing.T) {
	s, mr := newUnit(t, cache.Options{LeaseTTL: time.Hour, LeaseWait: 100 * time.Millisecond})
	mr.Set("t:k", cache.LeaseMarker)
	v, r, err := s.GetOrSet(context.Background(), "k", time.Minute, func(context.Context) (string, error) { return "mine", nil })
	if err != nil || v != "mine" || r.Outcome != cache.Miss || r.Stored || r.Waited < 100*time.Millisecond {
		t.Fatalf("= %q, %+v, %v", v, r, err)
	}
	if s.Stats().LeaseTimeouts != 1 {
		t.Fatal("LeaseTimeouts not counted")
	}
	if got, _ := mr.Get("t:k"); got != cache.LeaseMarker {
		t.Fatalf("key holds %q: a caller without the lease stored or released it", got)
	}
}

// TestLeaseReleasedOnEveryExit: the lease is in the key while fetch runs and gone after
// a fill, a failed fetch, a panicking fetch and a caller that left mid-fetch.
func TestLeaseReleasedOnEveryExit(t *testing.T) {
	for _, dedupe := range []bool{false, true} {
		t.Run(fmt.Sprintf("dedupe=%v", dedupe), func(t *testing.T) {
			s, mr := newUnit(t, cache.Options{LeaseTTL: time.Minute, LeaseWait: time.Second, Dedupe: dedupe})
			ctx := context.Background()
			holding := func(key string) {
				if v, _ := mr.Get("t:" + key); !cache.IsLease(v) {
					t.Errorf("fetch of %s ran without its lease in the key (key holds %q)", key, v)
				}
			}
			if _, _, err := s.GetOrSet(ctx, "ok", time.Minute, func(context.Context) (string, error) {
				holding("ok")
				return "v", nil
			}); err != nil {
				t.Fatal(err)
			}
			if v, _ := mr.Get("t:ok"); cache.StoredValue(v) != "v" {
				t.Fatalf("after a fill the key holds %q", v)
			}
			_, _, _ = s.GetOrSet(ctx, "err", time.Minute, func(context.Context) (string, error) {
				holding("err")
				return "", errors.New("source down")
			})
			func() {
				defer func() { _ = recover() }()
				_, _, _ = s.GetOrSet(ctx, "panic", time.Minute, func(context.Context) (string, error) {
					holding("panic")
					panic("fetch bug")
				})
			}()
			// The caller leaves mid-fetch. Without Dedupe the fetch sees it through its
			// context; with Dedupe the fetch runs detached and ends on its own.
			cctx, cancel := context.WithCancel(ctx)
			_, _, err := s.GetOrSet(cctx, "left", time.Minute, func(ctx context.Context) (string, error) {
				holding("left")
				cancel()
				if dedupe {
					return "", errors.New("source gave up")
				}
				<-ctx.Done()
				return "", ctx.Err()
			})
			if err == nil || !dedupe && !errors.Is(err, context.Canceled) {
				t.Fatalf("caller that left: err = %v", err)
			}
			for _, k := range []string{"err", "panic", "left"} {
				waitGone(t, mr, "t:"+k)
			}
		})
	}
}

// waitGone waits (generously) for key to disappear: with Dedupe the fill that releases
// it runs on after its caller left.
func waitGone(tb testing.TB, mr *miniredis.Miniredis, key string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for mr.Exists(key) {
		if time.Now().After(deadline) {
			v, _ := mr.Get(key)
			tb.Fatalf("%s still holds %q: lease left behind", key, v)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// dedupeRun starts a leader whose fetch blocks on release, then n more callers of the
// same key, and returns once all n+1 are attached to the key's flights.
func dedupeRun(t *testing.T, s *cache.Service, n int, fetch func(ctx context.Context, first bool) (string, error)) (release chan struct{}, results chan dedupeResult) {
	t.Helper()
	release = make(chan struct{})
	results = make(chan dedupeResult, n+1)
	var calls atomic.Int32
	started := make(chan struct{})
	call := func(ctx context.Context) {
		v, r, err := s.GetOrSet(ctx, "k", time.Minute, func(ctx context.Context) (string, error) {
			first := calls.Add(1) == 1
			if first {
				close(started)
				<-release
			}
			return fetch(ctx, first)
		})
		results <- dedupeResult{v, r, err}
	}
	go call(context.Background())
	<-started
	for range n {
		go call(context.Background())
	}
	waitFor(t, "every caller attached to the flight", func() bool { return cache.Waiting(s, "k") == n+1 })
	return release, results
}

type dedupeResult struct {
	v   string
	r   cache.Result
	err error
}

func TestDedupeJoinsConcurrentMisses(t *testing.T) {
	s, _ := newUnit(t, cache.Options{Dedupe: true, LeaseWait: time.Second})
	var fetches atomic.Int32
	release, results := dedupeRun(t, s, 19, func(context.Context, bool) (string, error) {
		fetches.Add(1)
		return "v", nil
	})
	close(release)
	outcomes := map[cache.Outcome]int{}
	for range 20 {
		res := <-results
		if res.err != nil || res.v != "v" {
			t.Errorf("got %q, %v", res.v, res.err)
		}
		outcomes[res.r.Outcome]++
	}
	if fetches.Load() != 1 {
		t.Fatalf("fetch ran %d times, want 1", fetches.Load())
	}
	if outcomes[cache.Miss] != 1 || outcomes[cache.Hit] != 19 {
		t.Fatalf("outcomes = %v, want 1 MISS and 19 HIT", outcomes)
	}
	// The 19 came while the fetch ran: they share the one flight after it, whose
	// first caller counts it as its own (a HIT of its own read), the rest as shared.
	if st := s.Stats(); st.Misses != 1 || st.Hits != 19 || st.Shared < 18 || st.Fetches != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestDedupeSharesFailureAsFailure: the leader's source error reaches every waiter as
// that error, counted as what it was, never as a HIT.
func TestDedupeSharesFailureAsFailure(t *testing.T) {
	s, mr := newUnit(t, cache.Options{Dedupe: true, LeaseWait: time.Second})
	boom := errors.New("source down")
	var fetches atomic.Int32
	release, results := dedupeRun(t, s, 9, func(context.Context, bool) (string, error) {
		fetches.Add(1)
		return "", boom
	})
	close(release)
	for range 10 {
		res := <-results
		if !errors.Is(res.err, boom) || res.r.Outcome == cache.Hit {
			t.Errorf("waiter got %q, %v, %v; want the source error, not a HIT", res.v, res.r.Outcome, res.err)
		}
	}
	if st := s.Stats(); st.Hits != 0 {
		t.Errorf("a failed fill counted %d hits", st.Hits)
	}
	// The nine that came during the fetch share one more fill, not nine.
	if n := fetches.Load(); n > 2 {
		t.Errorf("fetch ran %d times for 10 callers, want at most 2", n)
	}
	if mr.Exists("t:k") {
		t.Error("lease left behind after failed fills")
	}
}

// TestDedupeCallerLeavingDoesNotFailOthers is the hang-up of issue 9: the caller whose
// miss started the fill leaves; the others still get the value, nothing is left in
// Redis but the value, and the next call is a plain hit.
func TestDedupeCallerLeavingDoesNotFailOthers(t *testing.T) {
	s, mr := newUnit(t, cache.Options{Dedupe: true, LeaseWait: time.Second, LeaseTTL: time.Minute})
	leaderCtx, hangUp := context.WithCancel(context.Background())
	fetching := make(chan struct{})
	release := make(chan struct{})
	leader := make(chan dedupeResult, 1)
	go func() {
		v, r, err := s.GetOrSet(leaderCtx, "k", time.Minute, func(ctx context.Context) (string, error) {
			close(fetching)
			select {
			case <-release:
				return "v", nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		})
		leader <- dedupeResult{v, r, err}
	}()
	<-fetching
	results := make(chan dedupeResult, 5)
	for range 5 {
		go func() {
			v, r, err := s.GetOrSet(context.Background(), "k", time.Minute, func(context.Context) (string, error) {
				return "", errors.New("a second fetch ran")
			})
			results <- dedupeResult{v, r, err}
		}()
	}
	waitFor(t, "callers attached", func() bool { return cache.Waiting(s, "k") == 6 })
	hangUp()
	if res := <-leader; !errors.Is(res.err, context.Canceled) {
		t.Fatalf("the caller that hung up got %q, %v", res.v, res.err)
	}
	close(release)
	for range 5 {
		res := <-results
		if res.err != nil || res.v != "v" {
			t.Errorf("another caller got %q, %+v, %v; want the value", res.v, res.r, res.err)
		}
	}
	if v, _ := mr.Get("t:k"); cache.StoredValue(v) != "v" {
		t.Fatalf("key holds %q, want the value (no lease left)", v)
	}
	v, r, err := s.GetOrSet(context.Background(), "k", time.Minute, func(context.Context) (string, error) { return "", errors.New("refetch") })
	if err != nil || v != "v" || r.Outcome != cache.Hit || r.Waited != 0 {
		t.Fatalf("next call = %q, %+v, %v; want an immediate HIT", v, r, err)
	}
}

// TestDedupePanicReachesEveryWaiter: a panic in fetch is re-raised in every caller,
// never turned into an empty value.
func TestDedupePanicReachesEveryWaiter(t *testing.T) {
	s, _ := newUnit(t, cache.Options{Dedupe: true, LeaseWait: time.Second})
	release := make(chan struct{})
	started := make(chan struct{})
	panics := make(chan any, 4)
	var once sync.Once
	call := func() {
		defer func() { panics <- recover() }()
		v, r, err := s.GetOrSet(context.Background(), "k", time.Minute, func(context.Context) (string, error) {
			once.Do(func() { close(started) })
			<-release
			panic("fetch bug")
		})
		t.Errorf("GetOrSet returned %q, %+v, %v after a panic in fetch", v, r, err)
	}
	go call()
	<-started
	for range 3 {
		go call()
	}
	waitFor(t, "callers attached", func() bool { return cache.Waiting(s, "k") == 4 })
	close(release)
	for range 4 {
		p := <-panics
		if p == nil || !strings.Contains(fmt.Sprint(p), "fetch bug") {
			t.Errorf("caller recovered %v, want the fetch's panic", p)
		}
	}
}

func TestGetOrSetCanceledWhileWaiting(t *testing.T) {
	s, mr := newUnit(t, cache.Options{LeaseTTL: time.Hour, LeaseWait: time.Hour})
	mr.Set("t:k", cache.LeaseMarker)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := s.GetOrSet(ctx, "k", time.Minute, func(context.Context) (string, error) { return "v", nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// TestGetTreatsLeaseAsMiss: a key whose fill is in progress holds the lease marker;
// Get never returns it.
func TestGetTreatsLeaseAsMiss(t *testing.T) {
	s, mr := newUnit(t, cache.Options{})
	mr.Set("t:k", cache.LeaseMarker)
	if v, err := s.Get(context.Background(), "k"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get of a leased key = %q, %v; want ErrMiss", v, err)
	}
}

// TestDedupeSharesBypass: with Redis down, concurrent callers of one key still share
// fetches (the source needs protecting most then), and each is counted as a BYPASS.
func TestDedupeSharesBypass(t *testing.T) {
	s, mr := newUnit(t, cache.Options{Dedupe: true, LeaseWait: time.Second, BreakerCooldown: time.Hour})
	mr.Close()
	var fetches atomic.Int32
	release, results := dedupeRun(t, s, 9, func(context.Context, bool) (string, error) {
		fetches.Add(1)
		return "v", nil
	})
	close(release)
	for range 10 {
		res := <-results
		if res.err != nil || res.v != "v" || res.r.Outcome != cache.Bypass || res.r.Cause == "" {
			t.Errorf("caller got %q, %v (cause %q), %v; want the source's value as a BYPASS with its cause",
				res.v, res.r.Outcome, res.r.Cause, res.err)
		}
	}
	if n := fetches.Load(); n > 2 {
		t.Errorf("fetch ran %d times for 10 callers, want at most 2", n)
	}
	if st := s.Stats(); st.Bypasses != 10 || st.Hits+st.Misses != 0 {
		t.Errorf("stats = %+v, want 10 bypasses", st)
	}
}

func TestStatsAdd(t *testing.T) {
	a := cache.Stats{Hits: 1, Misses: 2, Bypasses: 3, Errors: 4, Fetches: 5, StoreFailures: 6, FenceLost: 7,
		LeaseWaits: 8, LeaseTimeouts: 9, Shared: 10, Corrupt: 11, Skipped: 12, BreakerOpens: 13}
	want := cache.Stats{Hits: 2, Misses: 4, Bypasses: 6, Errors: 8, Fetches: 10, StoreFailures: 12, FenceLost: 14,
		LeaseWaits: 16, LeaseTimeouts: 18, Shared: 20, Corrupt: 22, Skipped: 24, BreakerOpens: 26}
	if got := a.Add(a); got != want {
		t.Fatalf("Add = %+v, want %+v", got, want)
	}
}

// Invalidate during a fill: the fill's value goes to its own caller only, nothing is
// stored, and the next read fetches again.
func TestInvalidateFencesFillInProgress(t *testing.T) {
	s, _ := newUnit(t, cache.Options{LeaseTTL: time.Second, LeaseWait: time.Second})
	ctx := context.Background()
	if _, err := s.Set(ctx, "other", "x", cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	inFetch, release := make(chan struct{}), make(chan struct{})
	type answer struct {
		v   string
		r   cache.Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		v, r, err := s.GetOrSet(ctx, "k", time.Minute, func(context.Context) (string, error) {
			close(inFetch)
			<-release
			return "old", nil
		})
		done <- answer{v, r, err}
	}()
	<-inFetch
	n, err := s.Invalidate(ctx, "k", "other")
	if err != nil || n != 2 {
		t.Fatalf("Invalidate = %d, %v; want 2 keys (the lease and other)", n, err)
	}
	close(release)
	a := <-done
	if a.err != nil || a.v != "old" || !a.r.FenceLost || a.r.Stored {
		t.Fatalf("fill after Invalidate = %q %+v %v; want its value, FenceLost, not stored", a.v, a.r, a.err)
	}
	v, r, err := s.GetOrSet(ctx, "k", time.Minute, func(context.Context) (string, error) { return "new", nil })
	if err != nil || v != "new" || r.Outcome != cache.Miss {
		t.Fatalf("read after Invalidate = %q %v %v; want a fresh fetch", v, r.Outcome, err)
	}
}
