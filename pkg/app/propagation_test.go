package app_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// BenchmarkChangePropagation measures, in the HTTP mode with the App's own listener,
// how long a committed UPDATE takes to leave Redis: from the moment the commit
// returns to the writer until the product's key is gone, watched by a client that
// polls EXISTS without pause. Each iteration is one change of a product that was
// cached (a HIT just before), and the read after it must be a MISS that returns the
// new value. Run it with -benchtime=1000x for the README's figure:
//
//	go test ./pkg/app -run '^$' -bench ChangePropagation -benchtime 1000x
func BenchmarkChangePropagation(b *testing.B) {
	_, dbURL := pgtest.Seeded(b)
	addr, prefix, rdb := sharedRedis(b)
	a := newApp(b, map[string]string{
		"REDIS_URL": "redis://" + addr, "CACHE_KEY_PREFIX": prefix, "DATABASE_URL": dbURL,
	}, config.ModeHTTP)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)

	update := func(id string) int64 {
		var stock int64
		if err := conn.QueryRow(ctx, `UPDATE products SET stock = stock + 1 WHERE id = $1 RETURNING stock`, id).Scan(&stock); err != nil {
			b.Fatal(err)
		}
		return stock
	}
	gone := func(key string, limit time.Duration) bool {
		deadline := time.Now().Add(limit)
		for rdb.Exists(ctx, key).Val() == 1 {
			if time.Now().After(deadline) {
				return false
			}
		}
		return true
	}
	// The listener connects in the background: wait until a change is heard.
	warm := prefix + api.ProductKeys.Key("prod-1000")
	for !func() bool { get(b, a, "prod-1000"); update("prod-1000"); return gone(warm, 500*time.Millisecond) }() {
	}

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("prod-%04d", i%999+1)
		key := prefix + api.ProductKeys.Key(id)
		get(b, a, id)
		if _, xc := get(b, a, id); xc != "HIT" {
			b.Fatalf("%s: X-Cache %s before the change, want HIT", id, xc)
		}
		stock := update(id)
		committed := time.Now()
		if !gone(key, 10*time.Second) {
			b.Fatalf("%s: still in Redis 10 s after the commit", id)
		}
		lat = append(lat, time.Since(committed))
		p, xc := get(b, a, id)
		if xc != "MISS" || int64(p.Stock) != stock {
			b.Fatalf("%s: after the change X-Cache %s stock %d, want MISS and %d", id, xc, p.Stock, stock)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
