package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/history"
	"github.com/acmestore/storeapi/pkg/internal/pgtest"
	"github.com/acmestore/storeapi/pkg/postgres"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/jackc/pgx/v5"
)

// TestDatabaseChangesKeepTheFreshnessPromise runs readers against getProduct while a
// writer commits UPDATEs to PostgreSQL and the listener invalidates them, and checks
// the history: no read that starts after an invalidation of a version returned gets
// an older one, and no read returns a version before it was written. The version is
// the product's stock, which each UPDATE raises by one.
//
// With the in-process tier on (the HTTP mode's default against this Redis), the
// promise is the tier's: it holds for reads that start CACHE_L1_MAX_STALENESS after
// the invalidation returned.
func TestDatabaseChangesKeepTheFreshnessPromise(t *testing.T) {
	for _, l1 := range []string{"off", "on"} {
		t.Run("l1="+l1, func(t *testing.T) { testDatabaseHistory(t, l1) })
	}
}

func testDatabaseHistory(t *testing.T, l1 string) {
	_, dbURL := pgtest.Seeded(t)
	addr, prefix, _ := sharedRedis(t)
	a := newApp(t, map[string]string{
		"REDIS_URL": "redis://" + addr, "CACHE_KEY_PREFIX": prefix, "DATABASE_URL": dbURL,
		// The test runs its own listener, to record the invalidations.
		"DATABASE_LISTEN": "false",
		"CACHE_L1":        l1,
	}, config.ModeHTTP)
	bound := time.Duration(0)
	if l1 == "on" {
		bound = a.API.Config.L1.L1MaxStaleness
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	ids := []string{"prod-0011", "prod-0012", "prod-0013", "prod-0014"}
	var (
		mu        sync.Mutex
		ops       []history.Op
		bumps     []history.Bump
		committed = map[string]int64{}
	)
	for _, id := range ids {
		var stock int64
		if err := conn.QueryRow(ctx, `SELECT stock FROM products WHERE id = $1`, id).Scan(&stock); err != nil {
			t.Fatal(err)
		}
		committed[id] = stock
		bumps = append(bumps, history.Bump{Key: id, Version: stock, At: 0})
	}
	record := func(op history.Op) {
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
	}

	invalidate := app.ProductInvalidator(a.API.Cache)
	l, err := postgres.NewListener(dbURL, postgres.ListenerOptions{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Invalidate: func(ctx context.Context, changed []string) error {
			mu.Lock()
			versions := make([]int64, len(changed))
			for i, id := range changed {
				versions[i] = committed[id]
			}
			mu.Unlock()
			start := history.Now()
			err := invalidate(ctx, changed)
			end := history.Now()
			for i, id := range changed {
				record(history.Op{Kind: history.Invalidate, Key: id, Start: start, End: end, Version: versions[i], OK: err == nil, Proc: "listener"})
			}
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	listenerDone := make(chan struct{})
	go func() { defer close(listenerDone); _ = l.Run(ctx) }()
	defer func() { cancel(); <-listenerDone }()
	for l.Stats().Connects == 0 {
		time.Sleep(5 * time.Millisecond)
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			h := a.API.GetProduct()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[(i+r)%len(ids)]
				start := history.Now()
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/products/"+id, nil))
				end := history.Now()
				var p product.Product
				ok := w.Code == http.StatusOK && json.Unmarshal(w.Body.Bytes(), &p) == nil
				record(history.Op{Kind: history.Read, Key: id, Start: start, End: end, Version: int64(p.Stock),
					OK: ok, Outcome: w.Header().Get("X-Cache"), Proc: fmt.Sprint("reader-", r)})
			}
		}()
	}
	const changes = 300
	for i := range changes {
		id := ids[i%len(ids)]
		at := history.Now()
		var stock int64
		if err := conn.QueryRow(ctx, `UPDATE products SET stock = stock + 1 WHERE id = $1 RETURNING stock`, id).Scan(&stock); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		committed[id] = stock
		bumps = append(bumps, history.Bump{Key: id, Version: stock, At: at})
		mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	// Let the last invalidations land and be read after.
	time.Sleep(200 * time.Millisecond)
	close(stop)
	readers.Wait()

	mu.Lock()
	defer mu.Unlock()
	c := history.Count(ops)
	t.Logf("%d changes, %+v, listener %+v, cache %+v", changes, c, l.Stats(), a.API.Cache.Stats())
	if v := history.CheckWithin(ops, bumps, bound); len(v) > 0 {
		for _, x := range v[:min(len(v), 10)] {
			t.Error(x)
		}
		t.Fatalf("%d violations of the freshness promise", len(v))
	}
	if st := l.Stats(); st.Invalidated < changes/2 {
		t.Errorf("the listener invalidated %d ids for %d changes", st.Invalidated, changes)
	}
	// Every product ends at its last version.
	for _, id := range ids {
		var p product.Product
		w := httptest.NewRecorder()
		a.API.GetProduct().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/products/"+id, nil))
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || int64(p.Stock) != committed[id] {
			t.Errorf("%s: final read stock %d (%v), want the last committed %d", id, p.Stock, err, committed[id])
		}
	}
}
