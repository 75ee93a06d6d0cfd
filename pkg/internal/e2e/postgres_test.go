package e2e

import (
	"encoding/json"
	"net/url"
	"strconv"
	"testing"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/internal/pgtest"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/product"
)

// TestPostgresUnderLambda runs getProduct and cacheClear under the emulator with
// DATABASE_URL set. getProduct reads the product from PostgreSQL on a miss, on one
// connection for the environment, and cacheClear, which never reads products, never
// connects. Under Lambda there is no listener: a change committed in the database is
// served from Redis until the writer calls cacheClear with the changed ids, as the
// README tells writers to; the next read is then a MISS with the new price.
func TestPostgresUnderLambda(t *testing.T) {
	t.Parallel()
	_, dbURL := pgtest.Seeded(t)
	app := "e2e-" + randHex(6)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app) // to count this test's connections
	u.RawQuery = q.Encode()

	srv := redistest.Start(t)
	s := newStack(t, "redis://"+srv.Addr(), "DATABASE_URL", u.String())
	gp := s.start("getproduct")
	cc := s.start("cacheclear")
	const id = "prod-0021"
	price := func(r response) int64 {
		t.Helper()
		var p product.Product
		if r.Status != 200 || json.Unmarshal([]byte(r.Body), &p) != nil {
			t.Fatalf("getProduct: %d %s", r.Status, r.Body)
		}
		return p.Price.Amount
	}
	inDB := func() int64 {
		n, err := strconv.ParseInt(pgtest.Psql(t, dbURL, `SELECT price_amount FROM products WHERE id = '`+id+`'`), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	conns := func() string {
		return pgtest.Psql(t, dbURL, `SELECT count(*) FROM pg_stat_activity WHERE application_name = '`+app+`'`)
	}

	if n := conns(); n != "0" {
		t.Fatalf("%s database connections before the first request", n)
	}
	r := gp.invoke(productEvent(t, v2, id))
	if r.cache() != "MISS" || price(r) != inDB() {
		t.Fatalf("first read: X-Cache %s, price %d; want MISS and the database's %d", r.cache(), price(r), inDB())
	}
	for _, other := range []string{"prod-0022", "prod-0023"} {
		if r := gp.invoke(productEvent(t, v2, other)); r.cache() != "MISS" {
			t.Fatalf("%s: X-Cache %s", other, r.cache())
		}
	}
	if n := conns(); n != "1" {
		t.Errorf("%s database connections after three misses in one environment, want 1", n)
	}
	before := inDB()
	pgtest.Psql(t, dbURL, `UPDATE products SET price_amount = price_amount + 500 WHERE id = '`+id+`'`)
	if r := gp.invoke(productEvent(t, v2, id)); r.cache() != "HIT" || price(r) != before {
		t.Fatalf("after the commit, before cacheClear: X-Cache %s, price %d; want the cached HIT at %d", r.cache(), price(r), before)
	}
	// The writer's part: cacheClear with the ids it changed, after its commit.
	cr := cc.invoke(clearEvent(t, v2, s.token, `{"ids":["`+id+`"]}`))
	if cr.Status != 200 || cr.json(t)["deleted"] != float64(1) {
		t.Fatalf("cacheClear: %d %s", cr.Status, cr.Body)
	}
	if exists(t, srv, s.prefix+api.ProductKeys.Key(id)) {
		t.Fatal("the product's key is still in Redis after cacheClear")
	}
	r = gp.invoke(productEvent(t, v2, id))
	if r.cache() != "MISS" || price(r) != before+500 {
		t.Fatalf("after cacheClear: X-Cache %s, price %d; want MISS and %d", r.cache(), price(r), before+500)
	}
	if n := conns(); n != "1" {
		t.Errorf("%s database connections at the end (cacheClear must not connect), want 1", n)
	}
}
