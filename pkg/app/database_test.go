package app_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/pgtest"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/internal/secrettest"
	"github.com/acmestore/storeapi/pkg/postgres"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// get asks a's getProduct handler for id and returns the product and X-Cache.
func get(tb testing.TB, a *app.App, id string) (product.Product, string) {
	tb.Helper()
	w := httptest.NewRecorder()
	a.API.GetProduct().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/products/"+id, nil))
	if w.Code != http.StatusOK {
		tb.Fatalf("GET /products/%s: %d %s", id, w.Code, w.Body)
	}
	var p product.Product
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		tb.Fatal(err)
	}
	return p, w.Header().Get("X-Cache")
}

// In the HTTP mode, with DATABASE_URL set, products come from PostgreSQL and a change
// made with psql leaves Redis through the App's listener: the cached entry is
// removed, and the next read is a MISS that returns the new price.
func TestPostgresChangeLeavesRedisThroughTheListener(t *testing.T) {
	_, dbURL := pgtest.Seeded(t)
	addr, prefix, rdb := sharedRedis(t)
	a := newApp(t, map[string]string{
		"REDIS_URL": "redis://" + addr, "CACHE_KEY_PREFIX": prefix, "DATABASE_URL": dbURL,
	}, config.ModeHTTP)

	if _, ok := a.API.Source.(*postgres.Source); !ok {
		t.Fatalf("source is %T, want the PostgreSQL source", a.API.Source)
	}
	before, xc := get(t, a, "prod-0003")
	if xc != "MISS" {
		t.Fatalf("first read: X-Cache %s", xc)
	}
	if _, xc := get(t, a, "prod-0003"); xc != "HIT" {
		t.Fatalf("second read: X-Cache %s", xc)
	}
	key := prefix + api.ProductKeys.Key("prod-0003")
	if n := rdb.Exists(context.Background(), key).Val(); n != 1 {
		t.Fatalf("%s not in Redis after a read", key)
	}
	// The listener connects in the background: until it listens, a change goes
	// unheard, so the change is repeated every half second until one is heard.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; rdb.Exists(context.Background(), key).Val() == 1; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the change never left Redis")
		}
		if i%100 == 0 {
			pgtest.Psql(t, dbURL, `UPDATE products SET price_amount = price_amount + 100 WHERE id = 'prod-0003'`)
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := pgtest.Psql(t, dbURL, `SELECT price_amount FROM products WHERE id = 'prod-0003'`)
	after, xc := get(t, a, "prod-0003")
	if xc != "MISS" || strconv.FormatInt(after.Price.Amount, 10) != want || after.Price.Amount <= before.Price.Amount {
		t.Fatalf("after the change: X-Cache %s, price %d; want MISS and %s (was %d)", xc, after.Price.Amount, want, before.Price.Amount)
	}
}

// Under Lambda nothing touches the database before the first request needs it (no
// INIT I/O, no listener), the pool holds one connection, and Close closes it.
func TestPostgresUnderLambdaDialsLazilyWithOneConnection(t *testing.T) {
	_, dbURL := pgtest.Seeded(t)
	addr, prefix, _ := sharedRedis(t)

	// A proxy in front of PostgreSQL counts connections.
	target, err := net.ResolveTCPAddr("tcp", "127.0.0.1:5432")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepts atomic.Int64
	go forward(ln, target.String(), &accepts)
	defer ln.Close()
	proxied := replaceHost(t, dbURL, ln.Addr().String())

	cfg, err := config.Parse(map[string]string{
		"REDIS_URL": "redis://" + addr, "CACHE_KEY_PREFIX": prefix, "DATABASE_URL": proxied,
	}, config.ModeLambda)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	time.Sleep(100 * time.Millisecond)
	if n := accepts.Load(); n != 0 {
		t.Fatalf("%d database connections before the first request", n)
	}
	for _, id := range []string{"prod-0001", "prod-0002", "prod-0003", "prod-0001"} {
		get(t, a, id)
	}
	if n := accepts.Load(); n != 1 {
		t.Errorf("%d database connections for three misses, want 1", n)
	}
	if st := a.API.Source.(*postgres.Source).Stat(); st.MaxConns() != 1 || st.TotalConns() != 1 {
		t.Errorf("pool: max %d, open %d; want 1 and 1", st.MaxConns(), st.TotalConns())
	}
}

// replaceHost returns u with its host:port replaced by hostport.
func replaceHost(tb testing.TB, u, hostport string) string {
	tb.Helper()
	p, err := url.Parse(u)
	if err != nil {
		tb.Fatal(err)
	}
	p.Host = hostport
	return p.String()
}

