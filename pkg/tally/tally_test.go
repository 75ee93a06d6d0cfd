package tally_test

import (
	"context"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/tally"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestKeyOutsideThePrefix: New keeps the figures at the key it is given, whole, so a
// caller can keep them out of the cache's prefix, where Clear cannot reach them.
func TestKeyOutsideThePrefix(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	svc := cache.New(cache.Fixed(rdb), cache.Options{Prefix: "shop:dev:", OpTimeout: time.Second})
	const key = "shop:dev#stats:test"
	tl := tally.New(svc, key, 1, time.Hour)
	ctx := context.Background()
	tl.Record(ctx, cache.Hit)
	tl.Record(ctx, cache.Miss)
	if got := mr.Keys(); len(got) != 1 || got[0] != key {
		t.Fatalf("keys %v, want only %s", got, key)
	}
	mr.Set("shop:dev:product:v1:a", "x")
	if n, err := svc.Clear(ctx, "*"); err != nil || n != 1 {
		t.Fatalf("Clear = %d, %v; want the one entry", n, err)
	}
	c, err := tl.Read(ctx)
	if err != nil || c != (tally.Counts{Hits: 1, Misses: 1}) {
		t.Fatalf("Read after Clear = %+v, %v; want 1 hit and 1 miss", c, err)
	}
}

// TestEveryOutcomeCounted: each outcome lands in its own field, and the hit ratio
// counts stale answers as answered from Redis.
func TestEveryOutcomeCounted(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	svc := cache.New(cache.Fixed(rdb), cache.Options{Prefix: "shop:dev:", OpTimeout: time.Second})
	tl := tally.New(svc, "shop:dev#stats:test", 100, time.Hour)
	ctx := context.Background()
	for o, n := range map[cache.Outcome]int{cache.Hit: 5, cache.Miss: 2, cache.Bypass: 1, cache.Stale: 2, 0: 3, cache.Stale + 1: 1} {
		for range n {
			tl.Record(ctx, o)
		}
	}
	if err := tl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := tl.Read(ctx)
	if want := (tally.Counts{Hits: 5, Misses: 2, Bypasses: 1, Stale: 2}); err != nil || c != want {
		t.Fatalf("Read = %+v, %v; want %+v", c, err, want)
	}
	if r := c.HitRatio(); r != 0.7 {
		t.Fatalf("HitRatio = %v, want 0.7 (7 of 10 from Redis)", r)
	}
}
