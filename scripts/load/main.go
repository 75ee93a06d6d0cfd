// Command load drives getProduct against a real Redis and reports throughput,
// latency percentiles and cache outcomes:
//
//	go run ./scripts/load -mode lambda -c 1 -d 10s           # in-process Lambda entry, API Gateway v2 events
//	go run ./scripts/load -mode http -url http://127.0.0.1:3000 -c 64 -d 10s -baseline
//	go run ./scripts/load -mode redis -c 16 -n 100000        # the spec's SET/GET load through cache.Service
//
// In lambda mode each of the -c workers is an execution environment of its own (its
// own client, pool and Lambda entry, built as the getProduct function builds them in
// Lambda mode), invoked with the raw bytes of events/getproduct.v2.json rewritten for
// each product id. In http mode it sends GET /products/{id} to -url; with -baseline it
// also starts, as a process of its own on a loopback port (as the server under test
// is), a bare net/http server that answers with one raw go-redis GET of the same
// stored bytes, and drives both in alternating rounds of the same run, so the two
// figures share the machine's state. (Served from inside this process, the baseline
// would share the tool's Go runtime and skip a process switch per request: on a
// 2-core machine that made it about 10% faster than the same server run on its own.)
//
// Keys are the catalog's product ids, uniform or Zipf-distributed. -hit-ratio h warms
// every key first and then, before a fraction 1-h of the requests (untimed), deletes
// the key the request will ask for, so that request is a real miss.
//
// A run stops by itself after -n requests or -d, whichever comes first. Only loopback
// targets are accepted: the tool is for the local server and the local Redis. The
// environment (REDIS_URL, CACHE_KEY_PREFIX, ...) configures it as it does the server.
// At the end it cleans up: without CACHE_KEY_PREFIX it uses a random prefix and removes
// every key under it; with one, which the server under test shares, it removes the
// product entries of the run and gives the application's figures (the tally hash) a
// TTL of 10 minutes instead of removing them from under a running server.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/redisclient"
	"github.com/caarlos0/env/v10"
	"github.com/redis/go-redis/v9"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type flags struct {
	mode       string
	target     string
	c          int
	rate       float64
	n          int64
	d          time.Duration
	keys       string
	zipfS      float64
	hitRatio   float64
	writeRatio float64
	downAfter  time.Duration
	downFor    time.Duration
	baseline   bool
	rounds     int
	jsonOut    bool
	event      string
	report     string
	// tidyOnly makes this process only tidy up after another tool's run.
	tidyOnly bool
	// serveBaseline makes this process the baseline server of a parent run.
	serveBaseline bool
}

