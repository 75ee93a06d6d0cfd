package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/pgtest"
	"github.com/acmestore/storeapi/pkg/postgres"
	"github.com/jackc/pgx/v5"
)

func seeded(tb testing.TB) (schema, u string) {
	tb.Helper()
	return pgtest.Seeded(tb)
}

func migrateAndSeed(tb testing.TB, u string) {
	tb.Helper()
	pgtest.MigrateAndSeed(tb, u)
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
