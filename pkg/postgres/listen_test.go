package postgres_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/pgtest"
	"github.com/acmestore/storeapi/pkg/postgres"
)

// recorder is a ListenerOptions.Invalidate that keeps every id it is given and can be
// made to fail.
type recorder struct {
	mu    sync.Mutex
	ids   []string
	all   int
	fails int // calls still to fail
}

func (r *recorder) invalidate(_ context.Context, ids []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fails > 0 {
		r.fails--
		return errors.New("redis down (test)")
	}
	r.ids = append(r.ids, ids...)
	return nil
}

func (r *recorder) invalidateAll(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all++
	return nil
}

func (r *recorder) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.ids, id)
}

func (r *recorder) allCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all
}

// startListener runs a Listener on u until the test ends, and waits for its first
// connect.
func startListener(t *testing.T, u string, rec *recorder, o postgres.ListenerOptions) *postgres.Listener {
	t.Helper()
	o.Invalidate, o.InvalidateAll = rec.invalidate, rec.invalidateAll
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.MaxBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	}
	l, err := postgres.NewListener(u, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "the listener's first connect", func() bool { return l.Stats().Connects >= 1 })
	return l
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Changes made with psql, as a person would, reach Invalidate: an update (with its
// version bumped), an insert, a delete, and a truncate as "everything".
func TestListenerHearsChangesMadeWithPsql(t *testing.T) {
	_, u := seeded(t)
	var rec recorder
	startListener(t, u, &rec, postgres.ListenerOptions{})

	pgtest.Psql(t, u, `UPDATE products SET price_amount = price_amount + 1 WHERE id = 'prod-0005'`)
	waitFor(t, "prod-0005's update", func() bool { return rec.has("prod-0005") })
	if v := pgtest.Psql(t, u, `SELECT version FROM products WHERE id = 'prod-0005'`); v != "2" {
		t.Errorf("version after one update = %s, want 2", v)
	}
	pgtest.Psql(t, u, `INSERT INTO products (id, sku, name, price_amount, price_currency, category)
		VALUES ('new-1', 'X-1', 'New', 100, 'EUR', 'misc')`)
	waitFor(t, "new-1's insert", func() bool { return rec.has("new-1") })
	pgtest.Psql(t, u, `DELETE FROM products WHERE id = 'prod-0006'`)
	waitFor(t, "prod-0006's delete", func() bool { return rec.has("prod-0006") })
	// A change in another schema of the same database is not this listener's.
	_, other := seeded(t)
	pgtest.Psql(t, other, `UPDATE products SET stock = 7 WHERE id = 'prod-0100'`)
	pgtest.Psql(t, u, `TRUNCATE products`)
	waitFor(t, "the truncate", func() bool { return rec.allCount() == 1 })
	if rec.has("prod-0100") {
		t.Error("heard a change made in another schema")
	}
}

// An Invalidate that fails (Redis down) is not lost: the listener catches up from its
// checkpoint at the next tick.
func TestListenerRetriesAFailedInvalidation(t *testing.T) {
	_, u := seeded(t)
	rec := recorder{fails: 1}
	l := startListener(t, u, &rec, postgres.ListenerOptions{CheckpointInterval: 50 * time.Millisecond})
	pgtest.Psql(t, u, `UPDATE products SET stock = stock + 1 WHERE id = 'prod-0010'`)
	waitFor(t, "prod-0010 through the catch-up", func() bool { return rec.has("prod-0010") })
	if st := l.Stats(); st.CatchUps < 1 || st.Failures < 1 {
		t.Errorf("stats %+v: want a failure and a catch-up", st)
	}
}

// The listener's connection killed (pg_terminate_backend) while a change is made and
// while it cannot log in again: once it can, the change reaches Invalidate by the
// catch-up (its notification was lost with the connection), and the catch-up does not
// go back past the checkpoint.
func TestListenerCatchesUpAfterItsConnectionIsKilled(t *testing.T) {
	srv := pgtest.Start(t)
	migrateAndSeed(t, srv.URL())
	pgtest.Exec(t, srv.URL(), `CREATE ROLE lsn LOGIN; GRANT SELECT ON products, product_tombstones TO lsn`)
	lsnURL := "postgres://lsn@" + srv.Addr() + "/test?sslmode=disable"
	var rec recorder
	l := startListener(t, lsnURL, &rec, postgres.ListenerOptions{CheckpointInterval: 50 * time.Millisecond})

	pgtest.Psql(t, srv.URL(), `UPDATE products SET stock = stock + 1 WHERE id = 'prod-0001'`)
	waitFor(t, "prod-0001", func() bool { return rec.has("prod-0001") })
	// Two ticks: the checkpoint now sees prod-0001's change.
	time.Sleep(200 * time.Millisecond)
	heard := l.Stats().Notifications

	pgtest.Psql(t, srv.URL(), `ALTER ROLE lsn NOLOGIN`)
	if n := pgtest.Psql(t, srv.URL(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'lsn'`); n != "1" {
		t.Fatalf("terminated %s backends, want the listener's one", n)
	}
	waitFor(t, "the listener to notice", func() bool { return l.Stats().Failures >= 1 })
	pgtest.Psql(t, srv.URL(), `UPDATE products SET stock = stock + 1 WHERE id = 'prod-0002'; DELETE FROM products WHERE id = 'prod-0003'`)
	pgtest.Psql(t, srv.URL(), `ALTER ROLE lsn LOGIN`)

	waitFor(t, "the reconnect", func() bool { return l.Stats().Connects >= 2 })
	waitFor(t, "prod-0002 and prod-0003", func() bool { return rec.has("prod-0002") && rec.has("prod-0003") })
	st := l.Stats()
	if st.Notifications != heard {
		t.Errorf("notifications %d -> %d: the changes should have come by the catch-up alone", heard, st.Notifications)
	}
	if st.CatchUps != 1 || st.CaughtUp != 2 {
		t.Errorf("stats %+v: want one catch-up of exactly the 2 ids changed in the gap (not prod-0001, before the checkpoint)", st)
	}
}

// The database restarted: the listener reconnects by itself and hears changes again.
func TestListenerReconnectsAfterARestart(t *testing.T) {
	srv := pgtest.Start(t)
	migrateAndSeed(t, srv.URL())
	var rec recorder
	l := startListener(t, srv.URL(), &rec, postgres.ListenerOptions{})
	srv.Stop()
	waitFor(t, "the listener to notice", func() bool { return l.Stats().Failures >= 1 })
	srv.Restart()
	waitFor(t, "the reconnect", func() bool { return l.Stats().Connects >= 2 })
	pgtest.Psql(t, srv.URL(), `UPDATE products SET name = 'Renamed' WHERE id = 'prod-0042'`)
	waitFor(t, "prod-0042", func() bool { return rec.has("prod-0042") })
	if st := l.Stats(); st.CatchUps != 1 {
		t.Errorf("stats %+v: want a catch-up after the restart", st)
	}
}

// batchRecorder keeps the size of every Invalidate call.
type batchRecorder struct {
	recorder
	sizes []int
}

// One statement changing all 1,000 rows reaches Invalidate as every id, in calls of
// at most 500; and Run, once cancelled, leaves no connection behind.
func TestListenerBulkChangeAndClose(t *testing.T) {
	_, u := seeded(t)
	app := "lsn-" + strings.ReplaceAll(t.Name(), "/", "-")
	lu := u + "&application_name=" + app
	var br batchRecorder
	l, err := postgres.NewListener(lu, postgres.ListenerOptions{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Invalidate: func(ctx context.Context, ids []string) error {
			br.mu.Lock()
			br.sizes = append(br.sizes, len(ids))
			br.mu.Unlock()
			return br.invalidate(ctx, ids)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	waitFor(t, "the first connect", func() bool { return l.Stats().Connects == 1 })
	conns := func() string {
		return pgtest.Psql(t, u, `SELECT count(*) FROM pg_stat_activity WHERE application_name = '`+app+`'`)
	}
	if n := conns(); n != "1" {
		t.Errorf("%s listener connections, want 1", n)
	}

	pgtest.Psql(t, u, `UPDATE products SET stock = stock + 1`)
	waitFor(t, "all 1,000 ids", func() bool { return l.Stats().Invalidated >= 1000 })
	br.mu.Lock()
	distinct := map[string]bool{}
	for _, id := range br.ids {
		distinct[id] = true
	}
	for _, n := range br.sizes {
		if n > 500 {
			t.Errorf("an Invalidate call of %d ids, want at most 500", n)
		}
	}
	br.mu.Unlock()
	if len(distinct) != 1000 {
		t.Errorf("%d distinct ids invalidated, want 1000", len(distinct))
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The server ends the backend a moment after the client closes.
	waitFor(t, "no listener connection after Run returned", func() bool { return conns() == "0" })
}

// memStore is a CheckpointStore in memory.
type memStore struct {
	mu sync.Mutex
	v  string
}

func (m *memStore) Load(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.v, nil
}

func (m *memStore) Save(_ context.Context, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.v = v
	return nil
}

// A change made while no listener runs (between a stop and a start, as in a deploy)
// reaches Invalidate when the next listener starts, from the checkpoint the last one
// saved, and only that change; a checkpoint saved for another schema is not used.
func TestListenerCatchesUpFromASavedCheckpoint(t *testing.T) {
	schema, u := seeded(t)
	store := &memStore{}
	run := func(rec *recorder) (*postgres.Listener, func()) {
		t.Helper()
		l, err := postgres.NewListener(u, postgres.ListenerOptions{
			Invalidate: rec.invalidate, Checkpoints: store, CheckpointInterval: 50 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		waitFor(t, "the connect", func() bool { return l.Stats().Connects == 1 })
		return l, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}

	var first recorder
	_, stop := run(&first)
	pgtest.Psql(t, u, `UPDATE products SET stock = stock + 1 WHERE id = 'prod-0031'`)
	waitFor(t, "prod-0031", func() bool { return first.has("prod-0031") })
	time.Sleep(200 * time.Millisecond) // ticks: the saved checkpoint sees that change
	stop()
	if !strings.Contains(store.v, "/"+schema+"/") {
		t.Fatalf("saved checkpoint %q does not name the schema", store.v)
	}

	pgtest.Psql(t, u, `UPDATE products SET stock = stock + 1 WHERE id = 'prod-0032'`)
	var second recorder
	l, stop := run(&second)
	waitFor(t, "prod-0032 by the catch-up", func() bool { return second.has("prod-0032") })
	stop()
	if st := l.Stats(); st.CatchUps != 1 || st.CaughtUp != 1 || st.Notifications != 0 {
		t.Errorf("stats %+v: want one catch-up of exactly the change made while none ran", st)
	}

	// Another schema's checkpoint (same database) is not this one's.
	store.v = strings.Replace(store.v, "/"+schema+"/", "/other/", 1)
	pgtest.Psql(t, u, `UPDATE products SET stock = stock + 1 WHERE id = 'prod-0033'`)
	var third recorder
	l, stop = run(&third)
	time.Sleep(100 * time.Millisecond)
	stop()
	if st := l.Stats(); st.CatchUps != 0 || third.has("prod-0033") {
		t.Errorf("stats %+v: caught up from another schema's checkpoint", st)
	}
}
