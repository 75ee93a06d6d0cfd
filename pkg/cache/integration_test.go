package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/redisclient"
	"github.com/redis/go-redis/v9"
)

// itConfig parses a configuration the way a deployed function does, from environment
// variables, with REDIS_URL pointing at addr and the test's own key prefix. extra
// overrides or adds variables (shorter timeouts for fault tests).
func itConfig(tb testing.TB, addr, prefix string, mode config.Mode, extra map[string]string) config.Config {
	tb.Helper()
	environ := map[string]string{
		"REDIS_URL":        "redis://" + addr,
		"CACHE_KEY_PREFIX": prefix,
	}
	maps.Copy(environ, extra)
	cfg, err := config.Parse(environ, mode)
	if err != nil {
		tb.Fatalf("config.Parse: %v", err)
	}
	return cfg
}

// itService builds a Service exactly as production does: the App that app.New makes
// of cfg, closed when the test ends. It returns the App's cache and client holder.
func itService(tb testing.TB, cfg config.Config) (*cache.Service, *redisclient.Lazy) {
	tb.Helper()
	a, err := app.New(cfg)
	if err != nil {
		tb.Fatalf("app.New: %v", err)
	}
	tb.Cleanup(func() { _ = a.Close() })
	return a.API.Cache, a.Client
}

// itRaw returns a plain go-redis client for evidence (PTTL, EXISTS, raw GET), separate
// from the client under test.
func itRaw(tb testing.TB, addr, password string) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, Password: password, PoolSize: 2, MaxRetries: -1})
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// itDeletePrefix removes every key under prefix from the shared server when the test
// ends (registered before the test writes anything, so it runs after its clients close).
func itDeletePrefix(tb testing.TB, addr, prefix string) {
	tb.Helper()
	tb.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1})
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
		// The App's figures live beside the prefix, not under it.
		keys := []string{api.TallyKey(prefix)}
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == 500 {
				rdb.Unlink(ctx, keys...)
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			rdb.Unlink(ctx, keys...)
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("cleanup of %s*: %v", prefix, err)
		}
	})
}

// itShared is a Service on the shared Redis under a fresh prefix, plus a raw client on
// the same server.
type itShared struct {
	svc    *cache.Service
	lazy   *redisclient.Lazy
	raw    *redis.Client
	prefix string
	addr   string
	cfg    config.Config
}

func itSharedService(tb testing.TB, mode config.Mode, extra map[string]string) itShared {
	tb.Helper()
	addr := redistest.SharedAddr(tb)
	prefix := redistest.Prefix(tb)
	itDeletePrefix(tb, addr, prefix)
	cfg := itConfig(tb, addr, prefix, mode, extra)
	svc, lazy := itService(tb, cfg)
	return itShared{svc: svc, lazy: lazy, raw: itRaw(tb, addr, ""), prefix: prefix, addr: addr, cfg: cfg}
}

func itCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// itPTTL returns the remaining time to live of a full key, as Redis reports it.
func itPTTL(tb testing.TB, rdb *redis.Client, fullKey string) time.Duration {
	tb.Helper()
	d, err := rdb.PTTL(context.Background(), fullKey).Result()
	if err != nil {
		tb.Fatalf("PTTL %s: %v", fullKey, err)
	}
	return d
}

// itRawGet reads fullKey with a plain GET; of an entry GetOrSet stored it returns the
// value inside.
func itRawGet(tb testing.TB, rdb *redis.Client, fullKey string) (string, bool) {
	tb.Helper()
	v, err := rdb.Get(context.Background(), fullKey).Result()
	if errors.Is(err, redis.Nil) {
		return "", false
	}
	if err != nil {
		tb.Fatalf("GET %s: %v", fullKey, err)
	}
	return cache.StoredValue(v), true
}

