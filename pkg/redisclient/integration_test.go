package redisclient_test

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/redisclient"
	"github.com/redis/go-redis/v9"
)

// itLazy builds a holder the way a function does: config from the environment, then
// go-redis options from it. env adds or overrides variables ("KEY=value"). It is
// closed when the test ends.
func itLazy(tb testing.TB, addr string, env ...string) *redisclient.Lazy {
	tb.Helper()
	vars := map[string]string{
		"REDIS_URL":          "redis://" + addr,
		"REDIS_READ_TIMEOUT": "200ms",
		"REDIS_DIAL_TIMEOUT": "200ms",
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	cfg, err := config.Parse(vars, config.ModeLambda)
	if err != nil {
		tb.Fatal(err)
	}
	opts, err := redisclient.Options(cfg.Redis)
	if err != nil {
		tb.Fatal(err)
	}
	l := redisclient.NewLazy(opts)
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

func itCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// itProxy forwards TCP connections to a Redis and counts them: accepted in total, and
// open right now. It is the evidence of when the client under test really dials.
type itProxy struct {
	ln      net.Listener
	target  string
	accepts atomic.Int64
	open    atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
}

func itStartProxy(tb testing.TB, target string) *itProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &itProxy{ln: ln, target: target}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepts.Add(1)
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.open.Add(1)
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			var once sync.Once
			done := func() {
				once.Do(func() { p.open.Add(-1) })
				_ = c.Close()
				_ = up.Close()
			}
			p.wg.Go(func() { _, _ = io.Copy(up, c); done() })
			p.wg.Go(func() { _, _ = io.Copy(c, up); done() })
		}
	})
	tb.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *itProxy) Addr() string { return p.ln.Addr().String() }

// itEventually polls cond for up to d: for effects that happen on another goroutine
// (a proxy noticing a closed connection), never as a timing assertion.
func itEventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// Concurrent first use builds one client, and every caller uses it: the connections,
// counted where they arrive, are at most one pool's. At most a pool's worth of
// commands are in flight, so none ever waits for a connection: the outcome does not
// depend on how fast Redis answers. (With all 100 PINGs at once, the last ones queued
// for one of the 2 connections past the 200 ms pool timeout on a slow round trip: a
// proxy adding 10 ms per reply failed 20 to 34 of them, as a loaded machine did now
// and then.) The read timeout is long for the same reason: here it only catches a hang.
func TestIntegrationLazyConcurrentFirstUse(t *testing.T) {
	const n, poolSize = 100, 2
	proxy := itStartProxy(t, redistest.SharedAddr(t))
	l := itLazy(t, proxy.Addr(), "REDIS_POOL_SIZE="+strconv.Itoa(poolSize), "REDIS_READ_TIMEOUT=10s")
	ctx := itCtx(t)
	clients := make([]redis.UniversalClient, n)
	errs := make([]error, n)
	start := make(chan struct{})
	inFlight := make(chan struct{}, poolSize)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			clients[i] = l.Client()
			// go-redis puts the connection back before the command returns, so a
			// free slot here means a free connection (or room to dial one).
			inFlight <- struct{}{}
			errs[i] = clients[i].Ping(ctx).Err()
			<-inFlight
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if clients[i] != clients[0] {
			t.Fatalf("goroutine %d got another client", i)
		}
		if errs[i] != nil {
			t.Errorf("goroutine %d: PING: %v", i, errs[i])
		}
	}
	if b := l.Builds(); b != 1 {
		t.Errorf("Builds = %d after %d concurrent first uses, want 1", b, n)
	}
	if got := proxy.accepts.Load(); got < 1 || got > poolSize {
		t.Errorf("%d concurrent first uses opened %d connections, want 1 to %d: one client's pool", n, got, poolSize)
	}
	if got := l.Dials(); got != proxy.accepts.Load() {
		t.Errorf("Dials = %d, but %d connections arrived", got, proxy.accepts.Load())
	}
	if s := l.PoolStats(); s.WaitCount != 0 || s.Timeouts != 0 {
		t.Errorf("pool waits %d, timeouts %d: a command queued for a connection", s.WaitCount, s.Timeouts)
	}
}

func TestIntegrationLazyBuildDoesNoIO(t *testing.T) {
	proxy := itStartProxy(t, redistest.SharedAddr(t))
	l := itLazy(t, proxy.Addr())
	ctx := itCtx(t)
	c := l.Client()
	if !l.Built() || l.Builds() != 1 {
		t.Fatalf("Built=%v Builds=%d after Client(), want a client", l.Built(), l.Builds())
	}
	// Give a would-be background dial every chance to show up before looking.
	time.Sleep(100 * time.Millisecond)
	if n := proxy.accepts.Load(); n != 0 {
		t.Fatalf("building the client opened %d connections, want none", n)
	}
	if l.Dials() != 0 {
		t.Errorf("Dials = %d before the first command, want 0", l.Dials())
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n := proxy.accepts.Load(); n != 1 {
		t.Errorf("the first command opened %d connections, want 1", n)
	}
	if err := l.Client().Ping(ctx).Err(); err != nil || proxy.accepts.Load() != 1 {
		t.Errorf("second command: %v, connections %d; want the pooled connection reused", err, proxy.accepts.Load())
	}
}

func TestIntegrationLazyRetriesFailedDial(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop() // a free port that a server will come to listen on
	l := itLazy(t, srv.Addr())
	ctx := itCtx(t)
	// More failures than the pool has connections: that is when a bare go-redis pool
	// starts answering with its remembered dial error instead of dialing.
	for i := range 5 {
		err := l.Client().Ping(ctx).Err()
		if got := fault.Classify(err); got != fault.CauseConnectionRefused {
			t.Fatalf("PING %d with nothing listening: cause %q (%v), want connection_refused", i, got, err)
		}
	}
	srv.Restart()
	if err := l.Client().Ping(ctx).Err(); err != nil {
		t.Fatalf("first PING once the server is up: %v (cause %q), want success, not a replayed dial error",
			err, fault.Classify(err))
	}
	if err := l.Client().Set(ctx, "redisclient:it", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the holder built %d clients for %d dials", l.Builds(), l.Dials())
}

func TestIntegrationLazyCloseThenUse(t *testing.T) {
	proxy := itStartProxy(t, redistest.SharedAddr(t))
	goroutines := runtime.NumGoroutine()
	l := itLazy(t, proxy.Addr())
	ctx := itCtx(t)
	first := l.Client()
	if err := first.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if l.Built() {
		t.Error("Built after Close = true")
	}
	if !itEventually(5*time.Second, func() bool { return proxy.open.Load() == 0 }) {
		t.Errorf("%d connections still open after Close", proxy.open.Load())
	}
	if err := first.Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("the closed client: %v, want redis.ErrClosed", err)
	}
	second := l.Client()
	if second == first {
		t.Fatal("Client after Close returned the closed client")
	}
	if err := second.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Close and reuse: %v", err)
	}
	if b := l.Builds(); b != 2 {
		t.Errorf("Builds = %d, want 2", b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !itEventually(5*time.Second, func() bool { return proxy.open.Load() == 0 }) {
		t.Errorf("%d connections still open after the second Close", proxy.open.Load())
	}
	if !itEventually(5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines }) {
		t.Errorf("goroutines: %d before, %d after Close", goroutines, runtime.NumGoroutine())
	}
}
