// Package app assembles the store API from its configuration and starts the runtime.
// New is the one constructor: from a config.Config it builds the lazy Redis client,
// the cache, the product source, the tally and the handlers, as an App that Close
// shuts down. Run, a function's whole main, builds the App on the process-wide client
// and serves it; the local run, the load tool, the benchmarks and the tests build
// theirs with New too.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	"github.com/acmestore/storeapi/pkg/tracing"
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
	shared, err := redisclient.Shared(cfg.Redis)
	if err != nil {
		return err
	}
	a, err := New(cfg, WithClient(shared))
	if err != nil {
		return err
	}
	return Serve(context.Background(), f, a, logger, ":"+strconv.Itoa(cfg.HTTP.Port))
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

// Serve runs f's handler on a's API, wrapped in the per-request log line, with the
// runtime adapter; at shutdown it closes a (see App.Close), within the time the
// runtime allows.
func Serve(ctx context.Context, f Function, a *App, logger *slog.Logger, addr string) error {
	o := LambdaOptions(f, logger)
	o.Addr = addr
	return serveWith(ctx, f, a, logger, o)
}

// ServeOn is Serve in the HTTP mode on a listener the caller opened, so that it can
// report a bind failure, and the address it got, before it says it is listening (the
// local run does). ServeOn closes ln.
func ServeOn(ctx context.Context, f Function, a *App, logger *slog.Logger, ln net.Listener) error {
	o := LambdaOptions(f, logger)
	o.Listener = ln
	return serveWith(ctx, f, a, logger, o)
}

func serveWith(ctx context.Context, f Function, a *App, logger *slog.Logger, o serve.Options) error {
	o.AfterInvoke = a.afterInvoke()
	o.OnShutdown = func(ctx context.Context) error {
		err := a.close(ctx)
		logger.LogAttrs(ctx, slog.LevelInfo, "redis client closed", slog.String("function", f.Name))
		return err
	}
	return serve.Run(ctx, a.Handler(f, logger), o)
}

// Lambda returns f's Lambda entry as Run serves it under Lambda: a's traced handler
// (see App.Handler) and the flush of each invocation's spans. Tests and benchmarks
// drive the production Lambda path in-process with it (Lambda.Invoke).
func (a *App) Lambda(f Function, logger *slog.Logger) *serve.Lambda {
	o := LambdaOptions(f, logger)
	o.AfterInvoke = a.afterInvoke()
	return serve.NewLambda(a.Handler(f, logger), o)
}

// afterInvoke is what runs at the end of each Lambda invocation: the flush of its
// spans when tracing is on, nothing otherwise.
func (a *App) afterInvoke() func(context.Context) {
	if a.tracer == nil {
		return nil
	}
	return a.tracer.Flush
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
	return logged(f, a, logger, f.Handler(a))
}

// Handler is f's handler as Serve runs it on a: the package-level Handler, with a
// span around each request inside the log line when tracing is on (config.Tracing).
// With tracing off it is exactly Handler.
func (a *App) Handler(f Function, logger *slog.Logger) http.Handler {
	h := f.Handler(a.API)
	if a.tracer != nil {
		h = a.tracer.Middleware(h, tracing.Options{
			Function:          f.Name,
			RequestID:         serve.RequestID,
			ColdStart:         serve.ColdStart,
			LambdaTraceHeader: serve.TraceHeader,
		})
	}
	return logged(f, a.API, logger, h)
}

// logged wraps h, f's handler on a, in the per-request log line.
func logged(f Function, a *api.API, logger *slog.Logger, h http.Handler) http.Handler {
	return telemetry.Middleware(h, telemetry.Options{
		Logger:    logger,
		Function:  f.Name,
		Stage:     string(a.Config.Stage),
		Namespace: a.Config.HTTP.MetricsNamespace,
		RequestID: serve.RequestID,
		ColdStart: serve.ColdStart,
	})
}

// CacheOptions translates the configuration into the cache's own options: in-process
// dedupe and background refreshes in the HTTP mode, where one process serves many
// requests at once and keeps running after a response.
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

		StaleWhileRevalidate: c.Cache.StaleWhileRevalidate,
		StaleIfError:         c.Cache.StaleIfError,
		// Under Lambda nothing runs after the response: the invocation that takes
		// a refresh lease refreshes before it answers.
		BackgroundRefresh: c.Mode == config.ModeHTTP,
		EarlyRefresh:      c.Cache.EarlyRefresh,
		RefreshBackoff:    c.Cache.RefreshBackoff,
	}
}

// App is the store API assembled from one configuration: the API (handlers, cache,
// product source, tally) and the Redis client holder it runs on, which the App owns.
// Every program builds it with New: the functions (through Run), the local run, the
// load tool, the benchmarks and the tests.
type App struct {
	// API is the functions' shared parts; each of its methods is one function's
	// handler (see Function).
	API *api.API
	// Client is the lazy client holder under API.Cache and API.Redis.
	Client *redisclient.Lazy

	l1       *cache.L1
	tracking *redisclient.Lazy
	db       *database       // the PostgreSQL source's pool and listener, if any
	tracer   *tracing.Tracer // nil with tracing off
}

// Option changes how New assembles an App.
type Option func(*settings)

type settings struct {
	client      *redisclient.Lazy
	source      product.Source
	tallyBatch  int
	tallyEvery  time.Duration
	tallyPreset bool
}

