package cache_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/history"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// The history tests run randomized concurrent histories of reads and invalidations
// against a private redis-server and check every read against the freshness promise
// (package history). Budgets: HISTORY_SECONDS per run (default 6), or HISTORY_OPS reads
// per run (then the run lasts until that many); HISTORY_SEED picks the seed (default
// fixed, printed).

// histKeys is the keyspace: few keys, so fills, waits and invalidations collide.
const histKeys = 8

// histLeaseTTL is short so that zombie holders (fetches that outlive their lease) and
// dead processes' leases come and go many times in a run.
const histLeaseTTL = 300 * time.Millisecond

// histRun is one history configuration.
type histRun struct {
	name     string
	envs     int // separate Services, each with its own lazy client: Lambda environments
	readers  int // reader goroutines per environment
	writers  int // writer goroutines in all
	mode     config.Mode
	unfenced bool // replace the fenced store with the old plain SET
	// unfencedRefresh replaces a refresh's fenced store with a plain SET.
	unfencedRefresh bool
	// stale turns on short stale windows and early refresh (see histStaleEnv), and
	// fills then live ttl; failOne makes one fetch in failOne fail, so stale-if-error
	// serves and refreshes back off.
	stale     bool
	failOne   int
	kills     bool // CLIENT KILL every client now and then
	zombieOne int  // one fetch in zombieOne outlives its lease (0: none)
	// writePause is the longest a writer pauses between two changes (uniform).
	writePause time.Duration
	// l1 turns the in-process tier on (CACHE_L1=on, bound histL1Bound; under Lambda a
	// barrier before every read); sets adds external writes (a raw SET of the new
	// version) to the writers' changes.
	l1, sets bool
}

// histL1Bound is the L1 staleness bound of the history runs with the tier on.
const histL1Bound = 20 * time.Millisecond

func histSeed(tb testing.TB) uint64 {
	tb.Helper()
	if s := os.Getenv("HISTORY_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatalf("HISTORY_SEED: %v", err)
		}
		return n
	}
	return 20261130
}

// histBudget is how long a run lasts, and how many reads it must reach (0: none).
func histBudget(tb testing.TB) (time.Duration, int) {
	tb.Helper()
	d := 6 * time.Second
	if s := os.Getenv("HISTORY_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			tb.Fatalf("HISTORY_SECONDS: %v", err)
		}
		d = time.Duration(n) * time.Second
	}
	ops := 0
	if s := os.Getenv("HISTORY_OPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			tb.Fatalf("HISTORY_OPS: %v", err)
		}
		ops, d = n, 24*time.Hour
	}
	return d, ops
}

func histKeyName(i int) string { return "h:k" + strconv.Itoa(i) }

func histAllKeys() []string {
	keys := make([]string, histKeys)
	for i := range keys {
		keys[i] = histKeyName(i)
	}
	return keys
}

// histEnvConfig is the configuration of one environment of a history. Odd
// environments do not retry a command whose connection was killed, so kills reach
// them as faults: bypasses, and a breaker that opens and closes.
func histEnvConfig(tb testing.TB, addr, prefix string, mode config.Mode, env int, stale, l1 bool) config.Config {
	retries := "1"
	if env%2 == 1 {
		retries = "-1"
	}
	tier := "off"
	if l1 {
		tier = "on"
	}
	environ := map[string]string{
		"CACHE_L1":               tier,
		"CACHE_L1_MAX_STALENESS": histL1Bound.String(),
		"CACHE_LEASE_TTL":        histLeaseTTL.String(),
		"CACHE_LEASE_WAIT":       "1s",
		"CACHE_TTL_JITTER":       "0",
		"REDIS_BREAKER_COOLDOWN": "100ms",
		"REDIS_POOL_SIZE":        "4",
		"REDIS_MAX_RETRIES":      retries,
		// Entries that outlive their TTL are the stale configurations' business.
		"CACHE_STALE_WHILE_REVALIDATE": "0s",
		"CACHE_STALE_IF_ERROR":         "0s",
		"CACHE_EARLY_REFRESH":          "0",
	}
	if stale {
		maps.Copy(environ, histStaleEnv)
	}
	return itConfig(tb, addr, prefix, mode, environ)
}

