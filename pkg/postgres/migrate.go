package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/acmestore/storeapi/pkg/product"
	"github.com/jackc/pgx/v5"
)

// migrations are the schema's steps, applied in the order of their numbers:
// sql/NNNN_name.sql. A step is never edited once released; a change is a new step.
//
//go:embed sql/*.sql
var sqlFiles embed.FS

// Migration is one step of the schema.
type Migration struct {
	Version int    // the file's number
	Name    string // the file's name
	SQL     string
}

// Migrations returns the schema's steps in order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(sqlFiles, "sql/[0-9][0-9][0-9][0-9]_*.sql")
	if err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	var ms []Migration
	for _, n := range names {
		base := strings.TrimPrefix(n, "sql/")
		v, err := strconv.Atoi(base[:4])
		if err != nil {
			return nil, fmt.Errorf("postgres: migration %q: %w", base, err)
		}
		b, err := sqlFiles.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("postgres: migration %q: %w", base, err)
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	return ms, nil
}

// Migrate applies the steps not yet applied to the first schema of conn's search_path,
// each in its own transaction, recording them in the table storeapi_migrations, and
// returns the names of those it applied. Concurrent Migrates on one schema (several
// instances starting together) take turns on an advisory lock, so each step is applied
// once.
func Migrate(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	var applied []string
	for _, m := range ms {
		done, err := migrateOne(ctx, conn, m)
		if err != nil {
			return applied, err
		}
		if done {
			applied = append(applied, m.Name)
		}
	}
	return applied, nil
}

// migrateOne applies m unless it is recorded as applied, and reports whether it did.
func migrateOne(ctx context.Context, conn *pgx.Conn, m Migration) (bool, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, wrap("migrate "+m.Name, "", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	steps := []string{
		// Per schema, so that two schemas of one database migrate independently.
		`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.storeapi_migrations'))`,
		`CREATE TABLE IF NOT EXISTS storeapi_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`,
	}
	for _, q := range steps {
		if _, err := tx.Exec(ctx, q); err != nil {
			return false, wrap("migrate "+m.Name, "", err)
		}
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM storeapi_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
		return false, wrap("migrate "+m.Name, "", err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return false, wrap("migrate "+m.Name, "", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO storeapi_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
		return false, wrap("migrate "+m.Name, "", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, wrap("migrate "+m.Name, "", err)
	}
	return true, nil
}

// Seed inserts products (the sample catalog's, see [CatalogProducts]), leaving ids
// already present alone, and returns how many it inserted. Run it after Migrate. The
// products travel as one JSON document, the API's own encoding, which sql/seed.sql
// takes apart, so the rows hold exactly what the API would serve.
func Seed(ctx context.Context, conn *pgx.Conn, products []product.Product) (int64, error) {
	q, err := sqlFiles.ReadFile("sql/seed.sql")
	if err != nil {
		return 0, fmt.Errorf("postgres: seed: %w", err)
	}
	doc, err := json.Marshal(products)
	if err != nil {
		return 0, fmt.Errorf("postgres: seed: %w", err)
	}
	tag, err := conn.Exec(ctx, string(q), string(doc))
	if err != nil {
		return 0, wrap("seed", "", err)
	}
	return tag.RowsAffected(), nil
}

// CatalogProducts returns the sample catalog's products, in order: what Seed loads
// by default.
func CatalogProducts() ([]product.Product, error) {
	c, err := product.NewCatalog(0)
	if err != nil {
		return nil, err
	}
	ids := c.IDs()
	ps := make([]product.Product, 0, len(ids))
	for _, id := range ids {
		p, err := c.Product(context.Background(), id)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}
