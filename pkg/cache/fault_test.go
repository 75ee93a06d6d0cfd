package cache_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/redisclient"
	"github.com/redis/go-redis/v9"
)

// ftTimeouts shortens the Lambda defaults so fault tests run quickly: OpTimeout is
// then 2×200 ms + 200 ms = 600 ms.
var ftTimeouts = map[string]string{
	"REDIS_READ_TIMEOUT":     "200ms",
	"REDIS_DIAL_TIMEOUT":     "200ms",
	"REDIS_BREAKER_COOLDOWN": "500ms",
	"REDIS_MAX_RETRIES":      "1",
	"CACHE_LEASE_TTL":        "500ms",
}

// ftService is a Lambda-mode Service on addr (a private server or a fake) with the
// short fault-test timeouts plus extra.
func ftService(tb testing.TB, addr string, extra map[string]string) (*cache.Service, *redisclient.Lazy, config.Config) {
	tb.Helper()
	environ := maps.Clone(ftTimeouts)
	maps.Copy(environ, extra)
	cfg := itConfig(tb, addr, redistest.Prefix(tb), config.ModeLambda, environ)
	svc, lazy := itService(tb, cfg)
	return svc, lazy, cfg
}

// ftBound is the most one call may take against a broken server: three times the
// operation timeout, so -race on a busy machine does not flake.
func ftBound(cfg config.Config) time.Duration { return 3 * cfg.Redis.OpTimeout }

// ftFetch returns a fetch function that counts its calls.
func ftFetch(v string) (cache.FetchFunc, *atomic.Int64) {
	n := new(atomic.Int64)
	return func(context.Context) (string, error) { n.Add(1); return v, nil }, n
}

// ftWaitClosed waits until the breaker lets a probe through (half-open), for at most
// three cooldowns.
func ftWaitClosed(tb testing.TB, svc *cache.Service, cfg config.Config) {
	tb.Helper()
	deadline := time.Now().Add(3 * cfg.Redis.BreakerCooldown)
	for svc.BreakerOpen() {
		if time.Now().After(deadline) {
			tb.Fatalf("breaker still open %v after the cooldown", 3*cfg.Redis.BreakerCooldown)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ftSilent is a TCP server that accepts connections and never answers: the shape of a
// Redis behind a black-holed network path, or one stuck in a long command. It counts
// the connections it accepted and the bytes it was sent.
type ftSilent struct {
	ln      net.Listener
	accepts atomic.Int64
	bytes   atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
}

func ftSilentServer(tb testing.TB) *ftSilent {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &ftSilent{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Go(func() {
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					s.bytes.Add(int64(n))
					if err != nil {
						return
					}
				}
			})
		}
	})
	tb.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *ftSilent) Addr() string { return s.ln.Addr().String() }

