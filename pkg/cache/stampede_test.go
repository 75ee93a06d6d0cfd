package cache_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// stEnvironments is how many Lambda execution environments the stampede tests play.
const stEnvironments = 50

// stFetchTime is how long the source takes once every caller is waiting.
const stFetchTime = 60 * time.Millisecond

// stEnv is one Lambda execution environment: its own configuration, its own lazy
// go-redis client (pool of 1 or 2) and its own Service, with in-process dedupe off as
// under Lambda, so only the Redis lease can keep the fetches down.
func stEnv(tb testing.TB, addr, prefix string, i int, extra map[string]string) *cache.Service {
	tb.Helper()
	environ := map[string]string{"REDIS_POOL_SIZE": fmt.Sprint(1 + i%2)}
	for k, v := range extra {
		environ[k] = v
	}
	cfg := itConfig(tb, addr, prefix, config.ModeLambda, environ)
	if o := app.CacheOptions(cfg); o.Dedupe {
		tb.Fatal("Lambda mode has in-process dedupe on; the test would not exercise the lease")
	}
	svc, _ := itService(tb, cfg)
	return svc
}

// stCall is what one environment saw.
type stCall struct {
	val     string
	res     cache.Result
	err     error
	elapsed time.Duration
}

// stRun makes every environment call GetOrSet on key at once and returns what each saw.
// entered counts callers that are about to call GetOrSet.
func stRun(ctx context.Context, envs []*cache.Service, key string, entered *atomic.Int64, allIn chan struct{}, fetch cache.FetchFunc) []stCall {
	calls := make([]stCall, len(envs))
	var wg sync.WaitGroup
	for i, svc := range envs {
		wg.Go(func() {
			if entered.Add(1) == int64(len(envs)) {
				close(allIn)
			}
			start := time.Now()
			v, r, err := svc.GetOrSet(ctx, key, time.Minute, fetch)
			calls[i] = stCall{val: v, res: r, err: err, elapsed: time.Since(start)}
		})
	}
	wg.Wait()
	return calls
}

// stSummary adds up the environments' counters and outcomes.
func stSummary(envs []*cache.Service, calls []stCall) (cache.Stats, map[cache.Outcome]int, time.Duration, time.Duration) {
	var sum cache.Stats
	for _, svc := range envs {
		sum = sum.Add(svc.Stats())
	}
	outcomes := map[cache.Outcome]int{}
	var slowest, maxWaited time.Duration
	for _, c := range calls {
		outcomes[c.res.Outcome]++
		slowest = max(slowest, c.elapsed)
		maxWaited = max(maxWaited, c.res.Waited)
	}
	return sum, outcomes, slowest, maxWaited
}

// TestStampedeAcrossEnvironments is the cold-key stampede with one Redis and 50
// environments that share nothing in memory: the fetch must run once.
func TestStampedeAcrossEnvironments(t *testing.T) {
	addr := redistest.SharedAddr(t)
	prefix := redistest.Prefix(t)
	itDeletePrefix(t, addr, prefix)
	envs := make([]*cache.Service, stEnvironments)
	for i := range envs {
		envs[i] = stEnv(t, addr, prefix, i, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const want = `{"id":"p1","name":"Cold Brew Kettle"}`
	var entered, fetches atomic.Int64
	allIn := make(chan struct{})
	fetch := func(ctx context.Context) (string, error) {
		fetches.Add(1)
		// Hold the fill until every environment is inside GetOrSet, so none of them
		// can be served by arriving late.
		select {
		case <-allIn:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		time.Sleep(stFetchTime)
		return want, nil
	}
	start := time.Now()
	calls := stRun(ctx, envs, "cold", &entered, allIn, fetch)
	elapsed := time.Since(start)

	for i, c := range calls {
		if c.err != nil || c.val != want {
			t.Errorf("environment %d: %q, %v (%+v)", i, c.val, c.err, c.res)
		}
	}
	sum, outcomes, slowest, maxWaited := stSummary(envs, calls)
	t.Logf("%d environments, one cold key: fetches=%d outcomes=%v LeaseWaits=%d LeaseTimeouts=%d "+
		"hits=%d misses=%d bypasses=%d; elapsed %v, slowest caller %v, longest wait %v",
		len(envs), fetches.Load(), outcomes, sum.LeaseWaits, sum.LeaseTimeouts,
		sum.Hits, sum.Misses, sum.Bypasses, elapsed.Round(time.Millisecond),
		slowest.Round(time.Millisecond), maxWaited.Round(time.Millisecond))
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetch ran %d times across %d environments, want exactly 1", n, len(envs))
	}
	if outcomes[cache.Miss] != 1 || outcomes[cache.Hit] != len(envs)-1 {
		t.Errorf("outcomes = %v, want 1 MISS and %d HIT", outcomes, len(envs)-1)
	}
	if sum.LeaseWaits == 0 || sum.LeaseTimeouts != 0 || sum.Bypasses != 0 {
		t.Errorf("LeaseWaits=%d LeaseTimeouts=%d Bypasses=%d, want waits, no timeouts, no bypass",
			sum.LeaseWaits, sum.LeaseTimeouts, sum.Bypasses)
	}
}

// stHookGet blocks the reply of the first GET of key that is a miss until release is
// closed, after closing blocked: it plays an environment that read "no value" and was
// then descheduled, or whose reply was slow, while another environment did the fill.
type stHookGet struct {
	key     string
	seen    *atomic.Int64
	blocked chan struct{}
	release chan struct{}
}

func (h stHookGet) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h stHookGet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		args := cmd.Args()
		if len(args) == 2 && strings.EqualFold(fmt.Sprint(args[0]), "get") && args[1] == h.key &&
			errors.Is(err, redis.Nil) && h.seen.Add(1) == 1 {
			close(h.blocked)
			<-h.release
		}
		return err
	}
}

