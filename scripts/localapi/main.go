// Command localapi serves the whole store API (getProduct, health, cacheClear) on one
// port with the template's routes, for development without Docker or SAM:
//
//	go run ./scripts/localapi            # http://127.0.0.1:3000
//	go run ./scripts/localapi -addr 0.0.0.0 -port 8080
//
// It listens on 127.0.0.1 unless -addr (or $HOST) names another address, and on port
// -port ($PORT, else 3000). It uses REDIS_URL when set. Otherwise it starts an
// embedded in-memory Redis (miniredis), says so, and loses its data on exit;
// -embedded=false refuses that instead (the app container uses it). Only this program
// links miniredis: the functions' bootstraps never do.
//
// cacheClear needs the bearer token when CACHE_CLEAR_TOKEN is set. Without one it is
// open, but only on loopback: it answers requests that reach a loopback address for
// the host name localhost or a loopback IP, and when the program listens on any other
// address it is closed instead. The start-up lines say which.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
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
	addr := fs.String("addr", envHost(), "address to listen on: a host or IP (the port is -port), or host:port (default $HOST, else 127.0.0.1)")
	port := fs.Int("port", envPort(), "port to listen on (default $PORT, else 3000)")
	embedded := fs.Bool("embedded", true, "start an embedded in-memory Redis when REDIS_URL is not set")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	listen := listenAddr(*addr, *port)
	environ := env.ToMap(os.Environ())
	// The port is -port's (whose default is $PORT), set below to the one bound.
	delete(environ, "PORT")
	cfg, err := config.Parse(environ, config.ModeHTTP)
	if err != nil {
		return err
	}
	// Before anything says "listening": a port in use or an address that is not this
	// machine's fails here.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", listen, err)
	}
	defer ln.Close()
	bound := ln.Addr().(*net.TCPAddr)
	cfg.HTTP.Port = bound.Port

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
		// miniredis has no client tracking: auto would turn the tier on and then off
		// again on the first read, with a warning that means nothing here.
		if cfg.L1.L1Mode == config.L1Auto {
			cfg.L1.L1Mode = config.L1Off
		}
	}
	a, err := app.New(cfg)
	if err != nil {
		return err
	}
	a.API.Embedded = mr != nil
	// Open only on loopback: anywhere else any host that reaches the port, or a web
	// page through a browser on it, could empty the cache.
	loopback := bound.IP.IsLoopback()
	a.API.OpenClear = cfg.CacheClearToken == "" && loopback
	redisDesc := cfg.Redis.Redacted()
	if mr != nil {
		redisDesc = "embedded in-memory Redis (miniredis, data lost on exit; set REDIS_URL to use a real one)"
	}
	url := "http://" + bound.String()
	if bound.IP.IsUnspecified() {
		url = fmt.Sprintf("http://localhost:%d (every interface)", bound.Port)
	}
	clearDesc := "cacheClear needs the bearer token in CACHE_CLEAR_TOKEN"
	switch {
	case a.API.OpenClear:
		clearDesc = "cacheClear is open without a token, on loopback only (set CACHE_CLEAR_TOKEN to require one)"
	case cfg.CacheClearToken == "":
		clearDesc = fmt.Sprintf("cacheClear is closed: no CACHE_CLEAR_TOKEN, and %s is not loopback, where it could be open (set CACHE_CLEAR_TOKEN, or listen on 127.0.0.1)", bound)
	}
	logger.Info("local API starting",
		slog.String("url", url),
		slog.String("redis", redisDesc),
		slog.Bool("cacheClearOpen", a.API.OpenClear),
		slog.String("cacheClear", clearDesc),
		slog.String("routes", "GET /products/{id}, GET /health, POST /cache/clear"))
	fmt.Fprintf(os.Stderr, "storeapi listening on %s — Redis: %s\n", url, redisDesc)
	fmt.Fprintf(os.Stderr, "storeapi: %s\n", clearDesc)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.ServeOn(ctx, app.All, a, logger, ln)
}

// listenAddr is where to listen: addr itself when it has a port, else addr on port.
func listenAddr(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), strconv.Itoa(port))
}

func envHost() string {
	if h := os.Getenv("HOST"); h != "" {
		return h
	}
	return "127.0.0.1"
}

func envPort() int {
	if p, err := strconv.Atoi(os.Getenv("PORT")); err == nil && p > 0 {
		return p
	}
	return 3000
}
