package e2e

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// openBreaker invokes getProduct until its breaker opens (REDIS_BREAKER_FAILURES, 3
// by default, consecutive faults): each answer is 200 BYPASS within faultBound and
// its request line has the cause. It returns when the last of them ended.
func openBreaker(t *testing.T, gp *function, id, cause string) time.Time {
	t.Helper()
	for i := range 3 {
		r := gp.invoke(productEvent(t, v2, id))
		wantProduct(t, r, id, "BYPASS")
		within(t, "getProduct while Redis is faulty", r, faultBound)
		l := gp.requestLine(r.requestID())
		if l.str("cause") != cause || l.str("cache") != "BYPASS" || l["status"] != 200.0 {
			t.Fatalf("call %d: request line %v, want cache BYPASS with cause %s", i, l, cause)
		}
	}
	return time.Now()
}

// wantBreakerOpen invokes getProduct n times right after the breaker opened: each is
// served from the source without touching Redis (the request line says the breaker
// is open), fast.
func wantBreakerOpen(t *testing.T, gp *function, id string, opened time.Time, n int) {
	t.Helper()
	for i := range n {
		r := gp.invoke(productEvent(t, v1, id))
		if time.Since(opened) > breakerCooldown {
			// The breaker lets a probe through after the cooldown: later calls prove
			// nothing. The machine must be very slow for even the first to be late.
			if i == 0 {
				t.Fatalf("the first call after the breaker opened ended %v later, after the cooldown", time.Since(opened))
			}
			t.Logf("breaker checks stopped after %d calls: the cooldown (%v) ran out", i, breakerCooldown)
			return
		}
		wantProduct(t, r, id, "BYPASS")
		within(t, "getProduct with the breaker open", r, fastBound)
		l := gp.requestLine(r.requestID())
		if !strings.Contains(l.str("redisError"), breakerOpenText) {
			t.Fatalf("call %d with the breaker open: request line %v, want redisError %q", i, l, breakerOpenText)
		}
	}
}