// histStaleTTL is the fills' TTL in the stale configurations, and histStaleEnv their
// windows: entries go stale, are served stale, refreshed early and late, many times
// per key between two invalidations.
const histStaleTTL = 40 * time.Millisecond

var histStaleEnv = map[string]string{
	"CACHE_STALE_WHILE_REVALIDATE": "60ms",
	"CACHE_STALE_IF_ERROR":         "300ms",
	"CACHE_EARLY_REFRESH":          "1",
	"CACHE_REFRESH_BACKOFF":        "20ms",
}

// histUnfence makes a client run the fill's store (fill) or a refresh's store
// (refresh) as an unconditional SET, by rewriting the script's EVALSHA on its way out.
type histUnfence struct{ fill, refresh bool }

func (histUnfence) DialHook(next redis.DialHook) redis.DialHook { return next }

func (u histUnfence) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		var set []any
		switch {
		case u.fill && len(args) == 7 && args[0] == "evalsha" && args[1] == cache.FencedStoreHash:
			// KEYS[1], ARGV: lease, value, ms
			set = []any{"set", args[3], args[5], args[6]}
		case u.refresh && len(args) == 9 && args[0] == "evalsha" && args[1] == cache.EndRefreshHash && args[8] == "store":
			// KEYS[1], ARGV: gen, holder, value, ms, "store"
			set = []any{"set", args[3], args[6], args[7]}
		}
		if set != nil {
			ms := fmt.Sprint(set[3])
			set = set[:3]
			if ms != "0" {
				set = append(set, "px", ms)
			}
			if err := next(ctx, redis.NewStatusCmd(ctx, set...)); err != nil {
				cmd.SetErr(err)
				return err
			}
			cmd.(*redis.Cmd).SetVal(int64(1))
			return nil
		}
		return next(ctx, cmd)
	}
}

func (histUnfence) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// histSource is what a worker reads and bumps: the Source in this process, or one
// served by the parent of a multi-process history.
type histSource interface {
	Read(ctx context.Context, key, who string) (int64, error)
	Bump(ctx context.Context, key string) (int64, error)
}

type localSource struct{ *history.Source }

func (s localSource) Bump(_ context.Context, key string) (int64, error) {
	return s.Source.Bump(key), nil
}

// histWorkers runs the readers and writers of one environment until stop, sending
// each finished operation to record.
type histWorkers struct {
	svc *cache.Service
	// raw and locks, when set, make external SETs one of the writers' changes; a
	// writer holds its key's lock from the version bump to the end of the write, so
	// that a SET never puts back a version older than one another writer's change
	// has already announced.
	raw       *redis.Client
	locks     *[histKeys]sync.Mutex
	src       histSource
	name      string
	readers   int
	writers   int
	zombieOne int
	failOne   int
	ttl       time.Duration
	pause     time.Duration
	seed      uint64
	stop      func() bool
	record    func(history.Op)
}

func (w histWorkers) run() {
	var wg sync.WaitGroup
	for i := range w.readers {
		rng := rand.New(rand.NewPCG(w.seed, uint64(i)))
		who := fmt.Sprintf("%s/r%d", w.name, i)
		wg.Go(func() { w.read(rng, who) })
	}
	for i := range w.writers {
		rng := rand.New(rand.NewPCG(w.seed, uint64(1000+i)))
		who := fmt.Sprintf("%s/w%d", w.name, i)
		wg.Go(func() { w.write(rng, who) })
	}
	wg.Wait()
}

