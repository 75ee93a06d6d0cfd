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
// environment (REDIS_URL, CACHE_KEY_PREFIX, ...) configures it as it does the server;
// without CACHE_KEY_PREFIX it uses a random prefix and removes its keys at the end.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/redisclient"
	"github.com/acmestore/storeapi/pkg/serve"
	"github.com/acmestore/storeapi/pkg/telemetry"
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
	n          int64
	d          time.Duration
	keys       string
	zipfS      float64
	hitRatio   float64
	writeRatio float64
	baseline   bool
	rounds     int
	jsonOut    bool
	event      string
	// serveBaseline makes this process the baseline server of a parent run.
	serveBaseline bool
}

// run runs the tool with args and writes its report to out.
func run(args []string, out io.Writer) error {
	var f flags
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&f.mode, "mode", "lambda", "lambda (in-process Lambda entry), http (GET -url) or redis (SET/GET through cache.Service)")
	fs.StringVar(&f.target, "url", "http://127.0.0.1:3000", "http mode: base URL of the local server (loopback only)")
	fs.IntVar(&f.c, "c", 1, "concurrency: workers (in lambda mode, execution environments)")
	fs.Int64Var(&f.n, "n", 0, "stop after this many requests (0: only -d bounds the run)")
	fs.DurationVar(&f.d, "d", 10*time.Second, "stop after this long (at most 10m)")
	fs.StringVar(&f.keys, "keys", "uniform", "key distribution over the catalog ids: uniform or zipf")
	fs.Float64Var(&f.zipfS, "zipf-s", 1.1, "Zipf exponent (> 1)")
	fs.Float64Var(&f.hitRatio, "hit-ratio", 1, "target cache hit ratio in [0, 1]: the rest are made misses by deleting the key first")
	fs.Float64Var(&f.writeRatio, "write-ratio", 0.1, "redis mode: fraction of operations that are SETs")
	fs.BoolVar(&f.baseline, "baseline", false, "http mode: also drive a bare net/http + raw go-redis GET server, started as a process of its own, in alternating rounds")
	fs.BoolVar(&f.serveBaseline, "serve-baseline", false, "internal: serve the baseline, print its address, and stop when standard input closes")
	fs.IntVar(&f.rounds, "rounds", 2, "http mode with -baseline: rounds of each (each round runs -n/-d)")
	fs.BoolVar(&f.jsonOut, "json", false, "print the results as JSON on stdout")
	fs.StringVar(&f.event, "event", "events/getproduct.v2.json", "lambda mode: the API Gateway v2 event the requests are made from")
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
	case f.hitRatio < 0 || f.hitRatio > 1:
		return errors.New("-hit-ratio must be in [0, 1]")
	case f.keys != "uniform" && f.keys != "zipf":
		return errors.New("-keys must be uniform or zipf")
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
	if ownPrefix {
		var b [6]byte
		_, _ = rand.Read(b[:])
		environ["CACHE_KEY_PREFIX"] = "load:" + hex.EncodeToString(b[:]) + ":"
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
	// The tool's own client: warming, making misses, cleaning up, the baseline.
	ctl := redis.NewUniversalClient(opts)
	defer ctl.Close()
	cat, err := product.NewCatalog(0)
	if err != nil {
		return err
	}
	ids := cat.IDs()
	fullKey := func(id string) string { return cfg.Cache.KeyPrefix + api.ProductKeys.Key(id) }
	if ownPrefix {
		defer cleanup(ctl, cfg.Cache.KeyPrefix)
	}

	if f.serveBaseline {
		return serveBaseline(ctl, fullKey, out)
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
		do, err := lambdaDriver(cfg, ids, ev, f.c)
		if err != nil {
			return err
		}
		r, err := drive(ctx, f, "lambda", ids, ctl, fullKey, do)
		if err != nil {
			return err
		}
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
			r, err := drive(ctx, f, "http "+u.String(), ids, ctl, fullKey, target)
			if err != nil {
				return err
			}
			tr = append(tr, r)
			if base != nil {
				r, err := drive(ctx, f, "baseline", ids, ctl, fullKey, base)
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
		lazy := redisclient.NewLazy(opts)
		defer lazy.Close()
		svc := cache.New(lazy, app.CacheOptions(cfg))
		do := redisDriver(svc, cat, f.writeRatio)
		f.hitRatio = 1 // misses are not made in this mode
		r, err := drive(ctx, f, "redis", ids, ctl, func(id string) string { return svc.Key("load:" + id) }, do)
		if err != nil {
			return err
		}
		results = append(results, r)
	default:
		return fmt.Errorf("-mode %q: want lambda, http or redis", f.mode)
	}
	report(out, f, results)
	return nil
}

// outcome is what one request got.
type outcome int

const (
	outHit outcome = iota
	outMiss
	outBypass
	outOther // answered, without an X-Cache
	outSet   // redis mode: a SET
)

// result is one run's figures.
type result struct {
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency"`
	Requests    int64   `json:"requests"`
	Seconds     float64 `json:"seconds"`
	OpsPerSec   float64 `json:"opsPerSec"`
	P50us       float64 `json:"p50Us"`
	P95us       float64 `json:"p95Us"`
	P99us       float64 `json:"p99Us"`
	MaxUs       float64 `json:"maxUs"`
	Hits        int64   `json:"hits"`
	Misses      int64   `json:"misses"`
	Bypass      int64   `json:"bypass"`
	Other       int64   `json:"other"`
	Sets        int64   `json:"sets,omitempty"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"firstError,omitempty"`

	lat []time.Duration
}

// drive warms the keys, then runs f.c workers calling do until -n or -d.
func drive(ctx context.Context, f flags, name string, ids []string, ctl redis.UniversalClient, fullKey func(string) string, do func(context.Context, int, string) (outcome, error)) (result, error) {
	// Warm every key through the path itself (a miss fills it).
	for _, id := range ids {
		if _, err := do(ctx, 0, id); err != nil {
			return result{}, fmt.Errorf("%s: warming %s: %w", name, id, err)
		}
	}
	var (
		issued, done                            atomic.Int64
		hits, misses, bypass, other, sets, errs atomic.Int64
		firstErr                                atomic.Value
		mu                                      sync.Mutex
		lat                                     []time.Duration
	)
	ctx, cancel := context.WithTimeout(ctx, f.d)
	defer cancel()
	start := time.Now()
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				el := time.Since(start).Seconds()
				fmt.Fprintf(os.Stderr, "\r%-10s %5.0fs %9d req %9.0f req/s  hit %d miss %d bypass %d err %d   ",
					name, el, done.Load(), float64(done.Load())/el, hits.Load(), misses.Load(), bypass.Load(), errs.Load())
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range f.c {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var zipf *mrand.Zipf
			if f.keys == "zipf" {
				zipf = mrand.NewZipf(rng, f.zipfS, 1, uint64(len(ids)-1))
			}
			mine := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				if f.n > 0 && issued.Add(1) > f.n {
					break
				}
				var id string
				if zipf != nil {
					id = ids[zipf.Uint64()]
				} else {
					id = ids[rng.IntN(len(ids))]
				}
				if f.hitRatio < 1 && rng.Float64() >= f.hitRatio {
					_ = ctl.Del(context.Background(), fullKey(id)).Err()
				}
				t0 := time.Now()
				o, err := do(ctx, w, id)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						break // the run ended during the request
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					switch o {
					case outHit:
						hits.Add(1)
					case outMiss:
						misses.Add(1)
					case outBypass:
						bypass.Add(1)
					case outSet:
						sets.Add(1)
					default:
						other.Add(1)
					}
				}
				done.Add(1)
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()
	<-progressDone
	fmt.Fprintln(os.Stderr)
	r := result{
		Name: name, Concurrency: f.c, Requests: int64(len(lat)), Seconds: elapsed.Seconds(),
		Hits: hits.Load(), Misses: misses.Load(), Bypass: bypass.Load(), Other: other.Load(), Sets: sets.Load(), Errors: errs.Load(),
		lat: lat,
	}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstError = s
	}
	r.finish()
	return r, nil
}

