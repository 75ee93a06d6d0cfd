// Command localapi serves the whole store API (getProduct, health, cacheClear) on one
// port with the template's routes, for development without Docker or SAM:
//
//	go run ./scripts/localapi            # http://localhost:3000
//
// It uses REDIS_URL when set. Otherwise it starts an embedded in-memory Redis
// (miniredis), says so, and loses its data on exit; -embedded=false refuses that
// instead (the app container uses it). Only this program links miniredis: the
// functions' bootstraps never do. cacheClear is open without a token here unless
// CACHE_CLEAR_TOKEN is set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/alicebob/miniredis/v2"
	"github.com/caarlos0/env/v10"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "localapi:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("localapi", flag.ContinueOnError)
	port := fs.Int("port", envPort(), "port to listen on (default $PORT, else 3000)")
	embedded := fs.Bool("embedded", true, "start an embedded in-memory Redis when REDIS_URL is not set")
	if err := fs.Parse(args); err != nil {
		return err
	}
	environ := env.ToMap(os.Environ())
	environ["PORT"] = strconv.Itoa(*port)
	cfg, err := config.Parse(environ, config.ModeHTTP)
	if err != nil {
		return err
	}
	logger, flush := app.NewLogger(os.Stdout, cfg)
	defer func() { _ = flush() }()

	var mr *miniredis.Miniredis
	if cfg.Redis.URL == "" {
		if !*embedded {
			return errors.New("REDIS_URL is not set and -embedded=false")
		}
		mr = miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return fmt.Errorf("embedded redis: %w", err)
		}
		defer mr.Close()
		cfg.Redis.URL = config.Secret("redis://" + mr.Addr())
	}
	a, err := app.New(cfg)
	if err != nil {
		return err
	}
	a.API.Embedded = mr != nil
	a.API.OpenClear = true
	redisDesc := cfg.Redis.Redacted()
	if mr != nil {
		redisDesc = "embedded in-memory Redis (miniredis, data lost on exit; set REDIS_URL to use a real one)"
	}
	logger.Info("local API starting",
		slog.String("url", fmt.Sprintf("http://localhost:%d", *port)),
		slog.String("redis", redisDesc),
		slog.Bool("cacheClearOpen", cfg.CacheClearToken == ""),
		slog.String("routes", "GET /products/{id}, GET /health, POST /cache/clear"))
	fmt.Fprintf(os.Stderr, "storeapi listening on http://localhost:%d — Redis: %s\n", *port, redisDesc)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Serve(ctx, app.All, a, logger, ":"+strconv.Itoa(*port))
}

func envPort() int {
	if p, err := strconv.Atoi(os.Getenv("PORT")); err == nil && p > 0 {
		return p
	}
	return 3000
}