func (w histWorkers) read(rng *rand.Rand, who string) {
	for !w.stop() {
		key := histKeyName(rng.IntN(histKeys))
		zombie := w.zombieOne > 0 && rng.IntN(w.zombieOne) == 0
		fail := w.failOne > 0 && rng.IntN(w.failOne) == 0
		// Some callers hang up early, as browsers and API Gateway do.
		timeout := 5 * time.Second
		if rng.IntN(50) == 0 {
			timeout = time.Duration(1+rng.IntN(30)) * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		op := history.Op{Kind: history.Read, Key: key, Proc: who, Start: history.Now()}
		v, res, err := w.svc.GetOrSet(ctx, key, w.ttl, func(ctx context.Context) (string, error) {
			ver, err := w.src.Read(ctx, key, w.name)
			if err != nil {
				return "", err
			}
			if fail {
				return "", errors.New("source failed")
			}
			if zombie {
				// A holder that stalls past its lease, then stores what it read.
				time.Sleep(2 * histLeaseTTL)
			}
			return "v" + strconv.FormatInt(ver, 10), nil
		})
		op.End = history.Now()
		cancel()
		if err == nil {
			ver, perr := strconv.ParseInt(strings.TrimPrefix(v, "v"), 10, 64)
			op.Version, op.OK, op.Outcome = ver, perr == nil, res.Outcome.String()
			if res.Outcome == cache.Hit && res.Tier == cache.TierL1 {
				op.Outcome = "HIT L1"
			}
			if perr != nil {
				op.Outcome = "UNPARSABLE " + strconv.Quote(v)
				op.OK, op.Version = true, -1
			}
		}
		w.record(op)
	}
}

func (w histWorkers) write(rng *rand.Rand, who string) {
	for !w.stop() {
		time.Sleep(time.Duration(rng.Int64N(int64(w.pause) + 1)))
		k := rng.IntN(histKeys)
		key := histKeyName(k)
		if w.locks != nil {
			w.locks[k].Lock()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ver, err := w.src.Bump(ctx, key)
		if err != nil {
			cancel()
			if w.locks != nil {
				w.locks[k].Unlock()
			}
			continue
		}
		op := history.Op{Kind: history.Invalidate, Key: key, Version: ver, Proc: who, Start: history.Now()}
		n := 3
		if w.raw != nil {
			n = 4
		}
		switch rng.IntN(n) {
		case 3:
			err = w.raw.Set(ctx, w.svc.Key(key), "v"+strconv.FormatInt(ver, 10), time.Minute).Err()
		case 0:
			_, err = w.svc.Del(ctx, key)
		case 1:
			_, err = w.svc.Clear(ctx, key)
		default:
			_, err = w.svc.Clear(ctx, "h:*")
		}
		op.End = history.Now()
		cancel()
		if w.locks != nil {
			w.locks[k].Unlock()
		}
		op.OK = err == nil
		w.record(op)
	}
}

// histRecorder collects operations and says when the budget is spent.
type histRecorder struct {
	mu       sync.Mutex
	ops      []history.Op
	reads    atomic.Int64
	deadline time.Time
	want     int64
}

func newHistRecorder(d time.Duration, ops int) *histRecorder {
	return &histRecorder{deadline: time.Now().Add(d), want: int64(ops)}
}

func (r *histRecorder) record(op history.Op) {
	if op.Kind == history.Read {
		r.reads.Add(1)
	}
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *histRecorder) stop() bool {
	if r.want > 0 {
		return r.reads.Load() >= r.want
	}
	return time.Now().After(r.deadline)
}

// histKiller kills every normal client connection of srv now and then, until stop.
func histKiller(srv *redistest.Server, seed uint64, stop func() bool) (kills *atomic.Int64, done func()) {
	kills = new(atomic.Int64)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 7))
		for !stop() {
			select {
			case <-quit:
				return
			case <-time.After(time.Duration(50+rng.IntN(200)) * time.Millisecond):
			}
			if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err == nil {
				kills.Add(1)
			}
		}
	})
	return kills, func() { close(quit); wg.Wait() }
}

