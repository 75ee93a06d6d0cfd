package cache_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// Environment of the frozen-process helper.
const (
	freezeProcEnv = "STOREAPI_TEST_L1_FREEZE"
	freezeArgsEnv = "STOREAPI_TEST_L1_FREEZE_ARGS" // mode addr prefix
)

// TestL1FreezeProcess is not a test: it is the process TestL1Frozen stops and
// continues. It reads key names on standard input and answers each with
// "R <value> <tier>" on standard output. Its mode is "lambda" (the tier with a
// barrier before every read), "http" (the tier with its bound), or "raw" (go-redis's
// client-side cache alone, no barrier: the measurement of what a freeze does without
// one).
func TestL1FreezeProcess(t *testing.T) {
	if os.Getenv(freezeProcEnv) != "1" {
		t.Skip("helper process of TestL1Frozen; runs only when re-executed by it")
	}
	args := strings.Fields(os.Getenv(freezeArgsEnv))
	mode, addr, prefix := args[0], args[1], args[2]
	var read func(key string) (string, string)
	switch mode {
	case "raw":
		rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 3, PoolSize: 1,
			ClientSideCacheConfig: &redis.ClientSideCacheConfig{DrainInterval: time.Millisecond}})
		defer rdb.Close()
		read = func(key string) (string, string) {
			v, err := rdb.Get(context.Background(), prefix+key).Result()
			if err != nil {
				return "error:" + err.Error(), "-"
			}
			return v, "-"
		}
	default:
		m := config.ModeHTTP
		if mode == "lambda" {
			m = config.ModeLambda
		}
		svc, _ := l1Service(t, addr, prefix, m, map[string]string{"CACHE_L1_MAX_STALENESS": "10ms"})
		read = func(key string) (string, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			v, res, err := svc.GetOrSet(ctx, key, time.Minute, func(context.Context) (string, error) { return "fetched", nil })
			if err != nil {
				return "error:" + err.Error(), "-"
			}
			if res.Outcome != cache.Hit {
				return v, res.Outcome.String() + ":" + string(res.Cause)
			}
			return v, res.Tier.String()
		}
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		v, tier := read(in.Text())
		fmt.Printf("R %s %s\n", v, tier)
	}
}

// frozen is a helper process under the test's control.
type frozen struct {
	tb  testing.TB
	cmd *exec.Cmd
	in  io.Writer
	out *bufio.Scanner
}

func startFrozen(tb testing.TB, mode, addr, prefix string) *frozen {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestL1FreezeProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), freezeProcEnv+"=1", freezeArgsEnv+"="+mode+" "+addr+" "+prefix)
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return &frozen{tb: tb, cmd: cmd, in: in, out: bufio.NewScanner(out)}
}

// read asks the helper for key and returns its answer.
func (f *frozen) read(key string) (value, tier string) {
	f.tb.Helper()
	if _, err := fmt.Fprintln(f.in, key); err != nil {
		f.tb.Fatal(err)
	}
	for f.out.Scan() {
		if rest, ok := strings.CutPrefix(f.out.Text(), "R "); ok {
			value, tier, _ = strings.Cut(rest, " ")
			return value, tier
		}
	}
	f.tb.Fatalf("helper ended: %v", f.out.Err())
	return "", ""
}

func (f *frozen) signal(sig syscall.Signal) {
	f.tb.Helper()
	if err := f.cmd.Process.Signal(sig); err != nil {
		f.tb.Fatal(err)
	}
}

// warm reads key until the tier serves it (raw mode: twice).
func (f *frozen) warm(key string) {
	f.tb.Helper()
	// A read that finds no recent barrier goes to Redis and starts one, so on a loaded
	// machine the first reads may all be L2: keep reading, a millisecond apart, for up
	// to 5 s.
	var seen []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, tier := f.read(key)
		seen = append(seen, v+" "+tier)
		if tier == "L1" || tier == "-" {
			if tier == "-" {
				f.read(key)
			}
			return
		}
		if time.Now().After(deadline) {
			f.tb.Fatalf("%s: the helper's tier never served it in %d reads over 5s: %q", key, len(seen), seen[:5])
		}
		time.Sleep(time.Millisecond)
	}
}

// freezeTrials runs trials of: key in the helper's memory, SIGSTOP, the key changed
// (and, with kill, the tracking connection killed), a pause, SIGCONT, a read at once.
// It returns how many of those reads were stale.
func freezeTrials(t *testing.T, srv *redistest.Server, f *frozen, raw *redis.Client, prefix string, trials int, pause time.Duration, kill bool) int {
	t.Helper()
	stale := 0
	for i := 1; i <= trials; i++ {
		l1External(t, raw, prefix+"p:1", "old"+strconv.Itoa(i))
		f.warm("p:1")
		f.signal(syscall.SIGSTOP)
		want := "new" + strconv.Itoa(i)
		if kill {
			srv.MustDo("CLIENT", "KILL", "ID", l1TrackingClientID(t, srv))
		}
		l1External(t, raw, prefix+"p:1", want)
		time.Sleep(pause)
		f.signal(syscall.SIGCONT)
		if v, _ := f.read("p:1"); v != want {
			stale++
		}
	}
	return stale
}

