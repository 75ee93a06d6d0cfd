package config

import (
	"runtime"
	"strings"
	"time"

	"github.com/acmestore/storeapi/pkg/secret"
)

// Database is the product database, PostgreSQL. With no DatabaseURL set, products come
// from PRODUCT_SOURCE_URL or the embedded sample catalog, as before. Field names carry
// no bare URL or PoolSize: caarlos0/env names fields, not variables, in its errors, so
// they are unique across Config.
type Database struct {
	// ConnString is the product database: postgres://user:password@host:5432/db?sslmode=require,
	// or libpq's key=value form; pgx's query parameters apply (search_path through
	// options=-csearch_path=..., default_query_exec_mode=exec behind PgBouncer in
	// transaction mode). It takes precedence over the sample catalog and cannot be
	// combined with PRODUCT_SOURCE_URL. One query is bounded by PRODUCT_SOURCE_TIMEOUT
	// and by the request's deadline, on the server too (statement_timeout).
	//
	// env: DATABASE_URL; default: none (the sample catalog)
	ConnString Secret `env:"DATABASE_URL"`

	// ConnStringFile is a file holding DATABASE_URL instead (a secret that OpenFaaS,
	// Docker or Kubernetes mounts as a file). See Redis.PasswordFile for how it is read.
	//
	// env: DATABASE_URL_FILE; default: none
	ConnStringFile string `env:"DATABASE_URL_FILE"`

	// PasswordARN is the full ARN of an AWS Secrets Manager secret holding the database
	// password: the password itself, or the JSON of an RDS rotation secret ("password"
	// and "username", which then replaces the URL's user). It is read when the first
	// connection is made, never at start-up, and kept for the life of the process; see
	// Redis.PasswordSecretARN. The function's role needs secretsmanager:GetSecretValue.
	//
	// env: DATABASE_PASSWORD_SECRET_ARN; default: none (the URL's password)
	PasswordARN string `env:"DATABASE_PASSWORD_SECRET_ARN"`

	// MaxConns is the most database connections one process opens. Under Lambda an
	// environment serves one request at a time, so 1; the total is then the function's
	// concurrency, which for a large fleet calls for RDS Proxy (see the README).
	//
	// env: DATABASE_POOL_SIZE; default: 1 under Lambda, 2×GOMAXPROCS (at least 4) in HTTP mode
	MaxConns int `env:"DATABASE_POOL_SIZE"`

	// ConnectTimeout bounds one connection attempt, TLS and authentication included.
	//
	// env: DATABASE_CONNECT_TIMEOUT; default: 1s under Lambda, 2s in HTTP mode
	ConnectTimeout time.Duration `env:"DATABASE_CONNECT_TIMEOUT"`

	// Listen makes the HTTP mode (and the local run) LISTEN for product changes and
	// invalidate them in Redis as they commit. Ignored under Lambda, where nothing
	// runs between invocations: there the writer calls cacheClear (see the README).
	//
	// env: DATABASE_LISTEN; default: true
	Listen bool `env:"DATABASE_LISTEN" envDefault:"true"`
}

// resolveDatabase fills d's mode-dependent defaults.
func (c *Config) resolveDatabase() {
	d := &c.Database
	lambda := c.Mode == ModeLambda
	if d.MaxConns == 0 {
		d.MaxConns = pick(lambda, 1, max(4, 2*runtime.GOMAXPROCS(0)))
	}
	if d.ConnectTimeout == 0 {
		d.ConnectTimeout = pick(lambda, time.Second, 2*time.Second)
	}
}

// validateDatabase returns the problems of the Database settings, naming variables
// only.
func (c *Config) validateDatabase() []string {
	var bad []string
	add := func(key, why string) { bad = append(bad, key+": "+why) }
	d := c.Database
	if d.ConnString != "" {
		s := string(d.ConnString)
		if !strings.HasPrefix(s, "postgres://") && !strings.HasPrefix(s, "postgresql://") && !strings.Contains(s, "=") {
			add("DATABASE_URL", "want postgres://user:password@host:5432/database (or libpq's key=value form)")
		}
		if c.Source.BaseURL != "" {
			add("DATABASE_URL", "cannot be combined with PRODUCT_SOURCE_URL; set only one product source")
		}
	}
	if d.PasswordARN != "" {
		if d.ConnString == "" {
			add("DATABASE_PASSWORD_SECRET_ARN", "needs DATABASE_URL (the host, user and database)")
		}
		if err := secret.CheckARN(d.PasswordARN); err != nil {
			add("DATABASE_PASSWORD_SECRET_ARN", strings.TrimPrefix(err.Error(), "secret: "))
		}
	}
	if d.MaxConns < 1 {
		add("DATABASE_POOL_SIZE", "must be at least 1")
	}
	if d.ConnectTimeout <= 0 {
		add("DATABASE_CONNECT_TIMEOUT", "must be a positive duration")
	}
	return bad
}