func TestRealRedisSet(t *testing.T) {
	s := itSharedService(t, config.ModeLambda, nil)
	ctx := itCtx(t)

	t.Run("TTL", func(t *testing.T) {
		ok, err := s.svc.Set(ctx, "ttl", "v", cache.SetOptions{TTL: 10 * time.Second})
		if err != nil || !ok {
			t.Fatalf("Set = %v, %v; want true, nil", ok, err)
		}
		if d := itPTTL(t, s.raw, s.prefix+"ttl"); d <= 8*time.Second || d > 10*time.Second {
			t.Errorf("PTTL = %v, want about 10s", d)
		}
	})
	t.Run("no TTL persists", func(t *testing.T) {
		if _, err := s.svc.Set(ctx, "forever", "v", cache.SetOptions{}); err != nil {
			t.Fatal(err)
		}
		if d := itPTTL(t, s.raw, s.prefix+"forever"); d != -1 {
			t.Errorf("PTTL = %v, want -1 (no expiry)", d)
		}
	})
	t.Run("NX", func(t *testing.T) {
		ok, err := s.svc.Set(ctx, "nx", "first", cache.SetOptions{NX: true})
		if err != nil || !ok {
			t.Fatalf("Set NX on a new key = %v, %v; want true, nil", ok, err)
		}
		ok, err = s.svc.Set(ctx, "nx", "second", cache.SetOptions{NX: true})
		if err != nil || ok {
			t.Fatalf("Set NX on an existing key = %v, %v; want false, nil", ok, err)
		}
		if v, _ := itRawGet(t, s.raw, s.prefix+"nx"); v != "first" {
			t.Errorf("value = %q, want the first write kept", v)
		}
	})
	t.Run("XX", func(t *testing.T) {
		ok, err := s.svc.Set(ctx, "xx", "v", cache.SetOptions{XX: true})
		if err != nil || ok {
			t.Fatalf("Set XX on a missing key = %v, %v; want false, nil", ok, err)
		}
		if _, found := itRawGet(t, s.raw, s.prefix+"xx"); found {
			t.Fatal("Set XX created a missing key")
		}
		if _, err := s.svc.Set(ctx, "xx", "old", cache.SetOptions{}); err != nil {
			t.Fatal(err)
		}
		ok, err = s.svc.Set(ctx, "xx", "new", cache.SetOptions{XX: true})
		if err != nil || !ok {
			t.Fatalf("Set XX on an existing key = %v, %v; want true, nil", ok, err)
		}
		if v, _ := itRawGet(t, s.raw, s.prefix+"xx"); v != "new" {
			t.Errorf("value = %q, want new", v)
		}
	})
	t.Run("KeepTTL", func(t *testing.T) {
		if _, err := s.svc.Set(ctx, "keep", "a", cache.SetOptions{TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.svc.Set(ctx, "keep", "b", cache.SetOptions{KeepTTL: true}); err != nil {
			t.Fatal(err)
		}
		if d := itPTTL(t, s.raw, s.prefix+"keep"); d <= 50*time.Second || d > time.Minute {
			t.Errorf("PTTL after KeepTTL = %v, want the minute kept", d)
		}
		if v, _ := itRawGet(t, s.raw, s.prefix+"keep"); v != "b" {
			t.Errorf("value = %q, want b", v)
		}
		// Without KeepTTL a plain SET drops the TTL, which is why the option exists.
		if _, err := s.svc.Set(ctx, "keep", "c", cache.SetOptions{}); err != nil {
			t.Fatal(err)
		}
		if d := itPTTL(t, s.raw, s.prefix+"keep"); d != -1 {
			t.Errorf("PTTL after a plain Set = %v, want -1", d)
		}
	})
	t.Run("bad combinations", func(t *testing.T) {
		if _, err := s.svc.Set(ctx, "bad", "v", cache.SetOptions{NX: true, XX: true}); err == nil {
			t.Error("NX and XX together: no error")
		}
		if _, err := s.svc.Set(ctx, "bad", "v", cache.SetOptions{TTL: time.Second, KeepTTL: true}); err == nil {
			t.Error("TTL and KeepTTL together: no error")
		}
		if _, found := itRawGet(t, s.raw, s.prefix+"bad"); found {
			t.Error("a rejected Set wrote the key")
		}
	})
}

func TestRealRedisGetDel(t *testing.T) {
	s := itSharedService(t, config.ModeLambda, nil)
	ctx := itCtx(t)

	_, err := s.svc.Get(ctx, "missing")
	if !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get of a missing key: err = %v, want ErrMiss", err)
	}
	if errors.Is(err, redis.Nil) {
		t.Error("redis.Nil leaked out of the cache package")
	}
	if _, err := s.svc.Set(ctx, "a", "1", cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.Set(ctx, "b", "2", cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.svc.Get(ctx, "a"); err != nil || v != "1" {
		t.Fatalf("Get a = %q, %v", v, err)
	}
	if n, err := s.svc.Del(ctx); err != nil || n != 0 {
		t.Errorf("Del() = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.svc.Del(ctx, "a", "b", "never-set"); err != nil || n != 2 {
		t.Errorf("Del(a, b, never-set) = %d, %v; want 2, nil", n, err)
	}
	if n, err := s.svc.Del(ctx, "a"); err != nil || n != 0 {
		t.Errorf("second Del(a) = %d, %v; want 0, nil", n, err)
	}
	if _, err := s.svc.Get(ctx, "b"); !errors.Is(err, cache.ErrMiss) {
		t.Errorf("Get after Del: err = %v, want ErrMiss", err)
	}
}

func TestRealRedisHash(t *testing.T) {
	s := itSharedService(t, config.ModeLambda, nil)
	ctx := itCtx(t)

	if n, err := s.svc.HSet(ctx, "h", "f1", "one"); err != nil || n != 1 {
		t.Fatalf("HSet new field = %d, %v; want 1", n, err)
	}
	if n, err := s.svc.HSet(ctx, "h", "f1", "uno"); err != nil || n != 0 {
		t.Fatalf("HSet existing field = %d, %v; want 0", n, err)
	}
	if _, err := s.svc.HSet(ctx, "h", "f2", "two"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.svc.HGet(ctx, "h", "f1"); err != nil || v != "uno" {
		t.Errorf("HGet f1 = %q, %v", v, err)
	}
	if _, err := s.svc.HGet(ctx, "h", "nope"); !errors.Is(err, cache.ErrMiss) {
		t.Errorf("HGet of a missing field: err = %v, want ErrMiss", err)
	}
	if _, err := s.svc.HGet(ctx, "nohash", "f"); !errors.Is(err, cache.ErrMiss) {
		t.Errorf("HGet of a missing key: err = %v, want ErrMiss", err)
	}
	m, err := s.svc.HGetAll(ctx, "h")
	if err != nil || len(m) != 2 || m["f1"] != "uno" || m["f2"] != "two" {
		t.Errorf("HGetAll = %v, %v", m, err)
	}
	m, err = s.svc.HGetAll(ctx, "nohash")
	if err != nil || m == nil || len(m) != 0 {
		t.Errorf("HGetAll of a missing key = %#v, %v; want an empty map", m, err)
	}
	if typ := s.raw.Type(ctx, s.prefix+"h").Val(); typ != "hash" {
		t.Errorf("TYPE %sh = %q, want hash", s.prefix, typ)
	}

	// A reply error from a working server is classified and does not open the breaker.
	if _, err := s.svc.Set(ctx, "str", "v", cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_, err := s.svc.HSet(ctx, "str", "f", "v")
		if got := cache.CauseOf(err); got != fault.CauseWrongType {
			t.Fatalf("HSet on a string: cause %q (%v), want wrong_type", got, err)
		}
	}
	if s.svc.BreakerOpen() || !s.svc.IsConnected() {
		t.Errorf("after WRONGTYPE replies: BreakerOpen=%v IsConnected=%v, want false, true",
			s.svc.BreakerOpen(), s.svc.IsConnected())
	}
}

func TestRealRedisSetWithExpiry(t *testing.T) {
	s := itSharedService(t, config.ModeLambda, nil)
	ctx := itCtx(t)

	if err := s.svc.SetWithExpiry(ctx, "e", "v", 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := itPTTL(t, s.raw, s.prefix+"e"); d <= 0 || d > 1500*time.Millisecond {
		t.Errorf("PTTL = %v, want in (0, 1.5s]", d)
	}
	if err := s.svc.SetWithExpiry(ctx, "z", "v", 0); err == nil {
		t.Error("SetWithExpiry with ttl 0: no error")
	}
	if _, found := itRawGet(t, s.raw, s.prefix+"z"); found {
		t.Error("SetWithExpiry with ttl 0 wrote the key")
	}
}

func TestRealRedisGetOrSet(t *testing.T) {
	s := itSharedService(t, config.ModeLambda, map[string]string{"CACHE_NEGATIVE_TTL": "5s"})
	ctx := itCtx(t)
	const ttl = 10 * time.Second
	jitter := s.cfg.Cache.TTLJitter

	var calls atomic.Int64
	fetch := func(context.Context) (string, error) {
		calls.Add(1)
		return `{"id":"p1"}`, nil
	}
	v, r, err := s.svc.GetOrSet(ctx, "p1", ttl, fetch)
	if err != nil || v != `{"id":"p1"}` || r.Outcome != cache.Miss {
		t.Fatalf("first GetOrSet = %q, %v, %v; want the value as a MISS", v, r.Outcome, err)
	}
	if r.StoreErr != nil {
		t.Fatalf("StoreErr = %v", r.StoreErr)
	}
	v, r, err = s.svc.GetOrSet(ctx, "p1", ttl, fetch)
	if err != nil || v != `{"id":"p1"}` || r.Outcome != cache.Hit {
		t.Fatalf("second GetOrSet = %q, %v, %v; want the value as a HIT", v, r.Outcome, err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("fetch ran %d times, want 1", n)
	}
	if _, found := itRawGet(t, s.raw, s.prefix+"p1:lease"); found {
		t.Error("the fill lease was not released after the fill")
	}

	t.Run("TTL jitter", func(t *testing.T) {
		if jitter <= 0 {
			t.Fatalf("CACHE_TTL_JITTER default is %v; the test needs jitter on", jitter)
		}
		lowest := time.Duration(float64(ttl) * (1 - jitter))
		seen := map[time.Duration]bool{}
		for i := range 20 {
			key := fmt.Sprintf("j%d", i)
			if _, _, err := s.svc.GetOrSet(ctx, key, ttl, fetch); err != nil {
				t.Fatal(err)
			}
			// Redis keeps the entry for the stale windows after its (jittered) TTL.
			d := itPTTL(t, s.raw, s.prefix+key) - s.cfg.Cache.StaleWhileRevalidate - s.cfg.Cache.StaleIfError
			// PTTL only shrinks after the write, so allow a second of it for a slow machine.
			if d > ttl || d < lowest-time.Second {
				t.Errorf("PTTL of %s = %v, want within [%v, %v]", key, d, lowest, ttl)
			}
			seen[d.Truncate(10*time.Millisecond)] = true
		}
		if len(seen) < 3 {
			t.Errorf("20 keys got only %d distinct TTLs: no jitter", len(seen))
		}
	})

	t.Run("negative caching", func(t *testing.T) {
		var n atomic.Int64
		notFound := func(context.Context) (string, error) {
			n.Add(1)
			return "", fmt.Errorf("product gone: %w", cache.ErrNotFound)
		}
		_, r, err := s.svc.GetOrSet(ctx, "gone", ttl, notFound)
		if !errors.Is(err, cache.ErrNotFound) || r.Outcome != cache.Miss {
			t.Fatalf("first = %v, %v; want ErrNotFound as a MISS", r.Outcome, err)
		}
		_, r, err = s.svc.GetOrSet(ctx, "gone", ttl, notFound)
		if !errors.Is(err, cache.ErrNotFound) || r.Outcome != cache.Hit {
			t.Fatalf("second = %v, %v; want ErrNotFound as a HIT", r.Outcome, err)
		}
		if n.Load() != 1 {
			t.Errorf("fetch ran %d times, want 1 (not found remembered)", n.Load())
		}
		if d := itPTTL(t, s.raw, s.prefix+"gone"); d <= 0 || d > 5*time.Second {
			t.Errorf("PTTL of the remembered not-found = %v, want within NegativeTTL (5s)", d)
		}
	})

	t.Run("fetch error not cached", func(t *testing.T) {
		boom := errors.New("source down")
		var n atomic.Int64
		failing := func(context.Context) (string, error) { n.Add(1); return "", boom }
		for range 2 {
			if _, _, err := s.svc.GetOrSet(ctx, "err", ttl, failing); !errors.Is(err, boom) {
				t.Fatalf("err = %v, want the fetch error", err)
			}
		}
		if n.Load() != 2 {
			t.Errorf("fetch ran %d times, want 2 (errors are not cached)", n.Load())
		}
		if _, found := itRawGet(t, s.raw, s.prefix+"err"); found {
			t.Error("a fetch error was stored")
		}
		if _, found := itRawGet(t, s.raw, s.prefix+"err:lease"); found {
			t.Error("the lease outlived a failed fetch")
		}
	})

	t.Run("wrong type entry is overwritten", func(t *testing.T) {
		if err := s.raw.HSet(ctx, s.prefix+"wt", "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		v, r, err := s.svc.GetOrSet(ctx, "wt", ttl, fetch)
		if err != nil || v != `{"id":"p1"}` || !r.Corrupt {
			t.Fatalf("GetOrSet over a hash = %q, %+v, %v; want the value, Corrupt", v, r, err)
		}
		if got, _ := itRawGet(t, s.raw, s.prefix+"wt"); got != `{"id":"p1"}` {
			t.Errorf("stored = %q, want it overwritten", got)
		}
	})
	st := s.svc.Stats()
	if st.Bypasses != 0 || st.BreakerOpens != 0 {
		t.Errorf("Stats = %+v, want no bypass and no breaker open", st)
	}
}

// itProduct is a product-shaped value for the JSON helpers.
type itProduct struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Price int64    `json:"price"`
	Tags  []string `json:"tags"`
}

func TestRealRedisJSON(t *testing.T) {
	s := itSharedService(t, config.ModeLambda, nil)
	ctx := itCtx(t)
	want := itProduct{ID: "p1", Name: "Mug", Price: 1299, Tags: []string{"kitchen", "gift"}}

	if _, err := cache.GetJSON[itProduct](ctx, s.svc, "nope"); !errors.Is(err, cache.ErrMiss) {
		t.Errorf("GetJSON of a missing key: err = %v, want ErrMiss", err)
	}
	if err := cache.SetJSON(ctx, s.svc, "j", want, time.Minute); err != nil {
		t.Fatal(err)
	}
	raw, _ := itRawGet(t, s.raw, s.prefix+"j")
	if !json.Valid([]byte(raw)) || !strings.Contains(raw, `"name":"Mug"`) {
		t.Errorf("stored %q, want the product as JSON", raw)
	}
	got, err := cache.GetJSON[itProduct](ctx, s.svc, "j")
	if err != nil || got.Name != want.Name || got.Price != want.Price || len(got.Tags) != 2 {
		t.Errorf("GetJSON = %+v, %v", got, err)
	}
	if err := s.raw.Set(ctx, s.prefix+"torn", `{"id":"p1","na`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.GetJSON[itProduct](ctx, s.svc, "torn"); !errors.Is(err, cache.ErrMiss) {
		t.Errorf("GetJSON of a torn value: err = %v, want ErrMiss", err)
	}

	var fetches atomic.Int64
	fetch := func(context.Context) (itProduct, error) { fetches.Add(1); return want, nil }

	t.Run("GetOrSetJSON", func(t *testing.T) {
		fetches.Store(0)
		p, r, err := cache.GetOrSetJSON(ctx, s.svc, "gj", time.Minute, fetch)
		if err != nil || r.Outcome != cache.Miss || p.Name != "Mug" {
			t.Fatalf("first = %+v, %v, %v", p, r.Outcome, err)
		}
		p, r, err = cache.GetOrSetJSON(ctx, s.svc, "gj", time.Minute, fetch)
		if err != nil || r.Outcome != cache.Hit || p.Name != "Mug" || p.Tags[1] != "gift" {
			t.Fatalf("second = %+v, %v, %v", p, r.Outcome, err)
		}
		if fetches.Load() != 1 {
			t.Errorf("fetch ran %d times, want 1", fetches.Load())
		}
		if err := s.raw.Set(ctx, s.prefix+"gj", `{"id":`, 0).Err(); err != nil {
			t.Fatal(err)
		}
		p, r, err = cache.GetOrSetJSON(ctx, s.svc, "gj", time.Minute, fetch)
		if err != nil || r.Outcome != cache.Miss || !r.Corrupt || p.Name != "Mug" {
			t.Fatalf("over a torn entry = %+v, %+v, %v; want a MISS marked Corrupt", p, r, err)
		}
		if stored, _ := itRawGet(t, s.raw, s.prefix+"gj"); !json.Valid([]byte(stored)) {
			t.Errorf("torn entry not overwritten: %q", stored)
		}
	})

	t.Run("GetOrSetRawJSON", func(t *testing.T) {
		fetches.Store(0)
		first, r, err := cache.GetOrSetRawJSON(ctx, s.svc, "rj", time.Minute, fetch)
		if err != nil || r.Outcome != cache.Miss || !json.Valid([]byte(first)) {
			t.Fatalf("first = %q, %v, %v", first, r.Outcome, err)
		}
		// A hit serves the stored bytes exactly, never re-encoded. Store a value whose
		// spacing no encoder would produce to see that.
		odd := `{ "id" : "p1", "name":"Mug" }`
		if err := s.raw.Set(ctx, s.prefix+"rj", cache.NewEntry(odd, time.Now().Add(time.Minute)), 0).Err(); err != nil {
			t.Fatal(err)
		}
		got, r, err := cache.GetOrSetRawJSON(ctx, s.svc, "rj", time.Minute, fetch)
		if err != nil || r.Outcome != cache.Hit || got != odd {
			t.Fatalf("hit = %q, %v, %v; want the stored text as is", got, r.Outcome, err)
		}
		if err := s.raw.Set(ctx, s.prefix+"rj", `{"id":"p1"`, 0).Err(); err != nil {
			t.Fatal(err)
		}
		got, r, err = cache.GetOrSetRawJSON(ctx, s.svc, "rj", time.Minute, fetch)
		if err != nil || r.Outcome != cache.Miss || !r.Corrupt || got != first {
			t.Fatalf("over a torn entry = %q, %+v, %v", got, r, err)
		}
		if stored, _ := itRawGet(t, s.raw, s.prefix+"rj"); stored != first {
			t.Errorf("torn entry not overwritten: %q", stored)
		}
		if fetches.Load() != 2 {
			t.Errorf("fetch ran %d times, want 2 (first fill and the torn entry)", fetches.Load())
		}
	})
}

func TestRealRedisKeysCarryPrefix(t *testing.T) {
	s := itSharedService(t, config.ModeLambda, nil)
	ctx := itCtx(t)
	ns := cache.Versioned("product", 3)
	id := ns.Key("p42")

	if _, err := s.svc.Set(ctx, id, "v", cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.HSet(ctx, "hash", "f", "v"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.svc.GetOrSet(ctx, "gos", time.Minute, func(context.Context) (string, error) { return "v", nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := s.svc.Key(id), s.prefix+"product:v3:p42"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
	for _, k := range []string{"product:v3:p42", "hash", "gos"} {
		if n := s.raw.Exists(ctx, s.prefix+k).Val(); n != 1 {
			t.Errorf("EXISTS %s%s = %d, want 1", s.prefix, k, n)
		}
	}
	if n := s.raw.Exists(ctx, "product:v3:p42", "gos").Val(); n != 0 {
		t.Errorf("%d keys were written without the prefix", n)
	}
	keys, err := s.raw.Keys(ctx, s.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Errorf("keys under the prefix = %v, want exactly the 3 written (no lease left behind)", keys)
	}
}

func TestRealRedisIsConnected(t *testing.T) {
	s := itSharedService(t, config.ModeLambda, nil)
	ctx := itCtx(t)
	if s.svc.IsConnected() {
		t.Error("IsConnected before any use = true; no command has had a reply")
	}
	if _, err := s.svc.Get(ctx, "x"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get: %v", err)
	}
	if !s.svc.IsConnected() {
		t.Error("IsConnected after a successful command = false")
	}
	if s.lazy.Builds() != 1 {
		t.Errorf("Builds = %d, want 1", s.lazy.Builds())
	}
	// The Service never closes its client; its owner does, and the holder builds a
	// fresh one on next use.
	if err := s.lazy.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.Get(ctx, "x"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get after Close: %v, want a fresh client and ErrMiss", err)
	}
	if s.lazy.Builds() != 2 || !s.svc.IsConnected() {
		t.Errorf("after reuse: Builds=%d IsConnected=%v, want 2, true", s.lazy.Builds(), s.svc.IsConnected())
	}
}

// TestRealRedisHTTPModeDedupe runs the long-lived HTTP configuration, where concurrent
// misses of one key in one process share a single fill.
func TestRealRedisHTTPModeDedupe(t *testing.T) {
	s := itSharedService(t, config.ModeHTTP, nil)
	ctx := itCtx(t)
	const callers = 20
	var fetches atomic.Int64
	release := make(chan struct{})
	fetch := func(context.Context) (string, error) {
		fetches.Add(1)
		<-release
		return "v", nil
	}
	var wg sync.WaitGroup
	results := make([]cache.Result, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			var v string
			v, results[i], errs[i] = s.svc.GetOrSet(ctx, "d", time.Minute, fetch)
			if errs[i] == nil && v != "v" {
				errs[i] = fmt.Errorf("got %q", v)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetch ran %d times, want 1", n)
	}
	st := s.svc.Stats()
	t.Logf("HTTP mode, %d concurrent misses: %+v", callers, st)
	if st.Hits+st.Misses != callers || st.Misses != 1 {
		t.Errorf("Stats = %+v, want 1 miss and %d hits", st, callers-1)
	}
}

// itKeysLike returns the keys of the shared server that start with prefix+key: the
// value, and any lease, whatever its layout.
func itKeysLike(tb testing.TB, s itShared, key string) []string {
	tb.Helper()
	keys, err := s.raw.Keys(context.Background(), s.prefix+key+"*").Result()
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// TestRealRedisFenceInvalidationWins is the classic cache-aside race: a fill fetches
// version 1, the product changes to version 2 and is invalidated while the fetch runs,
// then the fill tries to store. The invalidation must win: the fill's own caller (who
// asked before the change) gets version 1, nothing is stored, and a read that starts
// after the invalidation returned gets version 2. Each way of invalidating is tried.
func TestRealRedisFenceInvalidationWins(t *testing.T) {
	invalidations := map[string]func(ctx context.Context, svc *cache.Service, key string) error{
		"Del": func(ctx context.Context, svc *cache.Service, key string) error {
			_, err := svc.Del(ctx, key)
			return err
		},
		"Clear key": func(ctx context.Context, svc *cache.Service, key string) error {
			_, err := svc.Clear(ctx, key)
			return err
		},
		"Clear *": func(ctx context.Context, svc *cache.Service, _ string) error {
			_, err := svc.Clear(ctx, "*")
			return err
		},
		"Clear fence": func(ctx context.Context, svc *cache.Service, key string) error {
			_, err := svc.Clear(ctx, "fence*")
			return err
		},
	}
	for name, invalidate := range invalidations {
		t.Run(name, func(t *testing.T) {
			s := itSharedService(t, config.ModeLambda, nil)
			ctx := itCtx(t)
			var version atomic.Int64
			version.Store(1)
			fetch := func(context.Context) (string, error) { return fmt.Sprintf("v%d", version.Load()), nil }
			fetching, proceed := make(chan struct{}), make(chan struct{})
			filler := make(chan stCall, 1)
			go func() {
				v, r, err := s.svc.GetOrSet(ctx, "fence", time.Minute, func(ctx context.Context) (string, error) {
					v, err := fetch(ctx)
					close(fetching)
					<-proceed
					return v, err
				})
				filler <- stCall{val: v, res: r, err: err}
			}()
			<-fetching
			version.Store(2)
			if err := invalidate(ctx, s.svc, "fence"); err != nil {
				t.Fatalf("invalidate: %v", err)
			}
			close(proceed)
			c := <-filler
			if c.err != nil || c.val != "v1" {
				t.Fatalf("the filling caller got %q, %v; want its own fetch, v1", c.val, c.err)
			}
			if keys := itKeysLike(t, s, "fence"); len(keys) != 0 {
				v, _ := itRawGet(t, s.raw, s.prefix+"fence")
				t.Fatalf("after the invalidation the fill left %v (value %q): it stored over the invalidation", keys, v)
			}
			v, r, err := s.svc.GetOrSet(ctx, "fence", time.Minute, fetch)
			if err != nil || v != "v2" || r.Outcome != cache.Miss {
				t.Fatalf("read after the invalidation = %q, %v, %v; want a MISS of v2", v, r.Outcome, err)
			}
			if st := s.svc.Stats(); st.FenceLost != 1 {
				t.Errorf("FenceLost = %d, want 1", st.FenceLost)
			}
		})
	}
}

// TestRealRedisLeaseReleasedWhenCallerLeaves: under Lambda a caller whose invocation
// ends mid-fetch must not leave its lease behind, or the next invocation for the key
// would wait for it (up to LeaseTTL) instead of filling at once.
func TestRealRedisLeaseReleasedWhenCallerLeaves(t *testing.T) {
	s := itSharedService(t, config.ModeLambda, nil)
	ctx := itCtx(t)
	callCtx, leave := context.WithCancel(ctx)
	_, _, err := s.svc.GetOrSet(callCtx, "left", time.Minute, func(ctx context.Context) (string, error) {
		leave()
		<-ctx.Done()
		return "", ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that left got %v", err)
	}
	if keys := itKeysLike(t, s, "left"); len(keys) != 0 {
		t.Fatalf("keys left behind: %v", keys)
	}
	before := s.svc.Stats()
	v, r, err := s.svc.GetOrSet(ctx, "left", time.Minute, func(context.Context) (string, error) { return "v", nil })
	if err != nil || v != "v" || r.Outcome != cache.Miss || r.Waited != 0 || s.svc.Stats().LeaseWaits != before.LeaseWaits {
		t.Fatalf("next call = %q, %+v, %v; want an immediate MISS without waiting on a lease", v, r, err)
	}
}

// TestRealRedisDedupeHangUp is issue 9's hang-up in the HTTP mode: the caller whose
// miss started the shared fill hangs up; every other caller still gets the value (not
// an error, and counted as what it was), nothing but the value is left in Redis, and
// the next call is a HIT without waiting.
func TestRealRedisDedupeHangUp(t *testing.T) {
	s := itSharedService(t, config.ModeHTTP, nil)
	ctx := itCtx(t)
	leaderCtx, hangUp := context.WithCancel(ctx)
	fetching, release := make(chan struct{}), make(chan struct{})
	var fetches atomic.Int64
	// The fetch gives up when its context ends, as a real source client does.
	fetch := func(ctx context.Context) (string, error) {
		if fetches.Add(1) == 1 {
			close(fetching)
			select {
			case <-release:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		return "v", nil
	}
	leader := make(chan stCall, 1)
	go func() {
		v, r, err := s.svc.GetOrSet(leaderCtx, "hang", time.Minute, fetch)
		leader <- stCall{val: v, res: r, err: err}
	}()
	<-fetching
	const others = 8
	results := make(chan stCall, others)
	for range others {
		go func() {
			v, r, err := s.svc.GetOrSet(ctx, "hang", time.Minute, fetch)
			results <- stCall{val: v, res: r, err: err}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for cache.Waiting(s.svc, "hang") != others+1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d callers attached", cache.Waiting(s.svc, "hang"))
		}
		time.Sleep(time.Millisecond)
	}
	hangUp()
	if c := <-leader; !errors.Is(c.err, context.Canceled) {
		t.Fatalf("the caller that hung up got %q, %v", c.val, c.err)
	}
	close(release)
	for range others {
		c := <-results
		if c.err != nil || c.val != "v" || c.res.Outcome != cache.Hit {
			t.Errorf("another caller got %q, %v, %v; want the stored value as a HIT", c.val, c.res.Outcome, c.err)
		}
	}
	if keys := itKeysLike(t, s, "hang"); len(keys) != 1 {
		t.Fatalf("keys = %v, want only the value", keys)
	}
	if v, _ := itRawGet(t, s.raw, s.prefix+"hang"); v != "v" {
		t.Fatalf("key holds %q, want the value", v)
	}
	v, r, err := s.svc.GetOrSet(ctx, "hang", time.Minute, fetch)
	if err != nil || v != "v" || r.Outcome != cache.Hit || r.Waited != 0 || fetches.Load() != 1 {
		t.Fatalf("next call = %q, %+v, %v (fetches %d); want an immediate HIT", v, r, err, fetches.Load())
	}
}

// TestRealRedisNegativeEntryIsSmall: an unknown id costs one small entry that expires:
// the smallest value (one byte), the negative TTL, and a key as long as the id.
func TestRealRedisNegativeEntryIsSmall(t *testing.T) {
	s := itSharedService(t, config.ModeLambda, nil)
	ctx := itCtx(t)
	missing := func(context.Context) (string, error) { return "", fmt.Errorf("no such id: %w", cache.ErrNotFound) }
	if _, _, err := s.svc.GetOrSet(ctx, "product:v1:prod-0001", time.Minute, missing); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("GetOrSet of an unknown id: %v", err)
	}
	full := s.prefix + "product:v1:prod-0001"
	n, err := s.raw.StrLen(ctx, full).Result()
	if err != nil || n != 1 {
		t.Fatalf("the negative entry's value is %d bytes (%v), want 1", n, err)
	}
	if ttl := itPTTL(t, s.raw, full); ttl <= 0 || ttl > s.cfg.Cache.NegativeTTL {
		t.Errorf("negative entry PTTL %v, want (0, %v]", ttl, s.cfg.Cache.NegativeTTL)
	}
	mem, err := s.raw.MemoryUsage(ctx, full).Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one negative entry: key %d bytes, value %d byte, MEMORY USAGE %d bytes", len(full), n, mem)
	if _, _, err := s.svc.GetOrSet(ctx, "product:v1:prod-0001", time.Minute, func(context.Context) (string, error) {
		t.Error("the remembered not-found was fetched again")
		return "", nil
	}); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("second GetOrSet: %v, want the remembered ErrNotFound", err)
	}
}
