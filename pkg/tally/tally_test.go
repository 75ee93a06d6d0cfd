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
