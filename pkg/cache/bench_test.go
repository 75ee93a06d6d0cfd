package cache_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/paired"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/redisclient"
	"github.com/redis/go-redis/v9"
)

// benchProduct has the shape of the store's product; benchValue encodes to about 1 KB.
type benchProduct struct {
	ID          string `json:"id"`
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Price       struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	} `json:"price"`
	Stock     int       `json:"stock"`
	Category  string    `json:"category"`
	Images    []string  `json:"images"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func benchValue(tb testing.TB) (benchProduct, string) {
	tb.Helper()
	p := benchProduct{
		ID: "prod-0042", SKU: "KIT-CB-4242", Name: "Copperfield Signature Cold Brew Kettle",
		Description: "The Copperfield kettle keeps things simple for slow mornings. It is made from " +
			"brushed stainless steel chosen to last for years. A double wall keeps coffee cold for " +
			"twelve hours and the outside dry. The fine mesh filter lifts out in one piece for " +
			"cleaning. It comes with a short guide to a first week of brews, from a light Ethiopian " +
			"to a dark Sumatran. The lid seals with a quarter turn, so it travels in a bag without " +
			"a drop spilled. Free returns within thirty days. Backed by a 5-year warranty.",
		Stock: 17, Category: "kitchen",
		Images: []string{
			"https://images.acmestore.example/products/prod-0042/front.jpg",
			"https://images.acmestore.example/products/prod-0042/side.jpg",
			"https://images.acmestore.example/products/prod-0042/detail.jpg",
			"https://images.acmestore.example/products/prod-0042/back.jpg",
		},
		UpdatedAt: time.Date(2025, 10, 11, 5, 11, 0, 0, time.UTC),
	}
	p.Price.Amount, p.Price.Currency = 6450, "USD"
	b, err := json.Marshal(p)
	if err != nil {
		tb.Fatal(err)
	}
	return p, string(b)
}

// benchEnv is a production-shaped Service (Lambda mode config, lazy client, breaker
// and counters on) and a raw go-redis client built from the same options, both on the
// shared Redis, with the product stored under key.
type benchEnv struct {
	svc     *cache.Service
	raw     redis.UniversalClient
	key     string // without the prefix, for the Service
	fullKey string // with it, for the raw client
	product benchProduct
	value   string
}

func benchSetup(b *testing.B) benchEnv {
	b.Helper()
	addr := redistest.SharedAddr(b)
	prefix := redistest.Prefix(b)
	itDeletePrefix(b, addr, prefix)
	// Lambda defaults except a 1 s read timeout: a shared CI machine sometimes stalls a
	// process for more than the default 250 ms, and the timeout's value does not change
	// the code path being measured.
	cfg := itConfig(b, addr, prefix, config.ModeLambda, map[string]string{"REDIS_READ_TIMEOUT": "1s"})
	svc, _ := itService(b, cfg)
	opts, err := redisclient.Options(cfg.Redis)
	if err != nil {
		b.Fatal(err)
	}
	raw := redis.NewUniversalClient(opts)
	b.Cleanup(func() { _ = raw.Close() })
	p, v := benchValue(b)
	e := benchEnv{svc: svc, raw: raw, key: "product:v1:prod-0042", product: p, value: v}
	e.fullKey = svc.Key(e.key)
	ctx := context.Background()
	if err := raw.Set(ctx, e.fullKey, v, time.Hour).Err(); err != nil {
		b.Fatal(err)
	}
	// Warm both pools so no benchmark pays a dial.
	if err := raw.Get(ctx, e.fullKey).Err(); err != nil {
		b.Fatal(err)
	}
	if _, err := svc.Get(ctx, e.key); err != nil {
		b.Fatal(err)
	}
	return e
}

func (e benchEnv) rawGet(ctx context.Context) error {
	_, err := e.raw.Get(ctx, e.fullKey).Result()
	return err
}

func (e benchEnv) fetchString(context.Context) (string, error) { return e.value, nil }

func (e benchEnv) fetchProduct(context.Context) (benchProduct, error) { return e.product, nil }

func BenchmarkRawGet(b *testing.B) {
	e := benchSetup(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.rawGet(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServiceGet(b *testing.B) {
	e := benchSetup(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.Get(ctx, e.key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetOrSetHit(b *testing.B) {
	e := benchSetup(b)
	ctx := context.Background()
	fetch := e.fetchString
	b.ReportAllocs()
	for b.Loop() {
		if _, r, err := e.svc.GetOrSet(ctx, e.key, time.Hour, fetch); err != nil || r.Outcome != cache.Hit {
			b.Fatal(r.Outcome, err)
		}
	}
}

func BenchmarkGetOrSetJSONHit(b *testing.B) {
	e := benchSetup(b)
	ctx := context.Background()
	fetch := e.fetchProduct
	b.ReportAllocs()
	for b.Loop() {
		if p, r, err := cache.GetOrSetJSON(ctx, e.svc, e.key, time.Hour, fetch); err != nil || r.Outcome != cache.Hit || p.ID == "" {
			b.Fatal(r.Outcome, err)
		}
	}
}

func BenchmarkGetOrSetRawJSONHit(b *testing.B) {
	e := benchSetup(b)
	ctx := context.Background()
	fetch := e.fetchProduct
	b.ReportAllocs()
	for b.Loop() {
		if _, r, err := cache.GetOrSetRawJSON(ctx, e.svc, e.key, time.Hour, fetch); err != nil || r.Outcome != cache.Hit {
			b.Fatal(r.Outcome, err)
		}
	}
}

func BenchmarkSet(b *testing.B) {
	e := benchSetup(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.Set(ctx, e.key, e.value, cache.SetOptions{TTL: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
}

func errIfNotHit(r cache.Result, err error) error {
	if err != nil {
		return err
	}
	if r.Outcome != cache.Hit {
		return errNotHit{r.Outcome}
	}
	return nil
}

type errNotHit struct{ o cache.Outcome }

func (e errNotHit) Error() string { return "outcome " + e.o.String() + ", want HIT" }

func BenchmarkPaired(b *testing.B) {
	ctx := context.Background()
	b.Run("RawVsRaw", func(b *testing.B) {
		// The control: both halves are the same raw GET, so the ratio should be ~1.00;
		// how far it strays is the noise floor of the other pairs.
		e := benchSetup(b)
		paired.Run(b, func() error { return e.rawGet(ctx) }, func() error { return e.rawGet(ctx) })
	})
	b.Run("ServiceGet", func(b *testing.B) {
		e := benchSetup(b)
		paired.Run(b, func() error { return e.rawGet(ctx) }, func() error {
			_, err := e.svc.Get(ctx, e.key)
			return err
		})
	})
	b.Run("GetOrSetHit", func(b *testing.B) {
		e := benchSetup(b)
		fetch := e.fetchString
		paired.Run(b, func() error { return e.rawGet(ctx) }, func() error {
			_, r, err := e.svc.GetOrSet(ctx, e.key, time.Hour, fetch)
			return errIfNotHit(r, err)
		})
	})
	b.Run("GetOrSetJSONHit", func(b *testing.B) {
		// Raw side: what a caller of go-redis does by hand, GET then json.Unmarshal.
		e := benchSetup(b)
		fetch := e.fetchProduct
		paired.Run(b, func() error {
			s, err := e.raw.Get(ctx, e.fullKey).Result()
			if err != nil {
				return err
			}
			var p benchProduct
			return json.Unmarshal([]byte(s), &p)
		}, func() error {
			_, r, err := cache.GetOrSetJSON(ctx, e.svc, e.key, time.Hour, fetch)
			return errIfNotHit(r, err)
		})
	})
	b.Run("GetOrSetRawJSONHit", func(b *testing.B) {
		// Raw side: a bare GET, without even the wholeness check the wrapper does.
		e := benchSetup(b)
		fetch := e.fetchProduct
		paired.Run(b, func() error { return e.rawGet(ctx) }, func() error {
			_, r, err := cache.GetOrSetRawJSON(ctx, e.svc, e.key, time.Hour, fetch)
			return errIfNotHit(r, err)
		})
	})
	b.Run("Set", func(b *testing.B) {
		e := benchSetup(b)
		paired.Run(b, func() error {
			return e.raw.Set(ctx, e.fullKey, e.value, time.Hour).Err()
		}, func() error {
			_, err := e.svc.Set(ctx, e.key, e.value, cache.SetOptions{TTL: time.Hour})
			return err
		})
	})
}