// WithClient makes the App use l instead of a holder of its own built from the
// configuration. Run passes the process-wide holder (redisclient.Shared). The App
// still closes l in Close.
func WithClient(l *redisclient.Lazy) Option {
	return func(s *settings) { s.client = l }
}

// WithSource makes the App read products from src instead of the source the
// configuration names (PRODUCT_SOURCE_URL, else the embedded catalog): tests use it
// to count or slow the fetches.
func WithSource(src product.Source) Option {
	return func(s *settings) { s.source = src }
}

// WithTallyBatch makes the App write its figures to Redis every batch outcomes or
// every interval, whichever comes first, instead of the mode's default (20 or 10 s
// under Lambda, 200 or 5 s in the HTTP mode). Tests use a batch of 1, so health
// shows each request's outcome at once.
func WithTallyBatch(batch int, every time.Duration) Option {
	return func(s *settings) { s.tallyBatch, s.tallyEvery, s.tallyPreset = batch, every, true }
}

// New assembles the App from cfg. It does no network I/O: the client is built on
// first use and dials on its first command. It fails when cfg names a Redis it cannot
// make options for (a bad CA file, a database in cluster mode) or a product source it
// cannot use.
func New(cfg config.Config, opts ...Option) (*App, error) {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	if s.client == nil {
		o, err := redisclient.Options(cfg.Redis)
		if err != nil {
			return nil, err
		}
		s.client = redisclient.NewLazy(o)
	}
	tracer, err := newTracer(cfg)
	if err != nil {
		return nil, err
	}
	if s.source == nil {
		src, err := newSource(cfg, tracer)
		if err != nil {
			tracer.Discard()
			return nil, err
		}
		s.source = src
	}
	if !s.tallyPreset {
		// Lambda environments write their figures every 20 requests or 10 s (and at
		// shutdown); a long-lived server every 200 requests or 5 s.
		s.tallyBatch, s.tallyEvery = 20, 10*time.Second
		if cfg.Mode == config.ModeHTTP {
			s.tallyBatch, s.tallyEvery = 200, 5*time.Second
		}
	}
	co := CacheOptions(cfg)
	src := s.source
	if tracer != nil {
		co.WaitHook = tracer.Wait
		s.client.OnBuild(tracer.InstrumentRedis)
		src = tracer.Source(src)
	}
	l1, tracking := newL1(cfg, s.client)
	co.L1 = l1
	svc := cache.New(s.client, co)
	db, err := startDatabase(cfg, s.source, svc)
	if err != nil {
		_ = (&App{l1: l1, tracking: tracking}).closeL1()
		tracer.Discard()
		return nil, err
	}
	return &App{
		l1:       l1,
		tracking: tracking,
		tracer:   tracer,
		API: &api.API{
			RequestID: serve.RequestID,
			Config:    cfg,
			Cache:     svc,
			Redis:     s.client,
			Source:    src,
			Tally:     tally.New(svc, api.TallyKey(cfg.Cache.KeyPrefix), s.tallyBatch, s.tallyEvery),
			Version:   Version(),
		},
		Client: s.client,
		db:     db,
	}, nil
}

// newSource returns the product source cfg names: PostgreSQL at DATABASE_URL, the
// HTTP source at PRODUCT_SOURCE_URL (its client traced when tracer is not nil), else
// the embedded catalog.
func newSource(cfg config.Config, tracer *tracing.Tracer) (product.Source, error) {
	if cfg.Database.ConnString != "" {
		return newPostgres(cfg)
	}
	if cfg.Source.BaseURL != "" {
		var client *http.Client
		if tracer != nil {
			// The source service continues the trace (traceparent).
			client = &http.Client{Transport: tracer.Transport(nil)}
		}
		s, err := product.NewHTTPSource(cfg.Source.BaseURL, cfg.Source.Timeout, client)
		if err != nil {
			return nil, fmt.Errorf("PRODUCT_SOURCE_URL: %w", err)
		}
		return s, nil
	}
	c, err := product.NewCatalog(cfg.Source.Latency)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Close writes the application figures still pending (see package tally), stops the
// product listener and closes the database pool, if any, and closes the Redis client. The write goes through the cache, so it takes at most the
// operation timeout, and none at all while the breaker is open or nothing is
// pending; counts it could not write are lost. Call Close once the App has stopped
// serving; Serve calls it at shutdown.
func (a *App) Close() error {
	return a.close(context.Background())
}

// close is Close within ctx, the time the runtime allows for shutdown.
func (a *App) close(ctx context.Context) error {
	var errs []error
	// Refreshes still running store what they fetched before the client goes.
	errs = append(errs, a.API.Cache.Wait(ctx))
	if a.API.Tally != nil {
		errs = append(errs, a.API.Tally.Flush(ctx))
	}
	// Before the Redis client: the listener invalidates through it.
	errs = append(errs, a.db.close(ctx))
	errs = append(errs, a.closeL1(), a.Client.Close())
	if a.tracer != nil {
		// Last: the spans of the work above go out too.
		errs = append(errs, a.tracer.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// newTracer returns the Tracer cfg asks for, or nil with tracing off: then nothing
// of the SDK runs.
func newTracer(cfg config.Config) (*tracing.Tracer, error) {
	if !cfg.Tracing.Enabled() {
		return nil, nil
	}
	return tracing.New(context.Background(), cfg.Tracing)
}
