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
			if v, _ := mr.Get("t:p1"); v != raw {
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
		if v, _ := mr.Get("t:p1"); v != raw {
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
	mr.Set("t:k:lease", "someone-else")
	go func() {
		time.Sleep(50 * time.Millisecond)
		mr.Set("t:k", "theirs")
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

func TestLeaseWaitRunsOut(t *testing.T) {
	s, mr := newUnit(t, cache.Options{LeaseTTL: time.Hour, LeaseWait: 100 * time.Millisecond})
	mr.Set("t:k:lease", "stuck")
	v, r, err := s.GetOrSet(context.Background(), "k", time.Minute, func(context.Context) (string, error) { return "mine", nil })
	if err != nil || v != "mine" || r.Outcome != cache.Miss || r.Waited < 100*time.Millisecond {
		t.Fatalf("= %q, %+v, %v", v, r, err)
	}
	if s.Stats().LeaseTimeouts != 1 {
		t.Fatal("LeaseTimeouts not counted")
	}
	if got, _ := mr.Get("t:k:lease"); got != "stuck" {
		t.Fatal("a caller without the lease released it")
	}
}

func TestLeaseReleasedAfterFill(t *testing.T) {
	s, mr := newUnit(t, cache.Options{LeaseTTL: time.Minute, LeaseWait: time.Second})
	ctx := context.Background()
	_, _, err := s.GetOrSet(ctx, "k", time.Minute, func(context.Context) (string, error) {
		if !mr.Exists("t:k:lease") {
			t.Error("fetch ran without holding the lease")
		}
		return "v", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if mr.Exists("t:k:lease") {
		t.Fatal("lease not released after the fill")
	}
	_, _, _ = s.GetOrSet(ctx, "e", time.Minute, func(context.Context) (string, error) { return "", errors.New("x") })
	if mr.Exists("t:e:lease") {
		t.Fatal("lease not released after a failed fetch")
	}
}

func TestDedupeJoinsConcurrentMisses(t *testing.T) {
	s, _ := newUnit(t, cache.Options{Dedupe: true})
	ctx := context.Background()
	var calls atomic.Int32
	release := make(chan struct{})
	const n = 20
	var wg sync.WaitGroup
	results := make([]cache.Result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, r, err := s.GetOrSet(ctx, "k", time.Minute, func(context.Context) (string, error) {
				calls.Add(1)
				<-release
				return "v", nil
			})
			if err != nil || v != "v" {
				t.Errorf("got %q, %v", v, err)
			}
			results[i] = r
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("fetch ran %d times, want 1", calls.Load())
	}
	var shared int
	for _, r := range results {
		if r.Shared {
			shared++
		}
	}
	if shared == 0 {
		t.Fatal("no call was marked Shared")
	}
}

func TestGetOrSetCanceledWhileWaiting(t *testing.T) {
	s, mr := newUnit(t, cache.Options{LeaseTTL: time.Hour, LeaseWait: time.Hour})
	mr.Set("t:k:lease", "stuck")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := s.GetOrSet(ctx, "k", time.Minute, func(context.Context) (string, error) { return "v", nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestCloseClosesConn(t *testing.T) {
	s, _ := newUnit(t, cache.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(context.Background(), "k")
	if cache.CauseOf(err) != fault.CauseClosed {
		t.Fatalf("Get after Close: cause %q (%v)", cache.CauseOf(err), err)
	}
}