// TestFaultServerStoppedAndRestarted stops a private server under a working Service,
// checks that calls fail with a clear, classified error while GetOrSet keeps serving
// from the source, then restarts the server on the same port and checks that the same
// Service (and its Lazy) recovers on its own.
func TestFaultServerStoppedAndRestarted(t *testing.T) {
	srv := redistest.Start(t)
	svc, lazy, cfg := ftService(t, srv.Addr(), nil)
	ctx := itCtx(t)
	if _, err := svc.Set(ctx, "k", "before", cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	start := time.Now()
	_, err := svc.Get(ctx, "k")
	if took := time.Since(start); took > ftBound(cfg) {
		t.Errorf("Get against a stopped server took %v, bound %v", took, ftBound(cfg))
	}
	if got := cache.CauseOf(err); got != fault.CauseConnectionRefused {
		t.Fatalf("Get against a stopped server: cause %q (%v), want connection_refused", got, err)
	}
	if errors.Is(err, cache.ErrMiss) {
		t.Fatal("a refused connection was reported as a miss")
	}
	if msg := cache.CauseOf(err).Message(); !strings.Contains(msg, "refused the connection") {
		t.Errorf("cause message %q does not say the connection was refused", msg)
	}
	if !strings.Contains(err.Error(), "connection_refused") || !strings.Contains(err.Error(), `get "`) {
		t.Errorf("error %q does not name the operation and the cause", err)
	}

	fetch, fetches := ftFetch("from-source")
	for i := range 5 {
		v, r, err := svc.GetOrSet(ctx, "p", time.Minute, fetch)
		if err != nil || v != "from-source" || r.Outcome != cache.Bypass {
			t.Fatalf("GetOrSet %d with Redis down = %q, %v, %v; want the fetched value as BYPASS", i, v, r.Outcome, err)
		}
		if i == 0 && r.Cause != fault.CauseConnectionRefused {
			t.Errorf("GetOrSet Result.Cause = %q, want connection_refused", r.Cause)
		}
	}
	if fetches.Load() != 5 {
		t.Errorf("fetch ran %d times, want 5", fetches.Load())
	}
	st := svc.Stats()
	if !svc.BreakerOpen() || svc.IsConnected() || st.BreakerOpens != 1 || st.Bypasses != 5 || st.Skipped == 0 {
		t.Errorf("after the outage: BreakerOpen=%v IsConnected=%v Stats=%+v; want open, disconnected, 5 bypasses, skips",
			svc.BreakerOpen(), svc.IsConnected(), st)
	}

	srv.Restart()
	ftWaitClosed(t, svc, cfg)
	// The first call after the cooldown is the breaker's probe; the server came back
	// empty (nothing is saved), so a working Redis answers "miss".
	if _, err := svc.Get(ctx, "k"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("first call after the restart: %v (cause %q), want ErrMiss from a working server", err, cache.CauseOf(err))
	}
	if _, err := svc.Set(ctx, "k", "after", cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if v, err := svc.Get(ctx, "k"); err != nil || v != "after" {
		t.Fatalf("Get after the restart = %q, %v", v, err)
	}
	v, r, err := svc.GetOrSet(ctx, "p", time.Minute, fetch)
	if err != nil || v != "from-source" || r.Outcome != cache.Miss {
		t.Fatalf("GetOrSet after the restart = %q, %v, %v; want a MISS that stores", v, r.Outcome, err)
	}
	if _, r, _ = svc.GetOrSet(ctx, "p", time.Minute, fetch); r.Outcome != cache.Hit {
		t.Errorf("second GetOrSet after the restart: %v, want HIT", r.Outcome)
	}
	if !svc.IsConnected() || svc.BreakerOpen() {
		t.Errorf("after recovery: IsConnected=%v BreakerOpen=%v", svc.IsConnected(), svc.BreakerOpen())
	}
	// A client whose dial failed is replaced inside the Lazy (by design); the caller
	// never rebuilt anything.
	t.Logf("recovered; the Lazy built %d clients and tried %d dials", lazy.Builds(), lazy.Dials())
}

// TestFaultOpenBreakerKeepsCause checks what a caller learns while the breaker skips
// Redis: ErrUnavailable, "wrapped with the cause" (its doc), so the log line and a
// Bypass result still say why Redis is unusable rather than "unknown".
func TestFaultOpenBreakerKeepsCause(t *testing.T) {
	srv := redistest.Start(t)
	svc, _, cfg := ftService(t, srv.Addr(), nil)
	ctx := itCtx(t)
	srv.Stop()
	for range cfg.Redis.BreakerFailures {
		_, _ = svc.Get(ctx, "k")
	}
	if !svc.BreakerOpen() {
		t.Fatalf("breaker closed after %d refused connections", cfg.Redis.BreakerFailures)
	}
	_, err := svc.Get(ctx, "k")
	if !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("Get with the breaker open: %v, want ErrUnavailable", err)
	}
	if got := cache.CauseOf(err); got != fault.CauseConnectionRefused {
		t.Errorf("CauseOf(skipped call) = %q (%q), want connection_refused, the fault that opened the breaker",
			got, err)
	}
	fetch, _ := ftFetch("v")
	if _, r, _ := svc.GetOrSet(ctx, "k", time.Minute, fetch); r.Cause != fault.CauseConnectionRefused {
		t.Errorf("Result.Cause of a skipped GetOrSet = %q, want connection_refused", r.Cause)
	}
}

// TestFaultClientKill kills the Service's pooled connections on the server side, as a
// server restart, a failover or a NAT that forgot a frozen environment's connection
// would; the next call must still succeed, on the same client.
func TestFaultClientKill(t *testing.T) {
	for _, how := range []string{"type normal", "by id"} {
		t.Run(how, func(t *testing.T) {
			srv := redistest.Start(t)
			svc, lazy, _ := ftService(t, srv.Addr(), nil)
			ctx := itCtx(t)
			if _, err := svc.Set(ctx, "k", "v", cache.SetOptions{}); err != nil {
				t.Fatal(err)
			}
			// Use both connections of the pool (PoolSize 2 under Lambda).
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() { _, _ = svc.Get(ctx, "k") })
			}
			wg.Wait()
			ours := ftClientIDs(t, srv)
			if len(ours) == 0 {
				t.Fatal("CLIENT LIST shows none of the Service's connections")
			}
			killed := 0
			switch how {
			case "type normal":
				n, err := strconv.Atoi(srv.MustDo("CLIENT", "KILL", "TYPE", "normal"))
				if err != nil {
					t.Fatal(err)
				}
				killed = n
			case "by id":
				for _, id := range ours {
					if srv.MustDo("CLIENT", "KILL", "ID", id) == "1" {
						killed++
					}
				}
			}
			if killed == 0 {
				t.Fatalf("CLIENT KILL killed none of the pooled connections %v", ours)
			}
			for i := range 3 {
				if v, err := svc.Get(ctx, "k"); err != nil || v != "v" {
					t.Fatalf("Get %d after CLIENT KILL = %q, %v (cause %q), want the value", i, v, err, cache.CauseOf(err))
				}
			}
			after := ftClientIDs(t, srv)
			for _, id := range after {
				for _, old := range ours {
					if id == old {
						t.Errorf("connection %s survived CLIENT KILL", id)
					}
				}
			}
			if lazy.Builds() != 1 || !svc.IsConnected() || svc.Stats().Errors != 0 {
				t.Errorf("Builds=%d IsConnected=%v Errors=%d; want the same client, connected, no error",
					lazy.Builds(), svc.IsConnected(), svc.Stats().Errors)
			}
			t.Logf("killed %d pooled connections; the next calls used %v", killed, after)
		})
	}
}

