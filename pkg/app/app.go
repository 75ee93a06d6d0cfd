// Package app assembles a function from its parts — configuration, logger, the shared
// Redis client, the cache, the product source and the handler — and starts the runtime.
// It keeps the functions' mains to one line of wiring each.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/redisclient"
	"github.com/acmestore/storeapi/pkg/serve"
	"github.com/acmestore/storeapi/pkg/tally"
	"github.com/acmestore/storeapi/pkg/telemetry"
)

// Function is one of the API's functions: its name (as in logs and metrics) and how to
// get its handler from the API.
type Function struct {
	Name    string
	Handler func(*api.API) http.Handler
}

// The functions, as deployed (template.yaml) and built (functions/).
var (
	GetProduct = Function{Name: "getProduct", Handler: (*api.API).GetProduct}
	Health     = Function{Name: "health", Handler: (*api.API).Health}
	CacheClear = Function{Name: "cacheClear", Handler: (*api.API).CacheClear}
	// All serves every route in one process (the local run, the app container).
	All = Function{Name: "storeapi", Handler: (*api.API).All}
)

// Version is the build's version (the module version or VCS revision), for health.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return "dev"
}

// Run is a function's main: it reads the configuration from the environment and
// serves f under Lambda or over HTTP (see serve.Run) until told to stop. It does no
// network I/O before the first request. Without REDIS_URL it fails at once, saying so:
// the embedded Redis of the local run is never linked into a function.
func Run(f Function) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	if cfg.Redis.URL == "" {
		return errors.New("REDIS_URL is not set: a deployed function needs a Redis endpoint (redis://host:port or rediss://host:port)")
	}
	logger, flush := NewLogger(os.Stdout, cfg)
	defer func() { _ = flush() }()
	lazy, err := redisclient.Shared(cfg.Redis)
	if err != nil {
		return err
	}
	a, err := Build(cfg, lazy)
	if err != nil {
		return err
	}
	return Serve(context.Background(), f, a, lazy, logger, ":"+strconv.Itoa(cfg.HTTP.Port))
}

// NewLogger returns the process's logger and makes it slog's default, so the log
// package's lines (aws-lambda-go's, go-redis's) are written as the same JSON lines.
// In the HTTP mode with a LogFlushInterval, the lines reach w in batches; call flush
// last, once Serve has returned, to write the rest. Under Lambda every line is
// written at once and flush has nothing to do.
func NewLogger(w io.Writer, cfg config.Config) (logger *slog.Logger, flush func() error) {
	flush = func() error { return nil }
	if cfg.Mode == config.ModeHTTP && cfg.LogFlushInterval > 0 {
		b := telemetry.NewBufferedWriter(w, cfg.LogFlushInterval, 0)
		w, flush = b, b.Close
	}
	logger = telemetry.NewLogger(w, cfg.LogLevel)
	slog.SetDefault(logger)
	return logger, flush
}

// Closer is the client holder Serve closes at shutdown.
type Closer interface {
	Close() error
}

// Serve runs f's handler, wrapped in the per-request log line, with the runtime
// adapter; at shutdown it writes the pending application figures and closes the
// client.
func Serve(ctx context.Context, f Function, a *api.API, client Closer, logger *slog.Logger, addr string) error {
	o := LambdaOptions(f, logger)
	o.Addr = addr
	o.OnShutdown = func(ctx context.Context) error {
		var errs []error
		if a.Tally != nil {
			errs = append(errs, a.Tally.Flush(ctx))
		}
		errs = append(errs, client.Close())
		logger.LogAttrs(ctx, slog.LevelInfo, "redis client closed", slog.String("function", f.Name))
		return errors.Join(errs...)
	}
	return serve.Run(ctx, Handler(f, a, logger), o)
}

// LambdaOptions returns the runtime adapter's options that Serve uses for f, without
// the address and the shutdown hook: benchmarks and the load tool build the Lambda
// entry (serve.NewLambda) with them to drive the production path in-process.
func LambdaOptions(f Function, logger *slog.Logger) serve.Options {
	return serve.Options{Name: f.Name, Logger: logger, Codec: Codec}
}

// Handler returns f's handler as Serve runs it: wrapped in the per-request log line
// written to logger, with the request ids and cold-start flag of the runtime adapter.
// Benchmarks and load tests use it to drive the production handler in-process.
func Handler(f Function, a *api.API, logger *slog.Logger) http.Handler {
	return telemetry.Middleware(f.Handler(a), telemetry.Options{
		Logger:    logger,
		Function:  f.Name,
		Stage:     string(a.Config.Stage),
		Namespace: a.Config.HTTP.MetricsNamespace,
		RequestID: serve.RequestID,
		ColdStart: serve.ColdStart,
	})
}

// CacheOptions translates the configuration into the cache's own options: in-process
// dedupe in the HTTP mode, where one process serves many requests at once.
func CacheOptions(c config.Config) cache.Options {
	return cache.Options{
		Prefix:          c.Cache.KeyPrefix,
		OpTimeout:       c.Redis.OpTimeout,
		TTLJitter:       c.Cache.TTLJitter,
		NegativeTTL:     c.Cache.NegativeTTL,
		LeaseTTL:        c.Cache.LeaseTTL,
		LeaseWait:       c.Cache.LeaseWait,
		Dedupe:          c.Mode == config.ModeHTTP,
		FillTimeout:     c.Cache.LeaseWait + c.Source.Timeout + 2*c.Redis.OpTimeout,
		BreakerFailures: c.Redis.BreakerFailures,
		BreakerCooldown: c.Redis.BreakerCooldown,
	}
}

// Build assembles the API from cfg on a client holder. It does no I/O.
func Build(cfg config.Config, conn cache.Conn) (*api.API, error) {
	var src product.Source
	if cfg.Source.BaseURL != "" {
		s, err := product.NewHTTPSource(cfg.Source.BaseURL, cfg.Source.Timeout, nil)
		if err != nil {
			return nil, fmt.Errorf("PRODUCT_SOURCE_URL: %w", err)
		}
		src = s
	} else {
		c, err := product.NewCatalog(cfg.Source.Latency)
		if err != nil {
			return nil, err
		}
		src = c
	}
	svc := cache.New(conn, CacheOptions(cfg))
	// Lambda environments write their figures every 20 requests or 10 s (and at
	// shutdown); a long-lived server every 200 requests or 5 s.
	batch, every := 20, 10*time.Second
	if cfg.Mode == config.ModeHTTP {
		batch, every = 200, 5*time.Second
	}
	return &api.API{
		RequestID: serve.RequestID,
		Config:    cfg,
		Cache:     svc,
		Redis:     conn,
		Source:    src,
		Tally:     tally.New(svc, api.TallyKey, batch, every),
		Version:   Version(),
	}, nil
}
