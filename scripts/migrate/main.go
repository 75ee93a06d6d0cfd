// Command migrate creates the product database's schema and, with -seed, loads the
// sample catalog's 1,000 products into it:
//
//	DATABASE_URL=postgres://store:store@127.0.0.1:5432/store go run ./scripts/migrate -seed
//
// It reads DATABASE_URL (or DATABASE_URL_FILE, and DATABASE_PASSWORD_SECRET_ARN) as
// the functions do. The steps (pkg/postgres/sql/NNNN_*.sql) are applied once each, in
// order, in the first schema of the connection's search_path, and recorded in the
// table storeapi_migrations; running it again applies only new steps. Seeding skips
// ids already present, so it never undoes an edit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/postgres"
	"github.com/caarlos0/env/v10"
	"github.com/jackc/pgx/v5"
)

func main() {
	if err := run(os.Args[1:], env.ToMap(os.Environ()), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

func run(args []string, environ map[string]string, out io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	seed := fs.Bool("seed", false, "also load the sample catalog's products (ids already present are left alone)")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg, err := config.Parse(environ, config.ModeHTTP)
	if err != nil {
		return err
	}
	if cfg.Database.ConnString == "" {
		return errors.New("DATABASE_URL is not set (postgres://user:password@host:5432/database)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	conn, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())

	applied, err := postgres.Migrate(ctx, conn)
	for _, name := range applied {
		fmt.Fprintln(out, "applied", name)
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(out, "schema up to date")
	}
	if !*seed {
		return nil
	}
	products, err := postgres.CatalogProducts()
	if err != nil {
		return err
	}
	n, err := postgres.Seed(ctx, conn, products)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "seeded %d of the catalog's %d products (the others were present)\n", n, len(products))
	return nil
}

// connect opens one connection with the functions' settings, the Secrets Manager
// password included.
func connect(ctx context.Context, cfg config.Config) (*pgx.Conn, error) {
	o, err := app.PostgresOptions(cfg)
	if err != nil {
		return nil, err
	}
	cc, err := postgres.ConnConfig(string(cfg.Database.ConnString), o)
	if err != nil {
		return nil, err
	}
	if o.Credentials != nil {
		user, password, err := o.Credentials(ctx)
		if err != nil {
			return nil, fmt.Errorf("DATABASE_PASSWORD_SECRET_ARN: %w", err)
		}
		if user != "" {
			cc.User = user
		}
		cc.Password = password
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, &postgres.Error{Op: "connect", Cause: postgres.CauseOf(err), Err: err}
	}
	return conn, nil
}