// runHistory runs h in this process and returns the checked history.
func runHistory(t *testing.T, h histRun) ([]history.Op, []history.Violation) {
	t.Helper()
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	seed := histSeed(t)
	d, want := histBudget(t)
	src := history.NewSource(histAllKeys(), 50*time.Millisecond, seed)
	rec := newHistRecorder(d, want)
	var sum cache.Stats
	var sumMu sync.Mutex
	var kills *atomic.Int64
	var raw *redis.Client
	var locks *[histKeys]sync.Mutex
	if h.sets {
		raw, locks = itRaw(t, srv.Addr(), ""), new([histKeys]sync.Mutex)
	}
	var l1s []*cache.L1
	stopKiller := func() {}
	if h.kills {
		kills, stopKiller = histKiller(srv, seed, rec.stop)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for e := range h.envs {
		cfg := histEnvConfig(t, srv.Addr(), prefix, h.mode, e, h.stale, h.l1)
		svc, lazy := itService(t, cfg)
		if h.l1 {
			l1s = append(l1s, svc.L1())
		}
		if h.unfenced || h.unfencedRefresh {
			lazy.Client().AddHook(histUnfence{fill: h.unfenced, refresh: h.unfencedRefresh})
		}
		writers := h.writers / h.envs
		if e < h.writers%h.envs {
			writers++
		}
		w := histWorkers{svc: svc, raw: raw, locks: locks, src: localSource{src}, name: fmt.Sprintf("env%d", e), readers: h.readers,
			writers: writers, zombieOne: h.zombieOne, pause: h.writePause, seed: seed + uint64(e)*1_000_003, stop: rec.stop, record: rec.record,
			ttl: time.Minute, failOne: h.failOne}
		if h.stale {
			w.ttl = histStaleTTL
		}
		wg.Go(func() {
			w.run()
			sumMu.Lock()
			sum = sum.Add(svc.Stats())
			sumMu.Unlock()
		})
	}
	wg.Wait()
	stopKiller()
	elapsed := time.Since(start)
	bound := time.Duration(0)
	if h.l1 && h.mode == config.ModeHTTP {
		bound = histL1Bound
	}
	violations := history.CheckWithin(rec.ops, src.Bumps(), bound)
	c := history.Count(rec.ops)
	for _, l := range l1s {
		t.Logf("%s: tier %+v", h.name, l.Stats())
	}
	killed := int64(0)
	if kills != nil {
		killed = kills.Load()
	}
	t.Logf("%s: seed %d, %v: %d reads %v (%d failed), %d invalidations (%d failed), %d CLIENT KILLs; "+
		"fetches %d, fence lost %d, shared %d, lease timeouts %d, breaker opens %d; violations %d",
		h.name, seed, elapsed.Round(time.Millisecond), c.Reads, c.Outcomes, c.FailedReads, c.Invalidations,
		c.FailedInvalidations, killed, sum.Fetches, sum.FenceLost, sum.Shared, sum.LeaseTimeouts, sum.BreakerOpens, len(violations))
	if n := c.Outcomes["NONE"]; n > 0 {
		t.Errorf("%d reads returned a value with no outcome: the accounting lost track of them", n)
	}
	return rec.ops, violations
}

func histReport(t *testing.T, violations []history.Violation) {
	t.Helper()
	for i, v := range violations {
		if i == 10 {
			t.Errorf("... and %d more", len(violations)-10)
			break
		}
		t.Errorf("violation: %v", v)
	}
}

// TestHistoryFreshness is the promise under fire: Lambda-like environments (dedupe
// off) and long-lived servers (dedupe on), zombie holders whose fetch outlives their
// lease, callers that hang up, and every connection killed now and then.
func TestHistoryFreshness(t *testing.T) {
	if testing.Short() {
		t.Skip("history runs take seconds; not in -short")
	}
	for _, h := range []histRun{
		{name: "lambda", envs: 6, readers: 3, writers: 3, mode: config.ModeLambda, kills: true, zombieOne: 200, writePause: 100 * time.Millisecond},
		{name: "http-dedupe", envs: 3, readers: 8, writers: 3, mode: config.ModeHTTP, kills: true, zombieOne: 200, writePause: 100 * time.Millisecond},
		// Entries go stale every 40 ms: served stale, refreshed by the reader that
		// takes the refresh lease (Lambda) or in the background (HTTP), early by
		// XFetch, and over failed fetches (stale-if-error, backoff).
		{name: "lambda-stale", envs: 6, readers: 3, writers: 3, mode: config.ModeLambda, kills: true, zombieOne: 200, writePause: 100 * time.Millisecond, stale: true, failOne: 10},
		{name: "http-stale", envs: 3, readers: 8, writers: 3, mode: config.ModeHTTP, kills: true, zombieOne: 200, writePause: 100 * time.Millisecond, stale: true, failOne: 10},
	} {
		t.Run(h.name, func(t *testing.T) {
			ops, violations := runHistory(t, h)
			if c := history.Count(ops); c.Reads < 500 || c.Invalidations < 50 {
				t.Errorf("only %d reads and %d invalidations: the run tested too little", c.Reads, c.Invalidations)
			}
			histReport(t, violations)
		})
	}
}

// TestHistoryCatchesUnfencedFill runs the same history with the fill's store replaced
// by the unconditional SET the cache used before fencing: the checker must find stale
// reads. It is the proof that the checker can fail.
func TestHistoryCatchesUnfencedFill(t *testing.T) {
	if testing.Short() {
		t.Skip("history runs take seconds; not in -short")
	}
	_, violations := runHistory(t, histRun{name: "unfenced", envs: 4, readers: 3, writers: 3, mode: config.ModeLambda, unfenced: true, zombieOne: 100, writePause: 20 * time.Millisecond})
	if len(violations) == 0 {
		t.Fatal("the checker found no violation in a history of unfenced fills")
	}
	t.Logf("first violation of the unfenced fill: %v", violations[0])
}

// TestHistoryCatchesUnfencedRefresh: with stale windows on and a refresh's store
// replaced by a plain SET, the checker must find stale reads: a refresh that fetched
// before an invalidation brings the old version back.
func TestHistoryCatchesUnfencedRefresh(t *testing.T) {
	if testing.Short() {
		t.Skip("history runs take seconds; not in -short")
	}
	_, violations := runHistory(t, histRun{name: "unfenced-refresh", envs: 4, readers: 3, writers: 3, mode: config.ModeLambda,
		unfencedRefresh: true, stale: true, writePause: 100 * time.Millisecond})
	if len(violations) == 0 {
		t.Fatal("the checker found no violation in a history of unfenced refreshes")
	}
	t.Logf("first violation of the unfenced refresh: %v", violations[0])
}

// Environment of the history helper processes.
const (
	histProcEnv = "STOREAPI_TEST_HISTORY_PROC"
	histArgsEnv = "STOREAPI_TEST_HISTORY_ARGS"
)

// histProcArgs is what the parent hands a helper process.
type histProcArgs struct {
	Name, Addr, Prefix, SourceURL, Out string
	Env                                int
	Readers, Writers, ZombieOne        int
	// Stale turns on the stale windows (histStaleEnv) in this process only: the
	// processes of one history mix both kinds of reader on the same keys.
	Stale      bool
	WritePause time.Duration
	Seed       uint64
	Until      time.Time
}

// TestHistoryProcess is not a test: it is one environment of
// TestHistoryAcrossProcesses, re-executed by it. It runs readers and writers and
// writes each finished operation to its output file as a JSON line, unbuffered, so a
// SIGKILL loses only the operations in progress.
func TestHistoryProcess(t *testing.T) {
	if os.Getenv(histProcEnv) != "1" {
		t.Skip("helper process of TestHistoryAcrossProcesses; runs only when re-executed by it")
	}
	var a histProcArgs
	if err := json.Unmarshal([]byte(os.Getenv(histArgsEnv)), &a); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(a.Out)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cfg := histEnvConfig(t, a.Addr, a.Prefix, config.ModeLambda, a.Env, a.Stale, false)
	svc, _ := itService(t, cfg)
	var mu sync.Mutex
	src := history.Remote{URL: a.SourceURL, Client: &http.Client{Timeout: 10 * time.Second}}
	ttl := time.Minute
	if a.Stale {
		ttl = histStaleTTL
	}
	histWorkers{svc: svc, src: src, name: a.Name, readers: a.Readers, writers: a.Writers, zombieOne: a.ZombieOne, ttl: ttl,
		pause: a.WritePause, seed: a.Seed, stop: func() bool { return time.Now().After(a.Until) },
		record: func(op history.Op) {
			b, _ := json.Marshal(op)
			mu.Lock()
			_, _ = out.Write(append(b, '\n'))
			mu.Unlock()
		}}.run()
}

// TestHistoryAcrossProcesses runs the environments as separate processes sharing the
// source over HTTP, and SIGKILLs one of them while it is fetching: the lease it held
// dies with it.
func TestHistoryAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("history runs take seconds; not in -short")
	}
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	seed := histSeed(t)
	d, _ := histBudget(t)
	src := history.NewSource(histAllKeys(), 50*time.Millisecond, seed)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: src.Handler()}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	kills, stopKiller := histKiller(srv, seed, func() bool { return false })

	const procs = 4
	until := time.Now().Add(d)
	dir := t.TempDir()
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		a := histProcArgs{Name: fmt.Sprintf("p%d", i), Env: i, Addr: srv.Addr(), Prefix: prefix, SourceURL: "http://" + ln.Addr().String(),
			Out: fmt.Sprintf("%s/p%d.jsonl", dir, i), Readers: 3, Writers: 1, ZombieOne: 200, WritePause: 100 * time.Millisecond, Seed: seed + uint64(i)*7919, Until: until,
			Stale: i%2 == 0}
		b, _ := json.Marshal(a)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHistoryProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), histProcEnv+"=1", histArgsEnv+"="+string(b))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() && stderr.Len() > 0 {
				t.Logf("%s stderr:\n%s", a.Name, stderr.String())
			}
		})
		cmds[i] = cmd
	}
	// Kill p0 in the middle of a fetch, a third of the way in.
	time.Sleep(d / 3)
	killedMidFetch := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if src.InFlight("p0") > 0 {
			killedMidFetch = true
			break
		}
	}
	if err := cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL p0: %v", err)
	}
	_ = cmds[0].Wait()
	for _, cmd := range cmds[1:] {
		if err := cmd.Wait(); err != nil {
			t.Errorf("a helper process failed: %v", err)
		}
	}
	stopKiller()

	var ops []history.Op
	for i := range procs {
		f, err := os.Open(fmt.Sprintf("%s/p%d.jsonl", dir, i))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var op history.Op
			if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
				if i == 0 {
					continue // the line p0 was writing when it was killed
				}
				t.Fatalf("p%d: %v", i, err)
			}
			ops = append(ops, op)
		}
		f.Close()
	}
	violations := history.Check(ops, src.Bumps())
	c := history.Count(ops)
	t.Logf("processes: seed %d, %v: %d reads %v (%d failed), %d invalidations (%d failed), %d CLIENT KILLs, "+
		"p0 SIGKILLed mid-fetch: %v; violations %d", seed, d, c.Reads, c.Outcomes, c.FailedReads, c.Invalidations,
		c.FailedInvalidations, kills.Load(), killedMidFetch, len(violations))
	if !killedMidFetch {
		t.Error("p0 was never seen fetching: it was killed, but not mid-fetch")
	}
	if c.Reads < 300 {
		t.Errorf("only %d reads: the run tested too little", c.Reads)
	}
	histReport(t, violations)
}

