package cache_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// l1Bound is the staleness bound of the tests' tiers: short, so that waiting it out
// costs little.
const l1Bound = 20 * time.Millisecond

// l1Service is a Service with the in-process tier on, built as production builds it
// (app.New with CACHE_L1=on), on the Redis at addr.
func l1Service(tb testing.TB, addr, prefix string, mode config.Mode, extra map[string]string) (*cache.Service, *cache.L1) {
	tb.Helper()
	env := map[string]string{"CACHE_L1": "on", "CACHE_L1_MAX_STALENESS": l1Bound.String(), "CACHE_TTL_JITTER": "0"}
	for k, v := range extra {
		env[k] = v
	}
	svc, _ := itService(tb, itConfig(tb, addr, prefix, mode, env))
	if svc.L1() == nil {
		tb.Fatal("CACHE_L1=on built no tier")
	}
	return svc, svc.L1()
}

// l1Read reads key through GetOrSet; a fetch (which should not happen where the key
// is in Redis) returns "fetched".
func l1Read(tb testing.TB, svc *cache.Service, key string) (string, cache.Result) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, res, err := svc.GetOrSet(ctx, key, time.Minute, func(context.Context) (string, error) { return "fetched", nil })
	if err != nil {
		tb.Fatalf("GetOrSet %s: %v", key, err)
	}
	return v, res
}