// run runs the tool with args and writes its report to out.
func run(args []string, out io.Writer) error {
	started := time.Now()
	var f flags
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&f.mode, "mode", "lambda", "lambda (in-process Lambda entry), http (GET -url) or redis (SET/GET through cache.Service)")
	fs.StringVar(&f.target, "url", "http://127.0.0.1:3000", "http mode: base URL of the local server (loopback only)")
	fs.IntVar(&f.c, "c", 1, "concurrency: workers (in lambda mode, execution environments)")
	fs.Float64Var(&f.rate, "rate", 0, "open loop: offer this many requests/s in all, spread evenly over the -c workers, and time each request from when it was due (0: closed loop, each worker sends when its last answer came)")
	fs.Int64Var(&f.n, "n", 0, "stop after this many requests (0: only -d bounds the run)")
	fs.DurationVar(&f.d, "d", 10*time.Second, "stop after this long (at most 10m)")
	fs.StringVar(&f.keys, "keys", "uniform", "key distribution over the catalog ids: uniform, zipf, or hot (every request for the first id)")
	fs.DurationVar(&f.downAfter, "source-down-after", 0, "lambda mode: the product source fails every read from this long after the timed run starts ...")
	fs.DurationVar(&f.downFor, "source-down-for", 0, "lambda mode: ... for this long (0: never down)")
	fs.Float64Var(&f.zipfS, "zipf-s", 1.1, "Zipf exponent (> 1)")
	fs.Float64Var(&f.hitRatio, "hit-ratio", 1, "target cache hit ratio in [0, 1]: the rest are made misses by deleting the key first")
	fs.Float64Var(&f.writeRatio, "write-ratio", 0.1, "redis mode: fraction of operations that are SETs")
	fs.BoolVar(&f.baseline, "baseline", false, "http mode: also drive a bare net/http + raw go-redis GET server, started as a process of its own, in alternating rounds")
	fs.BoolVar(&f.serveBaseline, "serve-baseline", false, "internal: serve the baseline, print its address, and stop when standard input closes")
	fs.BoolVar(&f.tidyOnly, "tidy", false, "drive nothing: only tidy up under CACHE_KEY_PREFIX as a run's end does (remove the product entries, give the application's figures a TTL), for a run driven by another tool (scripts/bench-http)")
	fs.IntVar(&f.rounds, "rounds", 2, "http mode with -baseline: rounds of each (each round runs -n/-d)")
	fs.BoolVar(&f.jsonOut, "json", false, "print the results as JSON on stdout")
	fs.StringVar(&f.event, "event", "events/getproduct.v2.json", "lambda mode: the API Gateway v2 event the requests are made from")
	fs.StringVar(&f.report, "report", "", "also write a report of the run to this file: a self-contained HTML page (throughput, p50/p95/p99 and outcomes per second, the parameters), or the figure alone for a name ending in .svg or .png")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case f.c < 1:
		return errors.New("-c must be at least 1")
	case f.n < 0 || f.d < 0:
		return errors.New("-n and -d must not be negative")
	case f.n == 0 && f.d == 0:
		return errors.New("set -n or -d: the run must be bounded")
	case f.d > 10*time.Minute:
		return errors.New("-d is at most 10m")
	case f.rate < 0 || math.IsNaN(f.rate) || math.IsInf(f.rate, 0):
		return errors.New("-rate must be a number of requests/s, at least 0")
	case f.rate > 0 && float64(f.c)/f.rate > 60:
		return errors.New("-rate is too low for -c: each worker would wait more than a minute between requests")
	case f.hitRatio < 0 || f.hitRatio > 1:
		return errors.New("-hit-ratio must be in [0, 1]")
	case f.keys != "uniform" && f.keys != "zipf" && f.keys != "hot":
		return errors.New("-keys must be uniform, zipf or hot")
	case f.downAfter < 0 || f.downFor < 0:
		return errors.New("-source-down-after and -source-down-for must not be negative")
	case f.downFor > 0 && f.mode != "lambda":
		return errors.New("-source-down-for works in lambda mode only: the http mode's source is the server's")
	case f.keys == "zipf" && f.zipfS <= 1:
		return errors.New("-zipf-s must be > 1")
	}
	if f.d == 0 {
		f.d = 10 * time.Minute
	}
	if f.serveBaseline {
		f.mode = "http"
	}

	environ := env.ToMap(os.Environ())
	if environ["REDIS_URL"] == "" {
		environ["REDIS_URL"] = "redis://127.0.0.1:6379"
	}
	ownPrefix := environ["CACHE_KEY_PREFIX"] == ""
	if ownPrefix && f.tidyOnly {
		return errors.New("-tidy needs CACHE_KEY_PREFIX: the prefix of the run to tidy up after")
	}
	if ownPrefix {
		var b [6]byte
		_, _ = rand.Read(b[:])
		// Its last segment is the stage, as config requires of every prefix.
		environ["CACHE_KEY_PREFIX"] = "load:" + hex.EncodeToString(b[:]) + ":" + cmp.Or(environ["STAGE"], string(config.StageDev)) + ":"
	}
	// Lambda mode's pool (1–2 connections) fits one request at a time per
	// environment; the redis mode shares one Service among -c workers, as the
	// long-lived HTTP mode does.
	mode := config.ModeLambda
	if f.mode == "http" || f.mode == "redis" {
		mode = config.ModeHTTP
	}
	cfg, err := config.Parse(environ, mode)
	if err != nil {
		return err
	}
	if err := loopbackRedis(cfg); err != nil {
		return err
	}
	opts, err := redisclient.Options(cfg.Redis)
	if err != nil {
		return err
	}
	// The tool's own client, for warming, making misses, cleaning up and the
	// baseline: plain go-redis on the same options, outside any App, so that its
	// commands count in no App's figures or breaker.
	ctl := redis.NewUniversalClient(opts)
	defer ctl.Close()
	cat, err := product.NewCatalog(0)
	if err != nil {
		return err
	}
	ids := cat.IDs()
	fullKey := func(id string) string { return cfg.Cache.KeyPrefix + api.ProductKeys.Key(id) }

	if f.serveBaseline {
		// The parent run tidies up; this process only reads.
		return serveBaseline(ctl, fullKey, out)
	}
	// Registered first, so it runs last: after the environments, the App and the
	// baseline are closed and have written what they had pending.
	defer func() {
		if ownPrefix {
			cleanup(ctl, cfg.Cache.KeyPrefix)
			fmt.Fprintf(os.Stderr, "load: removed the keys under %s\n", cfg.Cache.KeyPrefix)
			return
		}
		removed, err := tidy(ctl, cfg.Cache.KeyPrefix, ids, fullKey)
		if err != nil {
			fmt.Fprintf(os.Stderr, "load: tidying up under %s: %v\n", cfg.Cache.KeyPrefix, err)
			return
		}
		fmt.Fprintf(os.Stderr, "load: removed %d product entries under %s; the application's figures (%s) expire in %v\n",
			removed, cfg.Cache.KeyPrefix, api.TallyKey(cfg.Cache.KeyPrefix), leftTTL)
	}()

	if f.tidyOnly {
		return nil // the deferred tidy-up is the whole job
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var results []result
	switch f.mode {
	case "lambda":
		ev, err := os.ReadFile(f.event)
		if err != nil {
			return err
		}
		// The environments' source, as app.New would make it (with
		// PRODUCT_SOURCE_LATENCY), counted and made to fail on request.
		var base product.Source
		if base, err = product.NewCatalog(cfg.Source.Latency); err != nil {
			return err
		}
		if cfg.Source.BaseURL != "" {
			if base, err = product.NewHTTPSource(cfg.Source.BaseURL, cfg.Source.Timeout, nil); err != nil {
				return err
			}
		}
		src := &countingSource{src: base, downFrom: f.downAfter, downUntil: f.downAfter + f.downFor}
		do, closeEnvs, stats, err := lambdaDriver(cfg, ids, ev, f.c, src)
		if err != nil {
			return err
		}
		defer closeEnvs()
		var before cache.Stats
		var readsBefore int64
		r, err := drive(ctx, f, "lambda", ids, ctl, fullKey, do, func() {
			before, readsBefore = stats(), src.reads.Load()
			src.start.Store(time.Now().UnixNano())
		})
		if err != nil {
			return err
		}
		after := stats()
		r.Cache = &cache.Stats{
			Fetches: after.Fetches - before.Fetches, Refreshes: after.Refreshes - before.Refreshes,
			EarlyRefreshes: after.EarlyRefreshes - before.EarlyRefreshes, RefreshFailures: after.RefreshFailures - before.RefreshFailures,
			LeaseWaits: after.LeaseWaits - before.LeaseWaits, Stale: after.Stale - before.Stale,
		}
		r.Source = &sourceFigures{Reads: src.reads.Load() - readsBefore, Failures: src.failures.Load()}
		r.Source.FailedIDs, r.Source.MostFailuresPerID = src.failedPerID()
		results = append(results, r)
	case "http":
		u, err := loopbackURL(f.target)
		if err != nil {
			return err
		}
		client := &http.Client{Transport: &http.Transport{
			MaxIdleConns: f.c, MaxIdleConnsPerHost: f.c, MaxConnsPerHost: f.c,
			DisableCompression: true, IdleConnTimeout: time.Minute,
		}, Timeout: 10 * time.Second}
		target := httpDriver(client, u)
		var base func(context.Context, int, string) (outcome, error)
		if f.baseline {
			addr, closeBase, err := spawnBaseline(environ)
			if err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
			defer closeBase()
			bu, _ := url.Parse("http://" + addr)
			base = httpDriver(client, bu)
		}
		rounds := 1
		if f.baseline {
			rounds = max(f.rounds, 1)
		}
		var tr, br []result
		for i := range rounds {
			r, err := drive(ctx, f, "http "+u.String(), ids, ctl, fullKey, target, nil)
			if err != nil {
				return err
			}
			tr = append(tr, r)
			if base != nil {
				r, err := drive(ctx, f, "baseline", ids, ctl, fullKey, base, nil)
				if err != nil {
					return err
				}
				br = append(br, r)
			}
			if ctx.Err() != nil || i == rounds-1 {
				break
			}
		}
		results = append(results, merge(tr))
		if len(br) > 0 {
			results = append(results, merge(br))
		}
	case "redis":
		a, err := app.New(cfg)
		if err != nil {
			return err
		}
		defer a.Close()
		svc := a.API.Cache
		do := redisDriver(svc, cat, f.writeRatio)
		f.hitRatio = 1 // misses are not made in this mode
		r, err := drive(ctx, f, "redis", ids, ctl, func(id string) string { return svc.Key("load:" + id) }, do, nil)
		if err != nil {
			return err
		}
		results = append(results, r)
	default:
		return fmt.Errorf("-mode %q: want lambda, http or redis", f.mode)
	}
	report(out, f, results)
	if f.report != "" {
		info := reportInfo{Args: args, Redis: cfg.Redis.Redacted(), Started: started}
		if err := writeReport(f.report, f, info, results); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "load: report written to %s\n", f.report)
	}
	return nil
}

func loopbackURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("-url %q: only http:// to a loopback address", s)
	}
	if !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("-url %q: refusing a non-loopback host; this tool only loads the local server", s)
	}
	return u, nil
}

func loopbackRedis(cfg config.Config) error {
	ep, err := cfg.Redis.Endpoint()
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(ep.Addr)
	if err != nil {
		host = ep.Addr
	}
	if !isLoopback(host) {
		return fmt.Errorf("REDIS_URL points to %s: refusing a non-loopback Redis", cfg.Redis.Redacted())
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// leftTTL is how long the application's figures stay after a run under a prefix the
// tool was given.
const leftTTL = 10 * time.Minute

// tidy cleans up after a run under a prefix the tool was given, which the server under
// test shares and which may hold other keys: it removes the entries of every catalog
// product (the tool warmed them all, and deleted some to make misses that the server
// filled again) and the redis mode's load:<id> entries, and gives the application's
// figures (the tally hash at api.TallyKey(prefix), which the server and the tool's own
// environments add to) a TTL of leftTTL rather than removing them under a server that
// may still be running and report them. The server's writes after that keep the TTL.
func tidy(rdb redis.UniversalClient, prefix string, ids []string, fullKey func(string) string) (removed int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := make([]string, 0, 500)
	flush := func() {
		if len(keys) == 0 || err != nil {
			return
		}
		var n int64
		n, err = rdb.Unlink(ctx, keys...).Result()
		removed += n
		keys = keys[:0]
	}
	for _, id := range ids {
		keys = append(keys, fullKey(id), prefix+"load:"+id)
		if len(keys) >= 500 {
			flush()
		}
	}
	flush()
	if err != nil {
		return removed, err
	}
	return removed, rdb.Expire(ctx, api.TallyKey(prefix), leftTTL).Err()
}

// cleanup removes the keys under the tool's own prefix and the figures beside it.
func cleanup(rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	keys := []string{api.TallyKey(prefix)}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			_ = rdb.Unlink(ctx, keys...).Err()
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		_ = rdb.Unlink(ctx, keys...).Err()
	}
}