func (h stHookGet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestStampedeNoRefetchAfterFill pins the window between a caller's "no value" and its
// SET NX of the lease: when another caller takes the lease, fetches and stores inside
// that window, the late caller's SET NX finds the key taken and must serve the stored
// value rather than run a second fill (the GetOrSet doc: fetch runs once per key per
// fill while holders live).
func TestStampedeNoRefetchAfterFill(t *testing.T) {
	addr := redistest.SharedAddr(t)
	prefix := redistest.Prefix(t)
	itDeletePrefix(t, addr, prefix)
	holder := stEnv(t, addr, prefix, 0, nil)
	cfg := itConfig(t, addr, prefix, config.ModeLambda, nil)
	late, lateLazy := itService(t, cfg)
	hook := stHookGet{key: prefix + "k", seen: new(atomic.Int64), blocked: make(chan struct{}), release: make(chan struct{})}
	lateLazy.Client().AddHook(hook)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var fetches atomic.Int64
	fetch := func(context.Context) (string, error) {
		fetches.Add(1)
		return "v", nil
	}
	lateDone := make(chan stCall)
	go func() {
		v, r, err := late.GetOrSet(ctx, "k", time.Minute, fetch)
		lateDone <- stCall{val: v, res: r, err: err}
	}()
	select {
	case <-hook.blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("the late caller never read a miss through GET; the test no longer matches the read path")
	}
	if v, r, err := holder.GetOrSet(ctx, "k", time.Minute, fetch); err != nil || v != "v" || !r.Stored {
		t.Fatalf("holder: %q, %+v, %v", v, r, err)
	}
	close(hook.release)
	c := <-lateDone
	if c.err != nil || c.val != "v" || c.res.Outcome != cache.Hit {
		t.Fatalf("late caller: %q, %v, %v; want the stored value as a HIT", c.val, c.res.Outcome, c.err)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetch ran %d times, want 1: the late caller refilled a key the holder had just filled", n)
	}
}

// Environment of the lease-holder helper process.
const (
	stHolderEnv       = "STOREAPI_TEST_LEASE_HOLDER"
	stHolderAddrEnv   = "STOREAPI_TEST_LEASE_HOLDER_ADDR"
	stHolderPrefixEnv = "STOREAPI_TEST_LEASE_HOLDER_PREFIX"
	stLeaseTTL        = 500 * time.Millisecond
)

// stLeaseConfig shortens the lease so that a dead holder's lease expires quickly; the
// lease wait (default 3 s) stays well above it, so waiting callers outlast the dead
// holder's lease instead of giving up and fetching themselves.
var stLeaseConfig = map[string]string{"CACHE_LEASE_TTL": stLeaseTTL.String()}

// TestLeaseHolderProcess is not a test: it is the helper process of
// TestStampedeLeaseHolderDies. It takes the fill lease of "dead" through GetOrSet,
// prints LEASED from inside its fetch, and blocks there until it is killed.
func TestLeaseHolderProcess(t *testing.T) {
	if os.Getenv(stHolderEnv) != "1" {
		t.Skip("helper process of TestStampedeLeaseHolderDies; runs only when re-executed by it")
	}
	cfg := itConfig(t, os.Getenv(stHolderAddrEnv), os.Getenv(stHolderPrefixEnv), config.ModeLambda, stLeaseConfig)
	svc, _ := itService(t, cfg)
	_, _, err := svc.GetOrSet(context.Background(), "dead", time.Minute, func(context.Context) (string, error) {
		fmt.Println("LEASED")
		_ = os.Stdout.Sync()
		time.Sleep(time.Hour)
		return "", errors.New("not reached")
	})
	t.Fatalf("the helper's fetch returned: %v", err)
}

// TestStampedeLeaseHolderDies kills the lease holder (a separate process) with SIGKILL
// in the middle of its fetch, then lets 50 environments ask for the key.
func TestStampedeLeaseHolderDies(t *testing.T) {
	addr := redistest.SharedAddr(t)
	prefix := redistest.Prefix(t)
	itDeletePrefix(t, addr, prefix)
	raw := itRaw(t, addr, "")

	cmd := exec.Command(os.Args[0], "-test.run=^TestLeaseHolderProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), stHolderEnv+"=1", stHolderAddrEnv+"="+addr, stHolderPrefixEnv+"="+prefix)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	leased := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "LEASED" {
				close(leased)
				return
			}
		}
	}()
	select {
	case <-leased:
	case <-time.After(30 * time.Second):
		t.Fatalf("the helper never took the lease; stderr:\n%s", stderr.String())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL the helper: %v", err)
	}
	_ = cmd.Wait()
	leaseLeft, err := raw.PTTL(context.Background(), prefix+"dead").Result()
	if held, _ := raw.Get(context.Background(), prefix+"dead").Result(); err != nil || leaseLeft <= 0 || !cache.IsLease(held) {
		t.Fatalf("the dead holder's lease: PTTL %v, %v; want it still held", leaseLeft, err)
	}

	envs := make([]*cache.Service, stEnvironments)
	for i := range envs {
		envs[i] = stEnv(t, addr, prefix, i, stLeaseConfig)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const want = `{"id":"dead","name":"Phoenix Teapot"}`
	var entered, fetches atomic.Int64
	allIn := make(chan struct{})
	fetch := func(context.Context) (string, error) {
		fetches.Add(1)
		time.Sleep(stFetchTime)
		return want, nil
	}
	start := time.Now()
	calls := stRun(ctx, envs, "dead", &entered, allIn, fetch)
	elapsed := time.Since(start)

	// The GetOrSet doc: a dead holder's lease expires after LeaseTTL and the next
	// poller takes it over; pollers check every 5 ms growing to 100 ms. So every caller
	// returns within LeaseTTL + one poll pause (100 ms) + the fetch, here
	// 500 + 100 + 60 = 660 ms, and the test allows three times that.
	bound := 3 * (stLeaseTTL + 100*time.Millisecond + stFetchTime)
	for i, c := range calls {
		if c.err != nil || c.val != want {
			t.Errorf("environment %d: %q, %v (%+v)", i, c.val, c.err, c.res)
		}
		if c.elapsed > bound {
			t.Errorf("environment %d returned after %v, bound %v", i, c.elapsed, bound)
		}
	}
	sum, outcomes, slowest, maxWaited := stSummary(envs, calls)
	t.Logf("holder SIGKILLed with %v of its lease left; %d environments: fetches=%d outcomes=%v "+
		"LeaseWaits=%d LeaseTimeouts=%d; elapsed %v, slowest caller %v, longest wait %v (bound %v)",
		leaseLeft, len(envs), fetches.Load(), outcomes, sum.LeaseWaits, sum.LeaseTimeouts,
		elapsed.Round(time.Millisecond), slowest.Round(time.Millisecond), maxWaited.Round(time.Millisecond), bound)
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetch ran %d times among %d environments after the holder died, want exactly 1", n, len(envs))
	}
	if sum.LeaseTimeouts != 0 {
		t.Errorf("LeaseTimeouts = %d: callers gave up on the lease instead of taking it over", sum.LeaseTimeouts)
	}
}
