package cache_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// BenchmarkL1 compares, on the same Redis and the same ~1 KB value: a raw go-redis GET
// (what every hit costs without L1), the barrier alone (the round trip the Lambda
// setting makes before every read), a GetOrSet hit from L1 in the HTTP setting, and
// one in the Lambda setting (barrier plus hit).
//
//	go test ./pkg/cache -run '^$' -bench L1 -benchtime 20000x -count 3
func BenchmarkL1(b *testing.B) {
	addr := redistest.SharedAddr(b)
	prefix := redistest.Prefix(b)
	itDeletePrefix(b, addr, prefix)
	raw := itRaw(b, addr, "")
	value := strings.Repeat("x", 1000)
	ctx := context.Background()
	if err := raw.Set(ctx, prefix+"p:1", cache.NewEntry(value, time.Now().Add(time.Hour)), time.Minute).Err(); err != nil {
		b.Fatal(err)
	}
	b.Run("raw-GET", func(b *testing.B) {
		for b.Loop() {
			if err := raw.Get(ctx, prefix+"p:1").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("barrier", func(b *testing.B) {
		tr := redis.NewClient(&redis.Options{Addr: addr, Protocol: 3, PoolSize: 1,
			ClientSideCacheConfig: &redis.ClientSideCacheConfig{DrainInterval: time.Millisecond}})
		defer tr.Close()
		for b.Loop() {
			if err := tr.Do(ctx, "CLIENT", "TRACKINGINFO").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, m := range []struct {
		name string
		mode config.Mode
	}{{"GetOrSet-L1-http", config.ModeHTTP}, {"GetOrSet-L1-lambda", config.ModeLambda}} {
		b.Run(m.name, func(b *testing.B) {
			svc, _ := l1Service(b, addr, prefix, m.mode, map[string]string{"CACHE_L1_MAX_STALENESS": "50ms"})
			l1Warm(b, svc, "p:1")
			fetch := func(context.Context) (string, error) { return value, nil }
			for b.Loop() {
				if _, _, err := svc.GetOrSet(ctx, "p:1", time.Minute, fetch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(svc.Stats().L1Hits)/float64(b.N), "L1hits/op")
		})
	}
}
