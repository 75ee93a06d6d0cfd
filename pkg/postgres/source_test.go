package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/pgtest"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/postgres"
	"github.com/acmestore/storeapi/pkg/product"
)

// The database read path serves every product of the sample catalog as exactly the
// bytes the catalog serves: same fields, same order, same escaping, same timestamps.
func TestProductsMatchTheCatalogByteForByte(t *testing.T) {
	_, u := seeded(t)
	src := newSource(t, u, postgres.Options{})
	f, err := os.Open("../product/catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		line := bytes.TrimSuffix(sc.Bytes(), []byte(","))
		if len(line) < 2 || line[0] != '{' {
			continue
		}
		var want struct{ ID string }
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatal(err)
		}
		p, err := src.Product(context.Background(), want.ID)
		if err != nil {
			t.Fatalf("Product(%s): %v", want.ID, err)
		}
		got, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, line) {
			t.Fatalf("Product(%s) encodes as\n%s\nthe catalog has\n%s", want.ID, got, line)
		}
		n++
	}
	if n != 1000 {
		t.Fatalf("compared %d products, want 1000", n)
	}
}

func TestProductErrors(t *testing.T) {
	_, u := seeded(t)
	src := newSource(t, u, postgres.Options{})
	ctx := context.Background()

	if _, err := src.Product(ctx, "prod-9999"); !errors.Is(err, product.ErrNotFound) {
		t.Errorf("unknown id: err = %v, want ErrNotFound", err)
	}
	if _, err := src.Product(ctx, "a'b"); !errors.Is(err, product.ErrInvalidID) {
		t.Errorf("bad id: err = %v, want ErrInvalidID", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := src.Product(canceled, "prod-0001")
	if got := postgres.CauseOf(err); got != postgres.CauseCanceled || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v (cause %q), want db_canceled matching context.Canceled", err, got)
	}

	// The table missing: the migrations have not run in this schema.
	_, empty := pgtest.Schema(t, pgtest.SharedURL(t))
	_, err = newSource(t, empty, postgres.Options{}).Product(ctx, "prod-0001")
	if got := postgres.CauseOf(err); got != postgres.CauseSchema {
		t.Errorf("no table: cause %q (%v), want db_schema", got, err)
	}
}

// A Source connects on its first query, not when it is built, and a failed connect is
// not remembered.
func TestSourceDialsLazilyAndRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close() // not a PostgreSQL server
		}
	}()
	defer ln.Close()
	src := newSource(t, "postgres://u:hunter2@"+ln.Addr().String()+"/x?sslmode=disable", postgres.Options{})
	time.Sleep(50 * time.Millisecond)
	if len(accepted) != 0 || src.Stat() != nil {
		t.Fatal("New connected before the first query")
	}
	for i := range 2 {
		_, err := src.Product(context.Background(), "prod-0001")
		if got := postgres.CauseOf(err); got != postgres.CauseUnavailable {
			t.Errorf("call %d: cause %q (%v), want db_unavailable", i, got, err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	if n := len(accepted); n < 2 {
		t.Errorf("%d connection attempts for two calls, want a new attempt per call", n)
	}
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"postgres://u:hunter2@host:notaport/db", "mysql://u:hunter2@h/db"} {
		_, err := postgres.New(u, postgres.Options{})
		if !errors.Is(err, postgres.ErrBadURL) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%q) = %v, want ErrBadURL without the password", u, err)
		}
	}
}

// A query slower than the caller's deadline is stopped by the server (the statement
// timeout comes from the deadline), reported as db_timeout matching
// context.DeadlineExceeded, and the connection stays usable for the next query.
func TestSlowQueryHitsTheDeadline(t *testing.T) {
	_, u := seeded(t)
	// The products table is replaced by a view that sleeps, so Product's own query is
	// the slow one.
	pgtest.Exec(t, u, `ALTER TABLE products RENAME TO products_t;
		CREATE VIEW products AS SELECT p.* FROM products_t p, LATERAL (SELECT pg_sleep(CASE WHEN p.id = 'prod-0002' THEN 5 ELSE 0 END)) s`)
	src := newSource(t, u, postgres.Options{MaxConns: 1})
	// 1 s, so that the statement timeout's margin is the full 50 ms: with 300 ms (a
	// 30 ms margin) a loaded machine once let the client's deadline fire first.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := src.Product(ctx, "prod-0002")
	took := time.Since(start)
	if got := postgres.CauseOf(err); got != postgres.CauseTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow query: cause %q (%v), want db_timeout matching context.DeadlineExceeded", got, err)
	}
	if took > 3*time.Second {
		t.Errorf("slow query returned after %v, want about 1s", took)
	}
	if !strings.Contains(err.Error(), "57014") {
		t.Errorf("want the server's statement timeout (SQLSTATE 57014), got %v", err)
	}
	if _, err := src.Product(context.Background(), "prod-0001"); err != nil {
		t.Fatalf("the next query on the one connection: %v", err)
	}
	if st := src.Stat(); st.TotalConns() != 1 {
		t.Errorf("%d connections, want the same single one", st.TotalConns())
	}
}

// The database stopped: db_unavailable, quickly; restarted: reads work again without
// a new Source.
func TestDatabaseStoppedAndRestarted(t *testing.T) {
	srv := pgtest.Start(t)
	migrateAndSeed(t, srv.URL())
	src := newSource(t, srv.URL(), postgres.Options{MaxConns: 2})
	ctx := context.Background()
	if _, err := src.Product(ctx, "prod-0001"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for i := range 2 {
		_, err := src.Product(ctx, "prod-0001")
		if got := postgres.CauseOf(err); got != postgres.CauseUnavailable {
			t.Errorf("stopped, call %d: cause %q (%v), want db_unavailable", i, got, err)
		}
	}
	srv.Restart()
	if _, err := src.Product(ctx, "prod-0001"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

var _ = redistest.InCI
