package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/telemetry"
	"github.com/caarlos0/env/v10"
	"github.com/redis/go-redis/v9"
)

// sharedRedis returns a client of the shared Redis (REDIS_TEST_ADDR, else
// 127.0.0.1:6379) and a random prefix whose keys are removed when the test ends, and
// sets the tool's environment to them. Without a Redis the test skips, or fails with
// CI set. (pkg/internal/redistest does this for pkg/; scripts/ cannot import it.)
func sharedRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := os.Getenv("REDIS_TEST_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("no Redis at %s (%v) (required when CI is set)", addr, err)
		}
		t.Skipf("no Redis at %s (%v): skipping; set CI=1 to make this a failure", addr, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "test:" + hex.EncodeToString(b[:]) + ":dev:"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		_ = rdb.Del(ctx, append(keys, api.TallyKey(prefix))...).Err()
		_ = rdb.Close()
	})
	t.Setenv("REDIS_URL", "redis://"+addr)
	t.Setenv("CACHE_KEY_PREFIX", prefix)
	return rdb, prefix
}

// checkLeftovers fails for a product entry left under prefix, or any key left there
// without a TTL, and returns the TTL of the application's figures.
func checkLeftovers(t *testing.T, rdb *redis.Client, prefix string) time.Duration {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+"*").Result() // a private random prefix
	if err != nil {
		t.Fatal(err)
	}
	var products, forever []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix+"product:") || strings.HasPrefix(k, prefix+"load:") {
			products = append(products, k)
		}
		if ttl, _ := rdb.PTTL(ctx, k).Result(); ttl < 0 {
			forever = append(forever, k)
		}
	}
	if len(products) > 0 {
		t.Errorf("%d product entries left under the prefix, e.g. %s", len(products), products[0])
	}
	if len(forever) > 0 {
		t.Errorf("keys left without a TTL: %q", forever)
	}
	ttl, _ := rdb.PTTL(ctx, api.TallyKey(prefix)).Result()
	return ttl
}

// TestTidiesUpLambdaMode runs the lambda mode, with misses, under a prefix it is given:
// nothing it wrote may stay without a TTL.
func TestTidiesUpLambdaMode(t *testing.T) {
	rdb, prefix := sharedRedis(t)
	args := []string{"-mode", "lambda", "-c", "2", "-n", "300", "-hit-ratio", "0.8", "-event", "../../events/getproduct.v2.json"}
	if err := run(args, io.Discard); err != nil {
		t.Fatal(err)
	}
	if ttl := checkLeftovers(t, rdb, prefix); ttl <= 0 || ttl > leftTTL {
		t.Errorf("the application's figures: TTL %v, want at most %v", ttl, leftTTL)
	}
}

// TestTidiesUpHTTPMode drives a server of the application, as the README's command
// does, and stops it after the run: its figures, written at shutdown after the tool
// tidied up, keep their TTL.
func TestTidiesUpHTTPMode(t *testing.T) {
	rdb, prefix := sharedRedis(t)
	cfg, err := config.Parse(env.ToMap(os.Environ()), config.ModeHTTP)
	if err != nil {
		t.Fatal(err)
	}
	server, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	a := server.API
	srv := httptest.NewServer(app.Handler(app.All, a, telemetry.NewLogger(io.Discard, nil)))
	defer srv.Close()
	if err := run([]string{"-mode", "http", "-url", srv.URL, "-c", "4", "-n", "300", "-hit-ratio", "0.8"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	// More requests and the server's shutdown, after the tool is done.
	for range 3 {
		r, err := srv.Client().Get(srv.URL + "/products/prod-0001")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
	}
	if err := a.Tally.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := a.Tally.Read(context.Background())
	if err != nil || c.Hits+c.Misses == 0 {
		t.Fatalf("the server's figures: %+v %v", c, err)
	}
	// prod-0001, filled again by the requests above, is the server's own entry.
	if err := rdb.Unlink(context.Background(), prefix+api.ProductKeys.Key("prod-0001")).Err(); err != nil {
		t.Fatal(err)
	}
	if ttl := checkLeftovers(t, rdb, prefix); ttl <= 0 || ttl > leftTTL {
		t.Errorf("the application's figures: TTL %v, want at most %v", ttl, leftTTL)
	}
}

// TestTidyOnly: -tidy drives nothing and tidies up after another tool's run (as
// scripts/bench-http uses it): the product entries under the prefix go, the
// application's figures get their TTL, and other keys under the prefix stay. Without
// CACHE_KEY_PREFIX it refuses, rather than tidy up a random prefix of its own.
func TestTidyOnly(t *testing.T) {
	rdb, prefix := sharedRedis(t)
	ctx := context.Background()
	for _, id := range []string{"prod-0001", "prod-0500"} {
		if err := rdb.Set(ctx, prefix+api.ProductKeys.Key(id), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.HSet(ctx, api.TallyKey(prefix), "hits", 3).Err(); err != nil {
		t.Fatal(err)
	}
	other := prefix + "not-a-product"
	if err := rdb.Set(ctx, other, "keep", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-tidy"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if ttl := checkLeftovers(t, rdb, prefix); ttl <= 0 || ttl > leftTTL {
		t.Errorf("the application's figures: TTL %v, want at most %v", ttl, leftTTL)
	}
	if n, _ := rdb.Exists(ctx, other).Result(); n != 1 {
		t.Error("-tidy removed a key that is not a product entry")
	}
	t.Setenv("CACHE_KEY_PREFIX", "")
	if err := run([]string{"-tidy"}, io.Discard); err == nil || !strings.Contains(err.Error(), "CACHE_KEY_PREFIX") {
		t.Errorf("-tidy without CACHE_KEY_PREFIX: %v, want a refusal naming it", err)
	}
}