// recoverCache invokes getProduct until it stops bypassing, and returns the X-Cache values
// seen.
func recoverCache(t *testing.T, gp *function, id string, within time.Duration) seq {
	t.Helper()
	var got seq
	deadline := time.Now().Add(within)
	for {
		r := gp.invoke(productEvent(t, v2, id))
		if r.Status != 200 {
			t.Fatalf("getProduct during recovery: %d %s", r.Status, r.Body)
		}
		got = append(got, r.cache())
		if r.cache() != "BYPASS" {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("getProduct still bypasses the cache %v after recovery: %v", within, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRedisStoppedThenRestarted: with Redis down, product reads are still served
// (BYPASS) within the budget and, once the breaker opens, without trying Redis; health
// and cacheClear answer 503 with the cause. When Redis comes back on the same address,
// the same processes recover: health 200, MISS then HIT, cacheClear works.
func TestRedisStoppedThenRestarted(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const id = "prod-0002"
	s, gp, hl, cc := warmStack(t, srv, id)

	srv.Stop()
	opened := openBreaker(t, gp, id, "connection_refused")
	wantBreakerOpen(t, gp, id, opened, 3)

	r := hl.invoke(healthEvent(t, v2, ""))
	wantHealthFail(t, r, "connection_refused")
	within(t, "health with Redis stopped", r, faultBound)
	r = cc.invoke(clearEvent(t, v2, s.token, `{"scope":"products"}`))
	wantClearFail(t, r, "connection_refused")
	within(t, "cacheClear with Redis stopped", r, faultBound)

	srv.Restart()
	r = hl.invoke(healthEvent(t, v1, ""))
	if r.Status != 200 || r.json(t)["status"] == "fail" {
		t.Fatalf("health after the restart: %d %s", r.Status, r.Body)
	}
	// The restarted server is empty (nothing persisted): MISS, then HIT.
	got := recoverCache(t, gp, id, 5*breakerCooldown)
	if got[len(got)-1] != "MISS" {
		t.Fatalf("first answer from the cache after the restart: %v, want MISS", got)
	}
	wantProduct(t, gp.invoke(productEvent(t, v2, id)), id, "HIT")
	if !exists(t, srv, s.productKey(id)) {
		t.Fatalf("%s not stored after the restart", s.productKey(id))
	}

	r = cc.invoke(clearEvent(t, v1, s.token, `{"scope":"products"}`))
	if r.Status != 200 || r.json(t)["deleted"] != 1.0 {
		t.Fatalf("cacheClear after the restart: %d %s", r.Status, r.Body)
	}
	if keys := scanKeys(t, srv.Addr(), "", s.prefix+"product:*"); len(keys) != 0 {
		t.Fatalf("keys left after cacheClear: %v", keys)
	}
	wantProduct(t, gp.invoke(productEvent(t, v2, id)), id, "MISS")

	for _, f := range []*function{gp, hl, cc} {
		if n := f.messages("start"); n != 1 || len(f.runtimePIDs()) != 1 {
			t.Errorf("%s: started %d times, runtime processes %v; want one, never restarted", f.name, n, f.runtimePIDs())
		}
		noSecrets(t, f.name+"'s output", f.allOutput(), s.token)
	}
}

// TestUnresponsiveServer: a server that accepts TCP connections and never answers.
// Every function answers within its budget; once the breaker is open getProduct is
// fast and opens no connection.
func TestUnresponsiveServer(t *testing.T) {
	t.Parallel()
	bh := newBlackhole(t)
	s := newStack(t, "redis://"+bh.addr())
	gp, hl, cc := s.start("getproduct"), s.start("health"), s.start("cacheclear")

	const id = "prod-0003"
	opened := openBreaker(t, gp, id, "timeout")
	accepts := bh.accepts.Load()
	if accepts == 0 {
		t.Fatal("the function never connected to the server")
	}
	wantBreakerOpen(t, gp, id, opened, 3)
	if n := bh.accepts.Load(); n != accepts {
		t.Errorf("the server accepted %d connections while the breaker was open", n-accepts)
	}

	r := hl.invoke(healthEvent(t, v2, ""))
	wantHealthFail(t, r, "timeout")
	within(t, "health with an unresponsive Redis", r, faultBound)
	r = cc.invoke(clearEvent(t, v2, s.token, `{"scope":"all"}`))
	wantClearFail(t, r, "timeout")
	within(t, "cacheClear with an unresponsive Redis", r, faultBound)
	// Unauthorized calls never reach Redis: answered at once.
	r = cc.invoke(clearEvent(t, v2, "", `{"scope":"all"}`))
	if r.Status != 401 {
		t.Fatalf("cacheClear without a token: %d", r.Status)
	}
	within(t, "cacheClear without a token", r, fastBound)
}

// TestPausedServer: Redis paused for longer than the read timeout (CLIENT PAUSE ALL,
// or the process stopped with SIGSTOP, whose connections the kernel still accepts)
// behaves as an unresponsive server; when the pause ends the cache serves HITs again
// from the same processes.
func TestPausedServer(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"CLIENT PAUSE", "SIGSTOP"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			const id = "prod-0004"
			s, gp, hl, cc := warmStack(t, srv, id)
			hits := infoInt(t, srv, "keyspace_hits")

			// CLIENT PAUSE must outlast the checks below (about 6 × opTimeout at
			// worst); CLIENT UNPAUSE would itself wait for it to end.
			const pause = 5 * time.Second
			if how == "SIGSTOP" {
				srv.Pause()
			} else {
				srv.MustDo("CLIENT", "PAUSE", strconv.Itoa(int(pause.Milliseconds())), "ALL")
			}
			paused := time.Now()
			opened := openBreaker(t, gp, id, "timeout")
			wantBreakerOpen(t, gp, id, opened, 3)
			r := hl.invoke(healthEvent(t, v2, ""))
			wantHealthFail(t, r, "timeout")
			within(t, "health with Redis paused", r, faultBound)
			r = cc.invoke(clearEvent(t, v2, s.token, `{"scope":"all"}`))
			wantClearFail(t, r, "timeout")
			within(t, "cacheClear with Redis paused", r, faultBound)
			if how == "SIGSTOP" {
				srv.Resume()
			} else {
				if d := time.Since(paused); d >= pause {
					t.Fatalf("the checks took %v, longer than the pause: they may have seen Redis back", d)
				}
				time.Sleep(time.Until(paused.Add(pause)))
			}

			// The server kept its data: the first answer after the pause is a HIT.
			got := recoverCache(t, gp, id, 5*breakerCooldown)
			if got[len(got)-1] != "HIT" {
				t.Fatalf("after the pause: %v, want HIT", got)
			}
			if r := hl.invoke(healthEvent(t, v2, "")); r.Status != 200 {
				t.Fatalf("health after the pause: %d %s", r.Status, r.Body)
			}
			// The GETs that timed out ran when the pause ended, and the HIT.
			if d := infoInt(t, srv, "keyspace_hits") - hits; d < 1 {
				t.Errorf("keyspace_hits grew by %d, want at least 1", d)
			}
		})
	}
}

// TestWrongPassword: health says authentication failed; product reads are served;
// neither the wrong nor the right password appears in any response or log line.
func TestWrongPassword(t *testing.T) {
	t.Parallel()
	password, wrong := "pw-"+randHex(12), "pw-"+randHex(12)
	srv := redistest.Start(t, "--requirepass", password)
	s := newStack(t, "redis://"+srv.Addr(), "REDIS_PASSWORD", wrong)
	hl := s.start("health")
	gp := s.start("getproduct", "REDIS_URL", "redis://:"+wrong+"@"+srv.Addr(), "REDIS_PASSWORD", "")
	hlOK := s.start("health", "REDIS_PASSWORD", password)
	gpOK := s.start("getproduct", "REDIS_PASSWORD", password)

	var responses []response
	r := hl.invoke(healthEvent(t, v2, ""))
	responses = append(responses, r)
	wantHealthFail(t, r, "auth_failed")
	if out := r.json(t)["output"]; !strings.Contains(strings.ToLower(out.(string)), "authentication failed") {
		t.Errorf("health output %q does not say authentication failed", out)
	}
	const id = "prod-0005"
	r = gp.invoke(productEvent(t, v2, id))
	responses = append(responses, r)
	wantProduct(t, r, id, "BYPASS")
	if c := gp.requestLine(r.requestID()).str("cause"); c != "auth_failed" {
		t.Errorf("getProduct cause %q, want auth_failed", c)
	}

	// The server itself is fine with the right password.
	r = hlOK.invoke(healthEvent(t, v1, ""))
	responses = append(responses, r)
	if r.Status != 200 {
		t.Fatalf("health with the right password: %d %s", r.Status, r.Body)
	}
	for _, want := range []string{"MISS", "HIT"} {
		r := gpOK.invoke(productEvent(t, v2, id))
		responses = append(responses, r)
		wantProduct(t, r, id, want)
	}

	for _, r := range responses {
		noSecrets(t, "a response", r.Raw, password, wrong)
	}
	for _, f := range []*function{hl, gp, hlOK, gpOK} {
		noSecrets(t, f.name+"'s output", f.allOutput(), password, wrong)
	}
}

// TestOutOfMemory: a Redis that refuses writes (maxmemory reached, noeviction) still
// serves what it has; new products are served from the source (MISS, never a 5xx and
// never a breaker trip: an OOM reply is not a fault) and the failed write is logged.
func TestOutOfMemory(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--maxmemory", "1mb", "--maxmemory-policy", "noeviction")
	s := newStack(t, "redis://"+srv.Addr())
	gp, hl := s.start("getproduct"), s.start("health")

	const cached, fresh = "prod-0006", "prod-0007"
	wantProduct(t, gp.invoke(productEvent(t, v2, cached)), cached, "MISS")
	fill(t, srv.Addr())

	wantProduct(t, gp.invoke(productEvent(t, v2, cached)), cached, "HIT")
	// More calls than REDIS_BREAKER_FAILURES: still MISS, never BYPASS.
	for i := range 4 {
		r := gp.invoke(productEvent(t, v2, fresh))
		wantProduct(t, r, fresh, "MISS")
		l := gp.requestLine(r.requestID())
		if l.str("storeError") != "out_of_memory" || l.str("cause") != "" {
			t.Fatalf("call %d: request line %v, want storeError out_of_memory and no cause", i, l)
		}
	}
	if exists(t, srv, s.productKey(fresh)) {
		t.Fatal("a product was stored although Redis is out of memory")
	}
	wantProduct(t, gp.invoke(productEvent(t, v1, cached)), cached, "HIT")

	r := hl.invoke(healthEvent(t, v2, ""))
	b := r.json(t)
	mem := checkOf(b, "redis:memory")
	if r.Status != 200 || mem == nil || mem["status"] != "warn" || b["status"] != "warn" {
		t.Fatalf("health with Redis full: %d %s, want 200 with redis:memory warn", r.Status, r.Body)
	}
}

// fill writes junk to the server at addr until it refuses with OOM.
func fill(tb testing.TB, addr string) {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, Protocol: 2})
	defer c.Close()
	ctx := context.Background()
	junk := strings.Repeat("x", 4096)
	for i := range 10_000 {
		cmds, _ := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j := range 16 {
				p.Set(ctx, "junk:"+randHex(4)+":"+string(rune('a'+j)), junk, 0)
			}
			return nil
		})
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool {
			var rerr redis.Error
			return errors.As(c.Err(), &rerr) && strings.HasPrefix(rerr.Error(), "OOM")
		}) {
			return
		}
		if i == 9_999 {
			tb.Fatal("Redis never ran out of memory")
		}
	}
}

// warmStack starts the three functions against srv, caches product id (MISS, then
// HIT) and checks health answers 200: the state the fault scenarios start from.
func warmStack(t *testing.T, srv *redistest.Server, id string) (s *stack, gp, hl, cc *function) {
	t.Helper()
	s = newStack(t, "redis://"+srv.Addr())
	gp, hl, cc = s.start("getproduct"), s.start("health"), s.start("cacheclear")
	wantProduct(t, gp.invoke(productEvent(t, v2, id)), id, "MISS")
	wantProduct(t, gp.invoke(productEvent(t, v2, id)), id, "HIT")
	if r := hl.invoke(healthEvent(t, v2, "")); r.Status != 200 {
		t.Fatalf("health with Redis up: %d %s", r.Status, r.Body)
	}
	return s, gp, hl, cc
}