// TestL1Frozen: the process is frozen (SIGSTOP) while the key it holds in L1 changes,
// then continued and asked at once. With a barrier before every read (the Lambda
// setting) no read is stale, whatever the pause; with the HTTP setting none is after a
// pause longer than its bound. Also with the tracking connection killed while frozen.
// go-redis's cache alone (no barrier) is measured for comparison: it serves stale
// values after a freeze.
func TestL1Frozen(t *testing.T) {
	if testing.Short() {
		t.Skip("hundreds of freezes take seconds; not in -short")
	}
	srv := redistest.Start(t)
	raw := itRaw(t, srv.Addr(), "")
	for _, c := range []struct {
		mode   string
		trials int
		pause  time.Duration
		kill   bool
		want0  bool
	}{
		{"lambda", 200, 0, false, true},
		{"lambda", 50, 0, true, true},
		{"http", 200, 25 * time.Millisecond, false, true},
		{"http", 50, 25 * time.Millisecond, true, true},
		{"raw", 100, 0, false, false},
		{"raw", 50, 50 * time.Millisecond, false, false},
	} {
		name := fmt.Sprintf("%s/pause=%v/kill=%v", c.mode, c.pause, c.kill)
		t.Run(name, func(t *testing.T) {
			prefix := redistest.Prefix(t)
			f := startFrozen(t, c.mode, srv.Addr(), prefix)
			stale := freezeTrials(t, srv, f, raw, prefix, c.trials, c.pause, c.kill)
			t.Logf("%s: %d of %d reads at once after SIGCONT were stale", name, stale, c.trials)
			if c.want0 && stale > 0 {
				t.Errorf("%d stale reads", stale)
			}
		})
	}
}

// TestL1InvalidationFlood: while the process is frozen, a flood of invalidations for
// the keys it holds (megabytes: more than the kernel's socket buffers take) overflows
// the server's output buffer for its tracking connection (client-output-buffer-limit),
// and the server drops the connection. When continued, no key is read stale, and the
// tier serves again.
func TestL1InvalidationFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("not in -short")
	}
	srv := redistest.Start(t, "--client-output-buffer-limit", "normal 1mb 512kb 1")
	raw := itRaw(t, srv.Addr(), "")
	prefix := redistest.Prefix(t)
	const keys, rounds = 20000, 1
	name := func(i int) string { return "k" + strconv.Itoa(i) + "-" + strings.Repeat("x", 400) }
	ctx := context.Background()
	for i := range keys {
		l1External(t, raw, prefix+name(i), "old")
	}
	f := startFrozen(t, "http", srv.Addr(), prefix)
	// Every key must be tracked on one connection. On a loaded machine a barrier can
	// time out and the connection be replaced while the keys are read, dropping what
	// the old one tracked: then read them all again.
	f.warm(name(0))
	id := l1TrackingClientID(t, srv)
	for attempt := 1; ; attempt++ {
		for i := range keys {
			f.warm(name(i))
		}
		now := l1TrackingClientID(t, srv)
		if now == id {
			break
		}
		if attempt == 3 {
			t.Fatalf("the tracking connection changed while the keys were read, %d times", attempt)
		}
		id = now
	}
	f.signal(syscall.SIGSTOP)
	// Each write sends the frozen process an invalidation it does not read (one per
	// key: tracking stops after a key's first invalidation until it is read again).
	last := ""
	for round := range rounds {
		last = "new" + strconv.Itoa(round)
		p := raw.Pipeline()
		for i := range keys {
			p.Set(ctx, prefix+name(i), cache.NewEntry(last, time.Now().Add(time.Hour)), time.Minute)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	dropped := !strings.Contains(srv.MustDo("CLIENT", "LIST"), "id="+id+" ")
	f.signal(syscall.SIGCONT)
	stale := 0
	for i := range keys {
		if v, _ := f.read(name(i)); v != last {
			stale++
		}
	}
	t.Logf("tracking connection dropped by the server: %v; %d of %d keys stale after SIGCONT", dropped, stale, keys)
	if !dropped {
		t.Error("the server kept the tracking connection: the flood did not overflow its buffer")
	}
	if stale > 0 {
		t.Errorf("%d stale reads", stale)
	}
	f.warm(name(0))
}
