package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/pgtest"
	"github.com/acmestore/storeapi/pkg/postgres"
	"github.com/jackc/pgx/v5"
)

// seeded returns the URL of a fresh schema on the shared server holding the migrated
// schema and the sample catalog.
func seeded(tb testing.TB) (schema, u string) {
	tb.Helper()
	schema, u = pgtest.Schema(tb, pgtest.SharedURL(tb))
	migrateAndSeed(tb, u)
	return schema, u
}

func migrateAndSeed(tb testing.TB, u string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := connect(tb, u)
	if _, err := postgres.Migrate(ctx, c); err != nil {
		tb.Fatal(err)
	}
	ps, err := postgres.CatalogProducts()
	if err != nil {
		tb.Fatal(err)
	}
	if n, err := postgres.Seed(ctx, c, ps); err != nil || n != int64(len(ps)) {
		tb.Fatalf("Seed = %d, %v; want %d", n, err, len(ps))
	}
}

func connect(tb testing.TB, u string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func newSource(tb testing.TB, u string, o postgres.Options) *postgres.Source {
	tb.Helper()
	s, err := postgres.New(u, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}