func (r *result) finish() {
	slices.Sort(r.lat)
	r.Requests = int64(len(r.lat))
	if r.Seconds > 0 {
		r.OpsPerSec = float64(r.Requests) / r.Seconds
	}
	q := func(p float64) float64 {
		if len(r.lat) == 0 {
			return 0
		}
		i := int(math.Ceil(p*float64(len(r.lat)))) - 1
		return float64(r.lat[max(i, 0)].Nanoseconds()) / 1e3
	}
	r.P50us, r.P95us, r.P99us, r.MaxUs = q(0.50), q(0.95), q(0.99), q(1)
}

// merge adds up the rounds of one target.
func merge(rs []result) result {
	if len(rs) == 1 {
		return rs[0]
	}
	m := result{Name: rs[0].Name, Concurrency: rs[0].Concurrency}
	for _, r := range rs {
		m.Seconds += r.Seconds
		m.Hits += r.Hits
		m.Misses += r.Misses
		m.Bypass += r.Bypass
		m.Other += r.Other
		m.Sets += r.Sets
		m.Errors += r.Errors
		if m.FirstError == "" {
			m.FirstError = r.FirstError
		}
		m.lat = append(m.lat, r.lat...)
	}
	m.finish()
	return m
}

func report(w io.Writer, f flags, rs []result) {
	if f.jsonOut {
		out := map[string]any{"mode": f.mode, "keys": f.keys, "hitRatioTarget": f.hitRatio, "results": rs}
		if len(rs) == 2 && rs[1].OpsPerSec > 0 {
			out["targetVsBaseline"] = rs[0].OpsPerSec / rs[1].OpsPerSec
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return
	}
	for _, r := range rs {
		fmt.Fprintf(w, "%s: c=%d %d requests in %.1fs = %.0f req/s\n", r.Name, r.Concurrency, r.Requests, r.Seconds, r.OpsPerSec)
		fmt.Fprintf(w, "  latency p50 %.0fµs p95 %.0fµs p99 %.0fµs max %.0fµs\n", r.P50us, r.P95us, r.P99us, r.MaxUs)
		fmt.Fprintf(w, "  hit %d miss %d bypass %d other %d sets %d errors %d", r.Hits, r.Misses, r.Bypass, r.Other, r.Sets, r.Errors)
		if r.FirstError != "" {
			fmt.Fprintf(w, " (first: %s)", r.FirstError)
		}
		fmt.Fprintln(w)
	}
	if len(rs) == 2 && rs[1].OpsPerSec > 0 {
		fmt.Fprintf(w, "target/baseline throughput: %.2f\n", rs[0].OpsPerSec/rs[1].OpsPerSec)
	}
}

// lambdaDriver builds one getProduct execution environment per worker, as the
// function builds itself in Lambda mode, and the v2 event of each product id.
func lambdaDriver(cfg config.Config, ids []string, template []byte, c int) (func(context.Context, int, string) (outcome, error), error) {
	events := make(map[string][]byte, len(ids))
	var ev map[string]any
	if err := json.Unmarshal(template, &ev); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	oldID, _ := ev["pathParameters"].(map[string]any)["id"].(string)
	if oldID == "" {
		return nil, errors.New("event: no pathParameters.id")
	}
	for _, id := range ids {
		// The template's id appears in rawPath, requestContext.http.path,
		// pathParameters and the referer header: replace it everywhere.
		events[id] = bytes.ReplaceAll(template, []byte(oldID), []byte(id))
	}
	logger := telemetry.NewLogger(io.Discard, cfg.LogLevel)
	opts, err := redisclient.Options(cfg.Redis)
	if err != nil {
		return nil, err
	}
	envs := make([]*serve.Lambda, c)
	for i := range envs {
		a, err := app.Build(cfg, redisclient.NewLazy(opts))
		if err != nil {
			return nil, err
		}
		envs[i] = serve.NewLambda(app.Handler(app.GetProduct, a, logger), app.LambdaOptions(app.GetProduct, logger))
	}
	hit, miss, byp := []byte(`"X-Cache":"HIT"`), []byte(`"X-Cache":"MISS"`), []byte(`"X-Cache":"BYPASS"`)
	return func(ctx context.Context, w int, id string) (outcome, error) {
		// The runtime's context: the invocation's own deadline (a 30 s function
		// timeout), not the run's, so the run's end does not turn into 504s.
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		out, err := envs[w].Invoke(ictx, events[id])
		if err != nil {
			return outOther, err
		}
		if !bytes.Contains(out, []byte(`"statusCode":200`)) {
			return outOther, fmt.Errorf("response %.200s", out)
		}
		switch {
		case bytes.Contains(out, hit):
			return outHit, nil
		case bytes.Contains(out, miss):
			return outMiss, nil
		case bytes.Contains(out, byp):
			return outBypass, nil
		}
		return outOther, nil
	}, nil
}

func httpDriver(c *http.Client, base *url.URL) func(context.Context, int, string) (outcome, error) {
	prefix := strings.TrimSuffix(base.String(), "/") + "/products/"
	return func(ctx context.Context, _ int, id string) (outcome, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, prefix+id, nil)
		if err != nil {
			return outOther, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return outOther, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return outOther, fmt.Errorf("status %d", resp.StatusCode)
		}
		switch resp.Header.Get("X-Cache") {
		case "HIT":
			return outHit, nil
		case "MISS":
			return outMiss, nil
		case "BYPASS":
			return outBypass, nil
		}
		return outOther, nil
	}
}

