package cache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// exampleService runs the examples against an in-memory Redis so they pass anywhere.
func exampleService() (*cache.Service, func()) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	svc := cache.New(cache.Fixed(rdb), cache.Options{Prefix: "shop:", LeaseWait: time.Second, NegativeTTL: 30 * time.Second})
	return svc, func() { _ = rdb.Close(); mr.Close() }
}

func ExampleService_GetOrSet() {
	svc, done := exampleService()
	defer done()
	ctx := context.Background()
	key := cache.Versioned("greeting", 1).Key("en")
	fetch := func(context.Context) (string, error) { return "hello", nil }

	for range 2 {
		v, res, err := svc.GetOrSet(ctx, key, time.Minute, fetch)
		fmt.Println(v, res.Outcome, err)
	}
	fmt.Println(svc.Key(key))
	// Output:
	// hello MISS <nil>
	// hello HIT <nil>
	// shop:greeting:v1:en
}

func ExampleGetOrSetJSON() {
	svc, done := exampleService()
	defer done()
	type Product struct {
		ID    string `json:"id"`
		Price int64  `json:"price"`
	}
	load := func(context.Context) (Product, error) { return Product{ID: "prod-0001", Price: 1999}, nil }

	p, res, err := cache.GetOrSetJSON(context.Background(), svc, "product:v1:prod-0001", 10*time.Minute, load)
	fmt.Printf("%+v %v %v\n", p, res.Outcome, err)
	// Output:
	// {ID:prod-0001 Price:1999} MISS <nil>
}

func ExampleGetOrSetRawJSON() {
	svc, done := exampleService()
	defer done()
	type Product struct {
		ID string `json:"id"`
	}
	load := func(context.Context) (Product, error) { return Product{ID: "prod-0002"}, nil }
	ctx := context.Background()

	_, _, _ = cache.GetOrSetRawJSON(ctx, svc, "product:v1:prod-0002", time.Minute, load)
	body, res, _ := cache.GetOrSetRawJSON(ctx, svc, "product:v1:prod-0002", time.Minute, load)
	fmt.Println(body, res.Outcome) // the stored bytes, ready to write to the response
	// Output:
	// {"id":"prod-0002"} HIT
}

func ExampleService_GetOrSet_notFound() {
	svc, done := exampleService()
	defer done()
	missing := func(context.Context) (string, error) { return "", fmt.Errorf("prod-9999: %w", cache.ErrNotFound) }

	for range 2 {
		_, res, err := svc.GetOrSet(context.Background(), "product:v1:prod-9999", time.Minute, missing)
		fmt.Println(res.Outcome, errors.Is(err, cache.ErrNotFound))
	}
	// Output:
	// MISS true
	// HIT true
}

func ExampleService_Get() {
	svc, done := exampleService()
	defer done()
	ctx := context.Background()

	_, err := svc.Get(ctx, "session:42")
	fmt.Println(errors.Is(err, cache.ErrMiss))

	_ = svc.SetWithExpiry(ctx, "session:42", "alice", time.Hour)
	v, _ := svc.Get(ctx, "session:42")
	fmt.Println(v)
	// Output:
	// true
	// alice
}

func ExampleService_Set() {
	svc, done := exampleService()
	defer done()
	ctx := context.Background()

	first, _ := svc.Set(ctx, "lock:job", "worker-1", cache.SetOptions{NX: true, TTL: 30 * time.Second})
	second, _ := svc.Set(ctx, "lock:job", "worker-2", cache.SetOptions{NX: true, TTL: 30 * time.Second})
	fmt.Println(first, second)
	// Output:
	// true false
}