// ftClientIDs lists the ids of the server's normal clients other than the one asking.
func ftClientIDs(tb testing.TB, srv *redistest.Server) []string {
	tb.Helper()
	var ids []string
	for line := range strings.SplitSeq(srv.MustDo("CLIENT", "LIST", "TYPE", "normal"), "\n") {
		if line == "" || strings.Contains(line, "cmd=client|list") {
			continue
		}
		for field := range strings.FieldsSeq(line) {
			if id, ok := strings.CutPrefix(field, "id="); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// TestFaultSilentServer points the Service at a server that accepts TCP connections and
// never answers. Each call must end within its bound, the breaker must open after
// BreakerFailures timeouts, and from then on calls must not reach the server at all
// (proved by the listener's counters, not by timings) until the cooldown lets a probe
// through.
func TestFaultSilentServer(t *testing.T) {
	silent := ftSilentServer(t)
	// A longer cooldown than the other fault tests leaves ample room to make the
	// skipped calls while the breaker is certainly still open.
	svc, _, cfg := ftService(t, silent.Addr(), map[string]string{"REDIS_BREAKER_COOLDOWN": "1s"})
	ctx := itCtx(t)
	bound := ftBound(cfg)
	fetch, fetches := ftFetch("from-source")

	for i := range cfg.Redis.BreakerFailures {
		start := time.Now()
		if i == 0 {
			_, err := svc.Get(ctx, "k")
			if got := cache.CauseOf(err); got != fault.CauseTimeout {
				t.Errorf("Get against a silent server: cause %q (%v), want timeout", got, err)
			}
		} else {
			v, r, err := svc.GetOrSet(ctx, "k", time.Minute, fetch)
			if err != nil || v != "from-source" || r.Outcome != cache.Bypass || r.Cause != fault.CauseTimeout {
				t.Errorf("GetOrSet %d against a silent server = %q, %+v, %v; want the value as BYPASS (timeout)", i, v, r, err)
			}
		}
		if took := time.Since(start); took > bound {
			t.Errorf("call %d took %v, bound %v (3 × OpTimeout %v)", i, took, bound, cfg.Redis.OpTimeout)
		}
	}
	if !svc.BreakerOpen() {
		t.Fatalf("breaker closed after %d timeouts", cfg.Redis.BreakerFailures)
	}
	if svc.IsConnected() {
		t.Error("IsConnected with the breaker open = true")
	}

	accepts, bytes, before := silent.accepts.Load(), silent.bytes.Load(), svc.Stats()
	if accepts == 0 || bytes == 0 {
		t.Fatalf("the silent server saw %d connections and %d bytes; the test did not reach it", accepts, bytes)
	}
	const skips = 10
	for range skips {
		v, r, err := svc.GetOrSet(ctx, "k", time.Minute, fetch)
		if err != nil || v != "from-source" || r.Outcome != cache.Bypass {
			t.Fatalf("GetOrSet with the breaker open = %q, %v, %v", v, r.Outcome, err)
		}
		if _, err := svc.Get(ctx, "k"); !errors.Is(err, cache.ErrUnavailable) {
			t.Fatalf("Get with the breaker open: %v, want ErrUnavailable", err)
		}
	}
	after := svc.Stats()
	if a, b := silent.accepts.Load(), silent.bytes.Load(); a != accepts || b != bytes {
		t.Errorf("with the breaker open the server saw %d new connections and %d new bytes; want none",
			a-accepts, b-bytes)
	}
	if d := after.Skipped - before.Skipped; d < 2*skips {
		t.Errorf("Skipped rose by %d, want at least %d", d, 2*skips)
	}
	if d := after.Bypasses - before.Bypasses; d != skips {
		t.Errorf("Bypasses rose by %d, want %d", d, skips)
	}
	if int(fetches.Load()) != cfg.Redis.BreakerFailures-1+skips {
		t.Errorf("fetch ran %d times, want once per GetOrSet", fetches.Load())
	}

	ftWaitClosed(t, svc, cfg)
	start := time.Now()
	if _, err := svc.Get(ctx, "k"); cache.CauseOf(err) != fault.CauseTimeout {
		t.Errorf("probe: %v, want a timeout from the still-silent server", err)
	}
	if took := time.Since(start); took > bound {
		t.Errorf("probe took %v, bound %v", took, bound)
	}
	if silent.accepts.Load() == accepts && silent.bytes.Load() == bytes {
		t.Error("after the cooldown no probe reached the server")
	}
	if !svc.BreakerOpen() || svc.Stats().BreakerOpens != 2 {
		t.Errorf("after a failed probe: BreakerOpen=%v BreakerOpens=%d; want open again, 2",
			svc.BreakerOpen(), svc.Stats().BreakerOpens)
	}
	t.Logf("silent server: %d connections, %d bytes; stats %+v", silent.accepts.Load(), silent.bytes.Load(), svc.Stats())
}

// TestFaultPausedServerRecovers freezes a real redis-server (SIGSTOP: the kernel still
// accepts connections, nothing answers), then thaws it: the breaker opens, and after
// the cooldown its probe succeeds and closes it again.
func TestFaultPausedServerRecovers(t *testing.T) {
	srv := redistest.Start(t)
	svc, _, cfg := ftService(t, srv.Addr(), nil)
	ctx := itCtx(t)
	if _, err := svc.Set(ctx, "k", cache.NewEntry("v", time.Now().Add(time.Hour)), cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	t.Cleanup(srv.Resume)
	fetch, _ := ftFetch("from-source")
	for i := range cfg.Redis.BreakerFailures + 2 {
		start := time.Now()
		v, r, err := svc.GetOrSet(ctx, "k", time.Minute, fetch)
		if err != nil || v != "from-source" || r.Outcome != cache.Bypass {
			t.Errorf("GetOrSet %d against a paused server = %q, %v, %v", i, v, r.Outcome, err)
		}
		if took := time.Since(start); took > ftBound(cfg) {
			t.Errorf("GetOrSet %d took %v, bound %v", i, took, ftBound(cfg))
		}
	}
	if !svc.BreakerOpen() {
		t.Fatal("breaker closed against a paused server")
	}
	srv.Resume()
	ftWaitClosed(t, svc, cfg)
	v, r, err := svc.GetOrSet(ctx, "k", time.Minute, fetch)
	if err != nil || v != "v" || r.Outcome != cache.Hit {
		t.Fatalf("after Resume = %q, %v, %v; want the stored value as a HIT", v, r.Outcome, err)
	}
	if svc.BreakerOpen() || !svc.IsConnected() {
		t.Errorf("after a good probe: BreakerOpen=%v IsConnected=%v", svc.BreakerOpen(), svc.IsConnected())
	}
}

// TestFaultWrongPassword checks that refused credentials are named as such, that no
// rendering of the error carries the password, and that GetOrSet still serves.
func TestFaultWrongPassword(t *testing.T) {
	const real = "Real-Pw-7c1e9a3b"
	const wrong = "Wrong-Pw-5d2f8e4c"
	srv := redistest.Start(t, "--requirepass", real)
	for _, tc := range []struct {
		name  string
		extra map[string]string
	}{
		{"password in the URL", map[string]string{"REDIS_URL": "redis://:" + wrong + "@" + srv.Addr()}},
		{"user and password in the URL", map[string]string{"REDIS_URL": "redis://app:" + wrong + "@" + srv.Addr()}},
		{"REDIS_PASSWORD overrides the URL", map[string]string{
			"REDIS_URL": "redis://:" + real + "@" + srv.Addr(), "REDIS_PASSWORD": wrong}},
		{"no password", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, _, _ := ftService(t, srv.Addr(), tc.extra)
			ctx := itCtx(t)
			_, err := svc.Get(ctx, "k")
			if got := cache.CauseOf(err); got != fault.CauseAuthFailed {
				t.Fatalf("cause %q (%v), want auth_failed", got, err)
			}
			if msg := cache.CauseOf(err).Message(); !strings.Contains(msg, "authentication failed") {
				t.Errorf("cause message %q does not say authentication failed", msg)
			}
			fetch, _ := ftFetch("from-source")
			v, r, gerr := svc.GetOrSet(ctx, "p", time.Minute, fetch)
			if gerr != nil || v != "from-source" || r.Outcome != cache.Bypass || r.Cause != fault.CauseAuthFailed {
				t.Errorf("GetOrSet = %q, %+v, %v; want the value as BYPASS (auth_failed)", v, r, gerr)
			}
			for _, e := range []error{err, r.Err} {
				for _, text := range []string{e.Error(), fmt.Sprintf("%v", e), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
					if strings.Contains(text, wrong) || strings.Contains(text, real) {
						t.Errorf("the error shows a password: %s", text)
					}
				}
			}
		})
	}
	t.Run("right password", func(t *testing.T) {
		svc, _, _ := ftService(t, srv.Addr(), map[string]string{"REDIS_URL": "redis://127.0.0.1:" + strconv.Itoa(srv.Port), "REDIS_PASSWORD": real})
		ctx := itCtx(t)
		if _, err := svc.Set(ctx, "k", "v", cache.SetOptions{}); err != nil {
			t.Fatalf("Set with the right password: %v", err)
		}
	})
}

// TestFaultOutOfMemory fills a private server that refuses writes when full
// (noeviction): reads are still served, writes fail with out_of_memory, GetOrSet
// returns fetched values and reports the failed store, and the breaker, which counts
// only faults of an unusable Redis, stays closed.
func TestFaultOutOfMemory(t *testing.T) {
	srv := redistest.Start(t, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
	svc, _, cfg := ftService(t, srv.Addr(), nil)
	ctx := itCtx(t)
	if _, err := svc.Set(ctx, "existing", cache.NewEntry("kept", time.Now().Add(time.Hour)), cache.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.HSet(ctx, "hash", "f", "v"); err != nil {
		t.Fatal(err)
	}
	raw := itRaw(t, srv.Addr(), "")
	ftFill(t, raw, svc.Prefix())
	if err := raw.Set(ctx, svc.Prefix()+"tiny", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("a tiny SET on the filled server: %v, want OOM (used_memory %s)", err, srv.Info("used_memory_human"))
	}

	for i := range cfg.Redis.BreakerFailures + 2 {
		_, err := svc.Set(ctx, fmt.Sprintf("new%d", i), "v", cache.SetOptions{})
		if got := cache.CauseOf(err); got != fault.CauseOutOfMemory {
			t.Fatalf("Set %d on a full server: cause %q (%v), want out_of_memory", i, got, err)
		}
	}
	if v, err := svc.Get(ctx, "existing"); err != nil || v != "kept" {
		t.Errorf("Get of an existing key on a full server = %q, %v", v, err)
	}
	if m, err := svc.HGetAll(ctx, "hash"); err != nil || m["f"] != "v" {
		t.Errorf("HGetAll on a full server = %v, %v", m, err)
	}
	fetch, fetches := ftFetch("fetched")
	for range 2 {
		v, r, err := svc.GetOrSet(ctx, "fresh", time.Minute, fetch)
		if err != nil || v != "fetched" || r.Outcome != cache.Miss {
			t.Fatalf("GetOrSet of a new key = %q, %v, %v; want the fetched value", v, r.Outcome, err)
		}
		if got := cache.CauseOf(r.StoreErr); got != fault.CauseOutOfMemory {
			t.Errorf("Result.StoreErr = %v (cause %q), want out_of_memory", r.StoreErr, got)
		}
	}
	if fetches.Load() != 2 {
		t.Errorf("fetch ran %d times, want 2 (nothing could be stored)", fetches.Load())
	}
	if v, r, err := svc.GetOrSet(ctx, "existing", time.Minute, fetch); err != nil || v != "kept" || r.Outcome != cache.Hit {
		t.Errorf("GetOrSet of an existing key = %q, %v, %v; want a HIT", v, r.Outcome, err)
	}
	st := svc.Stats()
	if svc.BreakerOpen() || !svc.IsConnected() || st.BreakerOpens != 0 || st.StoreFailures != 2 {
		t.Errorf("on a full server: BreakerOpen=%v IsConnected=%v Stats=%+v; want closed, connected, 2 store failures",
			svc.BreakerOpen(), svc.IsConnected(), st)
	}
}

// ftFill writes keys until the server refuses writes. Large values first, then small
// ones: a refused large SET frees its own query buffer, which can bring the server back
// under maxmemory, so only a refused small write shows that it is really full.
func ftFill(tb testing.TB, raw *redis.Client, prefix string) {
	tb.Helper()
	ctx := context.Background()
	n := 0
	for _, size := range []int{16 << 10, 1 << 10, 64} {
		value := strings.Repeat("x", size)
		for full := false; !full; {
			if n > 100000 {
				tb.Fatal("the server never filled up")
			}
			cmds, _ := raw.Pipelined(ctx, func(p redis.Pipeliner) error {
				for range 50 {
					p.Set(ctx, fmt.Sprintf("%sfill:%d", prefix, n), value, 0)
					n++
				}
				return nil
			})
			for _, c := range cmds {
				if err := c.Err(); err != nil {
					if !strings.HasPrefix(err.Error(), "OOM") {
						tb.Fatalf("filling the server: %v", err)
					}
					full = true
				}
			}
		}
	}
}