// serveBaseline is the baseline process: it serves GET /products/{id} on a loopback
// port with one raw go-redis GET of the bytes the local server stored (the floor an
// HTTP server on this Redis can reach), prints the address to out, and returns when
// standard input closes (the parent is done or gone).
func serveBaseline(rdb redis.UniversalClient, fullKey func(string) string, out io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, err := rdb.Get(r.Context(), fullKey(r.PathValue("id"))).Bytes()
		if err != nil {
			http.Error(w, "miss", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Cache", "HIT")
		_, _ = w.Write(b)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	if _, err := fmt.Fprintln(out, ln.Addr()); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// spawnBaseline starts this program again as the baseline server, with environ (the
// same Redis and key prefix), and returns its address and a function that stops it.
func spawnBaseline(environ map[string]string) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe, "-serve-baseline")
	for k, v := range environ {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr := strings.TrimSpace(line)
	if err != nil || addr == "" {
		stop()
		return "", nil, fmt.Errorf("the baseline process did not say its address: %v", err)
	}
	return addr, stop, nil
}

// redisDriver is the spec's basic load: SETs (a fraction writeRatio) and GETs of the
// catalog's product bytes through cache.Service.
func redisDriver(svc *cache.Service, cat *product.Catalog, writeRatio float64) func(context.Context, int, string) (outcome, error) {
	values := map[string]string{}
	for _, id := range cat.IDs() {
		p, err := cat.Product(context.Background(), id)
		if err != nil {
			continue
		}
		b, _ := json.Marshal(p)
		values[id] = string(b)
	}
	var n atomic.Uint64
	every := uint64(0)
	if writeRatio > 0 {
		every = uint64(math.Round(1 / writeRatio))
	}
	warmed := sync.Map{}
	return func(ctx context.Context, _ int, id string) (outcome, error) {
		_, seen := warmed.LoadOrStore(id, true)
		if !seen || (every > 0 && n.Add(1)%every == 0) {
			return outSet, svc.SetWithExpiry(ctx, "load:"+id, values[id], time.Hour)
		}
		_, err := svc.Get(ctx, "load:"+id)
		switch {
		case errors.Is(err, cache.ErrMiss):
			return outMiss, nil
		case err != nil:
			return outOther, err
		}
		return outHit, nil
	}
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

// cleanup removes the keys under the tool's own prefix.
func cleanup(rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
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