// TestHistoryL1 is the promise with the in-process tier on, under the same fire plus
// external SETs from another client: in the HTTP mode a read that starts more than
// the bound after an invalidation returned never gets an older version; under Lambda
// (a barrier before every read) no read that starts after it returned does. The
// HTTP history is also checked with no bound at all: there the checker must find
// stale reads, the proof that L1 served values an invalidation had overtaken and
// that the bound, not luck, is what holds.
func TestHistoryL1(t *testing.T) {
	if testing.Short() {
		t.Skip("history runs take seconds; not in -short")
	}
	for _, h := range []histRun{
		{name: "l1-http", envs: 3, readers: 8, writers: 3, mode: config.ModeHTTP, l1: true, sets: true, kills: true, zombieOne: 200, writePause: 50 * time.Millisecond},
		{name: "l1-lambda", envs: 4, readers: 2, writers: 3, mode: config.ModeLambda, l1: true, sets: true, kills: true, zombieOne: 200, writePause: 150 * time.Millisecond},
	} {
		t.Run(h.name, func(t *testing.T) {
			ops, violations := runHistory(t, h)
			c := history.Count(ops)
			if c.Reads < 500 || c.Invalidations < 50 || c.Outcomes["HIT L1"] < c.Reads/10 {
				t.Errorf("%d reads (%d from L1) and %d invalidations: the run tested too little", c.Reads, c.Outcomes["HIT L1"], c.Invalidations)
			}
			histReport(t, violations)
			if h.mode == config.ModeHTTP {
				unbounded := history.Check(ops, nil)
				stale := 0
				for _, v := range unbounded {
					if strings.HasPrefix(v.Why, "stale") {
						stale++
					}
				}
				t.Logf("the same history checked with no bound: %d stale reads (served from L1 within %v of an invalidation)", stale, histL1Bound)
				if stale == 0 {
					t.Error("no read was stale even without a bound: the history did not exercise L1 staleness")
				}
			}
		})
	}
}
