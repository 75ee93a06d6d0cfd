package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/acmestore/storeapi/pkg/product"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Credentials returns the user name and password of the next connection, such as
// (*secret.Provider).Credentials. An empty user name keeps the URL's.
type Credentials func(ctx context.Context) (user, password string, err error)

// Options size and bound a [Source]. Zero values take the defaults given.
type Options struct {
	// MaxConns is the most connections the pool opens. Under Lambda, where an
	// environment serves one request at a time, 1; total connections are then the
	// function's concurrency (see the README on RDS Proxy for large fleets).
	//
	// default: 4
	MaxConns int32

	// ConnectTimeout bounds one connection attempt, TLS and authentication included.
	//
	// default: 2s
	ConnectTimeout time.Duration

	// QueryTimeout bounds one Product call when the caller's context has a later
	// deadline or none. The statement runs with a statement_timeout of what is left
	// of the earlier deadline, so the server stops a slow query itself and the
	// connection stays usable.
	//
	// default: 2s
	QueryTimeout time.Duration

	// MaxConnIdleTime closes a connection unused for this long, kept under the 350 s
	// idle timeout of AWS NAT gateways and NLBs.
	//
	// default: 4m
	MaxConnIdleTime time.Duration

	// Credentials, if set, supplies the password (and optionally the user) of every new
	// connection, overriding the URL's: the Secrets Manager provider of
	// DATABASE_PASSWORD_SECRET_ARN. It is called when a connection is made, never by
	// New.
	Credentials Credentials
}

func (o Options) withDefaults() Options {
	if o.MaxConns <= 0 {
		o.MaxConns = 4
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 2 * time.Second
	}
	if o.MaxConnIdleTime <= 0 {
		o.MaxConnIdleTime = 4 * time.Minute
	}
	return o
}

// Source is a product.Source that reads the products table. It holds a connection pool
// that is built on the first Product call, not by [New], and dials then: a Lambda
// function does no database I/O during INIT, and one that serves only hits never
// connects. A failed connect is not remembered; the next call tries again. Close
// closes the pool; a later call builds a new one. A Source is safe for concurrent use.
type Source struct {
	cfg  *pgxpool.Config
	opts Options

	mu   sync.Mutex
	pool *pgxpool.Pool
}

var _ product.Source = (*Source)(nil)

// ErrBadURL reports a DATABASE_URL that is not a PostgreSQL connection string. Its text
// never repeats the URL, which may hold a password.
var ErrBadURL = errors.New("postgres: not a valid PostgreSQL URL (postgres://user:password@host:5432/database?sslmode=require)")

// ConnConfig parses url (postgres://..., or libpq's key=value form) into pgx's
// configuration, with o's connect timeout and credentials. It does no I/O.
func ConnConfig(url string, o Options) (*pgx.ConnConfig, error) {
	o = o.withDefaults()
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, ErrBadURL // not wrapped: pgx's error quotes the URL
	}
	cc.ConnectTimeout = o.ConnectTimeout
	return cc, nil
}

// New returns a Source for the database at url with options o. It parses url and
// does nothing else: no DNS, no dial, no secret read.
func New(url string, o Options) (*Source, error) {
	o = o.withDefaults()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, ErrBadURL
	}
	cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	cfg.MaxConns = o.MaxConns
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = o.MaxConnIdleTime
	cfg.MaxConnLifetime = 30 * time.Minute
	cfg.MaxConnLifetimeJitter = time.Minute
	if o.Credentials != nil {
		creds := o.Credentials
		cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
			return applyCredentials(ctx, cc, creds)
		}
	}
	return &Source{cfg: cfg, opts: o}, nil
}

func applyCredentials(ctx context.Context, cc *pgx.ConnConfig, creds Credentials) error {
	user, password, err := creds(ctx)
	if err != nil {
		return err
	}
	if user != "" {
		cc.User = user
	}
	cc.Password = password
	return nil
}

// selectProduct reads one product; its columns are scanned by scanProduct.
const selectProduct = `SELECT id, sku, name, description, price_amount, price_currency, stock,
	category, images, updated_at FROM products WHERE id = $1`

// Product returns the product with the given id. An id [product.ParseID] rejects is
// refused at once, without I/O; a missing row is an error wrapping
// [product.ErrNotFound]; any other failure is an [*Error] with its [Cause]. The
// query is bounded by ctx and by Options.QueryTimeout, on the server too.
func (s *Source) Product(ctx context.Context, id string) (product.Product, error) {
	if _, err := product.ParseID(id); err != nil {
		return product.Product{}, err // already says why, and must not quote id
	}
	pool, err := s.getPool()
	if err != nil {
		return product.Product{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	defer cancel()

	// One round trip: the statement timeout of this query, then the query. A batch is
	// one implicit transaction (one Sync), so the setting is local to it and never
	// outlives the query on the connection, which matters behind a transaction pooler
	// (PgBouncer, RDS Proxy) that hands the connection to other clients.
	var b pgx.Batch
	b.Queue("SELECT set_config('statement_timeout', $1, true)", statementTimeout(ctx))
	b.Queue(selectProduct, id)
	br := pool.SendBatch(ctx, &b)
	_, err = br.Exec()
	var p product.Product
	if err == nil {
		err = scanProduct(br.QueryRow(), &p)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return product.Product{}, fmt.Errorf("postgres: get %q: %w", id, product.ErrNotFound)
	case err != nil:
		return product.Product{}, wrap("get", id, err)
	}
	return p, nil
}

// scanProduct reads selectProduct's columns into p.
func scanProduct(row pgx.Row, p *product.Product) error {
	err := row.Scan(&p.ID, &p.SKU, &p.Name, &p.Description, &p.Price.Amount, &p.Price.Currency,
		&p.Stock, &p.Category, &p.Images, &p.UpdatedAt)
	p.UpdatedAt = p.UpdatedAt.UTC()
	if p.Images == nil {
		p.Images = []string{}
	}
	return err
}

// statementTimeout is the statement_timeout for a query under ctx, in milliseconds:
// what is left of ctx's deadline less a margin, so that the server gives up before the
// client does and answers with an error rather than the client abandoning the
// connection. At least 1 ms (0 would mean no limit).
func statementTimeout(ctx context.Context) string {
	d, ok := ctx.Deadline()
	if !ok {
		return "0"
	}
	left := time.Until(d)
	left -= min(left/10, 50*time.Millisecond)
	return strconv.FormatInt(max(left.Milliseconds(), 1), 10)
}

// getPool returns the pool, building it on first use.
func (s *Source) getPool() (*pgxpool.Pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool != nil {
		return s.pool, nil
	}
	// NewWithConfig does not dial while MinConns is 0; it starts the pool's health
	// check goroutine, which is why it waits for the first query.
	p, err := pgxpool.NewWithConfig(context.Background(), s.cfg)
	if err != nil {
		return nil, wrap("connect", "", err)
	}
	s.pool = p
	return p, nil
}

// Stat returns the pool's figures (connections open, acquired, idle), or nil before
// the first query.
func (s *Source) Stat() *pgxpool.Stat {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool == nil {
		return nil
	}
	return s.pool.Stat()
}

// Close closes the pool's connections, waiting for those in use to be released. A
// later Product call builds a new pool.
func (s *Source) Close() {
	s.mu.Lock()
	p := s.pool
	s.pool = nil
	s.mu.Unlock()
	if p != nil {
		p.Close()
	}
}