// l1Warm reads key until the tier serves it, and returns the value. A read that finds
// no recent barrier goes to Redis and starts one, so on a loaded machine the first
// reads may all be L2: it keeps reading, a millisecond apart, for up to 5 s.
func l1Warm(tb testing.TB, svc *cache.Service, key string) string {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n := 1; ; n++ {
		v, res := l1Read(tb, svc, key)
		if res.Outcome == cache.Hit && res.Tier == cache.TierL1 {
			return v
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: %d reads in 5s and none served from L1", key, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func l1Cmdstat(tb testing.TB, srv *redistest.Server, cmd string) int {
	tb.Helper()
	line := redistest.InfoField(srv.MustDo("INFO", "commandstats"), "cmdstat_"+cmd)
	calls, _, _ := strings.Cut(strings.TrimPrefix(line, "calls="), ",")
	n, _ := strconv.Atoi(calls)
	return n
}

// TestL1HitsMakeNoRoundTrip: once a key is in the tier, reads of it are hits served
// from memory, and the server sees no GET for them (its own command counts say so).
func TestL1HitsMakeNoRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	svc, l1 := l1Service(t, srv.Addr(), redistest.Prefix(t), config.ModeHTTP, nil)
	raw := itRaw(t, srv.Addr(), "")
	if err := raw.Set(context.Background(), svc.Key("p:1"), cache.NewEntry("one", time.Now().Add(time.Hour)), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if v := l1Warm(t, svc, "p:1"); v != "one" {
		t.Fatalf("got %q, want one", v)
	}
	gets := l1Cmdstat(t, srv, "get")
	const n = 1000
	l1hits := 0
	for range n {
		v, res := l1Read(t, svc, "p:1")
		if v != "one" || res.Outcome != cache.Hit {
			t.Fatalf("got %q %v, want a hit of one", v, res.Outcome)
		}
		if res.Tier == cache.TierL1 {
			l1hits++
		}
	}
	extra := l1Cmdstat(t, srv, "get") - gets
	t.Logf("%d reads: %d from L1, %d GETs reached the server; tier: %+v", n, l1hits, extra, l1.Stats())
	// Unloaded, all but a few are; on a loaded machine barriers slow down and reads
	// with none recent go to Redis (counted by the check below).
	if l1hits < n/2 {
		t.Errorf("only %d of %d reads were L1 hits", l1hits, n)
	}
	if extra > n-l1hits {
		t.Errorf("%d GETs reached the server for %d reads not served from L1", extra, n-l1hits)
	}
	if s := svc.Stats(); s.L1Hits < int64(l1hits) {
		t.Errorf("Stats.L1Hits = %d, want at least %d", s.L1Hits, l1hits)
	}
	if s := l1.Stats(); !s.On || s.Entries < 1 || s.Bytes <= 0 || s.Hits < uint64(l1hits) {
		t.Errorf("tier stats %+v: want on, an entry, its bytes and the hits", s)
	}
}

// l1External changes key behind the Service's back, as another service would.
func l1External(tb testing.TB, raw *redis.Client, fullKey, v string) {
	tb.Helper()
	// As a fill stores it: an entry, fresh for an hour.
	if err := raw.Set(context.Background(), fullKey, cache.NewEntry(v, time.Now().Add(time.Hour)), time.Minute).Err(); err != nil {
		tb.Fatalf("SET %s: %v", fullKey, err)
	}
}

// TestL1ExternalWriteWithinBound: a key held in the tier is changed by another
// client; a read that starts the bound after the write returned gets the new value,
// every time. Reads at once may be stale (within the bound): they are counted.
func TestL1ExternalWriteWithinBound(t *testing.T) {
	srv := redistest.Start(t)
	svc, l1 := l1Service(t, srv.Addr(), redistest.Prefix(t), config.ModeHTTP, nil)
	raw := itRaw(t, srv.Addr(), "")
	const trials = 200
	stale := 0
	l1External(t, raw, svc.Key("p:1"), "v0")
	for i := 1; i <= trials; i++ {
		l1Warm(t, svc, "p:1")
		want := "v" + strconv.Itoa(i)
		l1External(t, raw, svc.Key("p:1"), want)
		if v, _ := l1Read(t, svc, "p:1"); v != want {
			stale++
		}
		time.Sleep(l1Bound)
		if v, res := l1Read(t, svc, "p:1"); v != want {
			t.Fatalf("trial %d: a read %v after the write returned got %q (%v from %v), want %q", i, l1Bound, v, res.Outcome, res.Tier, want)
		}
	}
	t.Logf("%d trials: %d reads at once after the write were stale (allowed: within the %v bound); 0 after the bound; tier: %+v",
		trials, stale, l1Bound, l1.Stats())
}

// TestL1StrictNeverStale: with a barrier before every read (the Lambda setting), a
// read that starts after an external write returned never gets the old value, even at
// once, while reads with no write in between are still served from memory.
func TestL1StrictNeverStale(t *testing.T) {
	srv := redistest.Start(t)
	svc, l1 := l1Service(t, srv.Addr(), redistest.Prefix(t), config.ModeLambda, nil)
	raw := itRaw(t, srv.Addr(), "")
	const trials = 300
	l1External(t, raw, svc.Key("p:1"), "v0")
	for i := 1; i <= trials; i++ {
		l1Warm(t, svc, "p:1")
		want := "v" + strconv.Itoa(i)
		l1External(t, raw, svc.Key("p:1"), want)
		if v, res := l1Read(t, svc, "p:1"); v != want {
			t.Fatalf("trial %d: a read at once after the write got %q (%v from %v), want %q", i, v, res.Outcome, res.Tier, want)
		}
	}
	s := l1.Stats()
	t.Logf("%d trials, 0 stale; tier: %+v", trials, s)
	if s.Hits < trials {
		t.Errorf("only %d L1 hits in %d trials: the tier was not exercised", s.Hits, trials)
	}
}

// l1TrackingClientID finds the id of the one connection with tracking on.
func l1TrackingClientID(tb testing.TB, srv *redistest.Server) string {
	tb.Helper()
	ids := redistest.TrackingClients(srv.MustDo("CLIENT", "LIST"))
	if len(ids) != 1 {
		tb.Fatalf("want exactly one tracking connection, found %d: %v", len(ids), ids)
	}
	return ids[0]
}

// TestL1TrackingConnectionKilled: the server kills the tracking connection and the
// key changes (the dead connection never hears of it): no read after the bound gets
// the old value, the connection's entries are dropped, and the tier serves again.
func TestL1TrackingConnectionKilled(t *testing.T) {
	srv := redistest.Start(t)
	svc, l1 := l1Service(t, srv.Addr(), redistest.Prefix(t), config.ModeHTTP, nil)
	raw := itRaw(t, srv.Addr(), "")
	for i := 1; i <= 20; i++ {
		l1External(t, raw, svc.Key("p:1"), "old"+strconv.Itoa(i))
		l1Warm(t, svc, "p:1")
		srv.MustDo("CLIENT", "KILL", "ID", l1TrackingClientID(t, srv))
		want := "new" + strconv.Itoa(i)
		l1External(t, raw, svc.Key("p:1"), want)
		time.Sleep(l1Bound)
		if v, res := l1Read(t, svc, "p:1"); v != want {
			t.Fatalf("round %d: after CLIENT KILL and a write, a read %v later got %q (%v %v)", i, l1Bound, v, res.Outcome, res.Tier)
		}
		if v := l1Warm(t, svc, "p:1"); v != want {
			t.Fatalf("round %d: L1 serves %q, want %q", i, v, want)
		}
	}
	s := l1.Stats()
	t.Logf("tier after 20 kills: %+v", s)
	if s.ConnEvictions == 0 {
		t.Error("no entry was dropped with its killed connection")
	}
}

// TestL1RedisRestarted: Redis restarts (empty) and the key is written anew: no read
// after the bound gets the value from before the restart, and the tier recovers.
func TestL1RedisRestarted(t *testing.T) {
	srv := redistest.Start(t)
	svc, l1 := l1Service(t, srv.Addr(), redistest.Prefix(t), config.ModeHTTP, nil)
	raw := itRaw(t, srv.Addr(), "")
	l1External(t, raw, svc.Key("p:1"), "before")
	l1Warm(t, svc, "p:1")
	srv.Kill()
	srv.Restart()
	l1External(t, raw, svc.Key("p:1"), "after")
	time.Sleep(l1Bound)
	for range 5 {
		// The first reads may find the old connection dead and bypass; none may be old.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, res, err := svc.GetOrSet(ctx, "p:1", time.Minute, func(context.Context) (string, error) { return "fetched", nil })
		cancel()
		if err != nil || v == "before" {
			t.Fatalf("after a restart: %q %v %v (%v)", v, res.Outcome, res.Tier, err)
		}
	}
	if v := l1Warm(t, svc, "p:1"); v != "after" {
		t.Fatalf("L1 serves %q, want after", v)
	}
	t.Logf("tier: %+v", l1.Stats())
}

// TestL1ServerRefusesTracking: a server without CLIENT (renamed away, as some managed
// services restrict it) gets L2 only: right values, no L1 hit, and the tier says why.
func TestL1ServerRefusesTracking(t *testing.T) {
	srv := redistest.Start(t, "--rename-command", "CLIENT", "")
	svc, l1 := l1Service(t, srv.Addr(), redistest.Prefix(t), config.ModeHTTP, nil)
	raw := itRaw(t, srv.Addr(), "")
	l1External(t, raw, svc.Key("p:1"), "one")
	for i := range 50 {
		v, res := l1Read(t, svc, "p:1")
		// Reads go to Redis; once the tier has learnt that it is off (from its first
		// barrier, which the first read starts), they name no tier.
		if v != "one" || res.Outcome != cache.Hit || res.Tier == cache.TierL1 || (i >= 10 && res.Tier != 0) {
			t.Fatalf("read %d: got %q %v %v, want a hit of one from Redis (no tier named after the first reads)", i, v, res.Outcome, res.Tier)
		}
		if i == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	on, why := l1.State()
	if on || !strings.Contains(why, "refused") {
		t.Errorf("tier state: on=%v %q, want off with the refusal", on, why)
	}
	if n := svc.Stats().L1Hits; n != 0 {
		t.Errorf("%d L1 hits from a server without tracking", n)
	}
}

// TestL1NoBarrierNoHit: while the server does not answer (SIGSTOP), no barrier can
// complete, so once the bound has passed the tier serves nothing: reads fall back
// (bypass to the source) instead of serving what memory holds.
func TestL1NoBarrierNoHit(t *testing.T) {
	srv := redistest.Start(t)
	svc, l1 := l1Service(t, srv.Addr(), redistest.Prefix(t), config.ModeHTTP, map[string]string{"REDIS_READ_TIMEOUT": "100ms"})
	raw := itRaw(t, srv.Addr(), "")
	l1External(t, raw, svc.Key("p:1"), "one")
	l1Warm(t, svc, "p:1")
	srv.Pause()
	defer srv.Resume()
	time.Sleep(l1Bound)
	for range 3 {
		_, res := l1Read(t, svc, "p:1")
		if res.Tier == cache.TierL1 {
			t.Fatalf("served from L1 while no barrier could complete: %+v", res)
		}
	}
	if s := l1.Stats(); s.BarrierFails == 0 && s.Refused == 0 {
		t.Errorf("no failed barrier or refused lookup counted: %+v", s)
	}
}

// TestL1ReadsDoNotQueueForBarriers: in the HTTP setting a crowd of reads that find no
// recent barrier start at most one between them, and none waits in line for the one
// tracking connection: while the server is paused, twenty reads, one every 2 ms, add
// a barrier or two (the ticker's, and at most one started by a read), not one each.
func TestL1ReadsDoNotQueueForBarriers(t *testing.T) {
	srv := redistest.Start(t)
	svc, l1 := l1Service(t, srv.Addr(), redistest.Prefix(t), config.ModeHTTP,
		map[string]string{"REDIS_READ_TIMEOUT": "200ms", "REDIS_BREAKER_FAILURES": "1000"})
	raw := itRaw(t, srv.Addr(), "")
	l1External(t, raw, svc.Key("p:1"), "one")
	l1Warm(t, svc, "p:1")
	srv.Pause()
	time.Sleep(2 * l1Bound)
	before := l1.Stats()
	const readers = 20
	done := make(chan cache.Result, readers)
	for range readers {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, res, _ := svc.GetOrSet(ctx, "p:1", time.Minute, func(context.Context) (string, error) { return "fetched", nil })
			done <- res
		}()
		time.Sleep(2 * time.Millisecond)
	}
	srv.Resume()
	for range readers {
		if res := <-done; res.Tier == cache.TierL1 {
			t.Errorf("a read that found no recent barrier waited for one and was served from L1: %+v", res)
		}
	}
	l1.Close()
	after := l1.Stats()
	n := after.Barriers - before.Barriers
	t.Logf("%d reads while the server was paused: %d barriers (%d failed)", readers, n, after.BarrierFails-before.BarrierFails)
	if n > 4 {
		t.Errorf("%d barriers for %d reads: reads queued barriers of their own on the tracking connection", n, readers)
	}
}