// With DATABASE_PASSWORD_SECRET_ARN the database password comes from Secrets Manager
// (here the JSON of an RDS secret, whose username replaces the URL's), read on the
// first connection and not before; a wrong one is db_auth_failed, and no error shows
// the password.
func TestPostgresPasswordFromSecretsManager(t *testing.T) {
	srv := pgtest.Start(t)
	pgtest.MigrateAndSeed(t, srv.URL())
	const pw = "s3cr3t-db-pw"
	pgtest.Exec(t, srv.URL(), `CREATE ROLE app LOGIN PASSWORD '`+pw+`'; GRANT SELECT ON products TO app`)
	srv.HBA("host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256")

	sm := secrettest.Start(t)
	sm.Setenv(t)
	arn := secrettest.ARN("rds-app")
	sm.Put(arn, `{"username":"app","password":"`+pw+`","engine":"postgres"}`)
	a := newApp(t, map[string]string{
		"REDIS_URL":                    "redis://" + miniredis.RunT(t).Addr(),
		"DATABASE_URL":                 "postgres://nobody@" + srv.Addr() + "/test?sslmode=disable",
		"DATABASE_PASSWORD_SECRET_ARN": arn,
	}, config.ModeLambda)
	if n := sm.Requests(); n != 0 {
		t.Fatalf("%d Secrets Manager reads before the first request", n)
	}
	if p, xc := get(t, a, "prod-0007"); xc != "MISS" || p.ID != "prod-0007" {
		t.Fatalf("read through the secret's credentials: %s %s", p.ID, xc)
	}
	if n := sm.Requests(); n != 1 {
		t.Errorf("%d Secrets Manager reads, want 1", n)
	}

	sm.Put(arn, `{"username":"app","password":"wrong-`+pw+`"}`)
	b := newApp(t, map[string]string{
		"REDIS_URL":                    "redis://" + miniredis.RunT(t).Addr(),
		"DATABASE_URL":                 "postgres://nobody@" + srv.Addr() + "/test?sslmode=disable",
		"DATABASE_PASSWORD_SECRET_ARN": arn,
	}, config.ModeLambda)
	_, err := b.API.Source.Product(context.Background(), "prod-0007")
	if got := postgres.CauseOf(err); got != postgres.CauseAuthFailed {
		t.Fatalf("wrong password: cause %q (%v), want db_auth_failed", got, err)
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("the error shows the password: %v", err)
	}
}

// A change committed while no App runs (a deploy: the old process stopped, the new one
// not yet started) leaves Redis when the next App starts: its listener catches up from
// the checkpoint the last one kept in Redis, with no read needed.
func TestPostgresChangeDuringADeployLeavesRedis(t *testing.T) {
	_, dbURL := pgtest.Seeded(t)
	addr, prefix, rdb := sharedRedis(t)
	env := map[string]string{"REDIS_URL": "redis://" + addr, "CACHE_KEY_PREFIX": prefix, "DATABASE_URL": dbURL}
	ctx := context.Background()
	key := prefix + api.ProductKeys.Key("prod-0051")

	cfg, err := config.Parse(env, config.ModeHTTP)
	if err != nil {
		t.Fatal(err)
	}
	old, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	get(t, old, "prod-0051")
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Get(ctx, app.CheckpointKey(prefix)).Val() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the listener saved no checkpoint")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	pgtest.Psql(t, dbURL, `UPDATE products SET stock = stock + 1 WHERE id = 'prod-0051'`)
	if rdb.Exists(ctx, key).Val() != 1 {
		t.Fatal("the entry left Redis with no listener running")
	}
	newApp(t, env, config.ModeHTTP)
	deadline = time.Now().Add(10 * time.Second)
	for rdb.Exists(ctx, key).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("the change made during the deploy never left Redis")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sharedRedis returns the shared Redis's address, a random key prefix and a client,
// and removes at the end every key the test's Apps wrote there: the entries under the
// prefix, and the figures and the listeners' checkpoint beside it. (Cleanups run last
// first, so the Apps, built later, have closed and flushed by then.)
func sharedRedis(tb testing.TB) (addr, prefix string, rdb *redis.Client) {
	tb.Helper()
	addr, prefix = redistest.SharedAddr(tb), redistest.Prefix(tb)
	rdb = redis.NewClient(&redis.Options{Addr: addr})
	tb.Cleanup(func() {
		ctx := context.Background()
		keys := []string{api.TallyKey(prefix), app.CheckpointKey(prefix)}
		iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		rdb.Del(ctx, keys...)
		_ = rdb.Close()
	})
	return addr, prefix, rdb
}
