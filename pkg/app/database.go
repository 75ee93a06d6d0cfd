package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/postgres"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/secret"
	"github.com/redis/go-redis/v9"
)

// newPostgres returns the PostgreSQL source DATABASE_URL names. Like the Redis
// client, it dials on its first query and reads DATABASE_PASSWORD_SECRET_ARN then.
func newPostgres(cfg config.Config) (*postgres.Source, error) {
	o, err := PostgresOptions(cfg)
	if err != nil {
		return nil, err
	}
	src, err := postgres.New(string(cfg.Database.ConnString), o)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	return src, nil
}

// PostgresOptions translates the configuration into the PostgreSQL source's options;
// the migrate command connects with them too.
func PostgresOptions(cfg config.Config) (postgres.Options, error) {
	o := postgres.Options{
		MaxConns:       int32(min(cfg.Database.MaxConns, 1<<20)),
		ConnectTimeout: cfg.Database.ConnectTimeout,
		QueryTimeout:   cfg.Source.Timeout,
	}
	if arn := cfg.Database.PasswordARN; arn != "" {
		p, err := secret.New(arn, secret.Options{})
		if err != nil {
			return postgres.Options{}, fmt.Errorf("DATABASE_PASSWORD_SECRET_ARN: %w", err)
		}
		o.Credentials = p.Credentials
	}
	return o, nil
}

// database is what an App runs on PostgreSQL besides its source: the listener that
// turns committed product changes into invalidations, in the HTTP mode.
type database struct {
	src    *postgres.Source
	cancel context.CancelFunc
	done   chan struct{}
}

// startDatabase starts the change listener of src when it is the PostgreSQL source
// the configuration names, in the HTTP mode, with DATABASE_LISTEN on; it returns nil
// when there is nothing to run or close. Under Lambda nothing may run between
// invocations, so there is no listener there (see the README for the writer's part).
func startDatabase(cfg config.Config, src product.Source, svc *cache.Service) (*database, error) {
	pg, ok := src.(*postgres.Source)
	if !ok || cfg.Database.ConnString == "" {
		return nil, nil
	}
	d := &database{src: pg}
	if cfg.Mode != config.ModeHTTP || !cfg.Database.Listen {
		return d, nil
	}
	o, err := PostgresOptions(cfg)
	if err != nil {
		return nil, err
	}
	l, err := postgres.NewListener(string(cfg.Database.ConnString), postgres.ListenerOptions{
		Invalidate:     ProductInvalidator(svc),
		InvalidateAll:  func(ctx context.Context) error { _, err := svc.Clear(ctx, api.ProductKeys.Pattern()); return err },
		ConnectTimeout: cfg.Database.ConnectTimeout,
		Credentials:    o.Credentials,
		Logger:         slog.Default(),
		Checkpoints:    checkpoints{svc: svc, key: CheckpointKey(cfg.Cache.KeyPrefix)},
	})
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	go func() {
		defer close(d.done)
		_ = l.Run(ctx) // returns only when ctx ends
	}()
	return d, nil
}

// ProductInvalidator returns the function that drops products from svc by id: the
// fenced Invalidate of their keys, so that a fill in progress stores nothing. The
// listener calls it; so can a writer's own process.
func ProductInvalidator(svc *cache.Service) func(ctx context.Context, ids []string) error {
	return func(ctx context.Context, ids []string) error {
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = api.ProductKeys.Key(id)
		}
		_, err := svc.Invalidate(ctx, keys...)
		return err
	}
}

// CheckpointKey returns the key of the product listeners' shared checkpoint beside
// the cache key prefix, as api.TallyKey does for the figures: "store:dev:" gives
// "store:dev#products:listener". It is not a cache entry, so no cacheClear removes it.
func CheckpointKey(prefix string) string {
	return strings.TrimSuffix(prefix, ":") + "#products:listener"
}

// checkpointTTL bounds how far back a starting listener catches up: a checkpoint not
// refreshed for a day (no listener ran) is dropped, and changes older than that are
// left to the TTL.
const checkpointTTL = 24 * time.Hour

// checkpoints keeps the listeners' checkpoint in the Redis they invalidate, so that
// a listener that starts catches up from the last one any listener of this cache
// saved (see postgres.ListenerOptions.Checkpoints).
type checkpoints struct {
	svc *cache.Service
	key string
}

// Load returns the saved checkpoint, "" if none.
func (c checkpoints) Load(ctx context.Context) (string, error) {
	var v string
	err := c.svc.Do(ctx, func(ctx context.Context, r redis.UniversalClient) error {
		var err error
		v, err = r.Get(ctx, c.key).Result()
		return err
	})
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// Save records checkpoint for a day.
func (c checkpoints) Save(ctx context.Context, checkpoint string) error {
	return c.svc.Do(ctx, func(ctx context.Context, r redis.UniversalClient) error {
		return r.Set(ctx, c.key, checkpoint, checkpointTTL).Err()
	})
}

// close stops the listener, waiting for it within ctx, and closes the pool.
func (d *database) close(ctx context.Context) error {
	if d == nil {
		return nil
	}
	var err error
	if d.cancel != nil {
		d.cancel()
		select {
		case <-d.done:
		case <-ctx.Done():
			err = errors.New("app: the product listener did not stop in time")
		}
	}
	d.src.Close()
	return err
}
