package e2e

import (
	"slices"
	"strconv"
	"testing"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
)

// TestLazyConnectAndWarmReuse: the function connects on the first request that needs
// Redis (not at start-up), then every warm invocation reuses the same connection;
// connections the server killed between invocations (as after a long freeze) cost a
// reconnect, never a miss.
func TestLazyConnectAndWarmReuse(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStack(t, "redis://"+srv.Addr())
	gp := s.start("getproduct")

	if ids := clientIDs(t, srv); len(ids) != 0 {
		t.Fatalf("clients before any invocation: %v", ids)
	}
	// The first invocation starts the runtime (INIT and the handler run) but needs no
	// Redis: a bad id is refused before any cache call. Still no connection.
	r := gp.invoke(productEvent(t, v2, "not an id!"))
	if r.Status != 400 || r.cache() != "" {
		t.Fatalf("bad id: %d X-Cache %q: %s", r.Status, r.cache(), r.Body)
	}
	if ids := clientIDs(t, srv); len(ids) != 0 {
		t.Fatalf("the started function holds connections before it needs Redis: %v", ids)
	}

	const id = "prod-0001"
	wantProduct(t, gp.invoke(productEvent(t, v2, id)), id, "MISS")
	conns := clientIDs(t, srv)
	if len(conns) != 1 {
		t.Fatalf("after the first cache call the server has %d clients %v, want 1", len(conns), conns)
	}
	if !exists(t, srv, s.productKey(id)) {
		t.Fatalf("the MISS did not store %s", s.productKey(id))
	}
	if ttl, _ := strconv.Atoi(srv.MustDo("PTTL", s.productKey(id))); ttl <= 0 {
		t.Fatalf("the stored product has no TTL (PTTL %d)", ttl)
	}

	hits := infoInt(t, srv, "keyspace_hits")
	received := infoInt(t, srv, "total_connections_received")
	var got seq
	for i := range 100 {
		v := v2
		if i%2 == 1 {
			v = v1
		}
		r := gp.invoke(productEvent(t, v, id))
		got = append(got, r.cache())
		if r.Status != 200 || r.cache() != "HIT" {
			t.Fatalf("warm invocation %d (%v): %d X-Cache %q; so far %v", i, v, r.Status, r.cache(), got)
		}
		if i%25 == 24 {
			if now := clientIDs(t, srv); !slices.Equal(now, conns) {
				t.Fatalf("after %d warm invocations the clients are %v, were %v", i+1, now, conns)
			}
		}
	}
	// Every warm invocation was one GET that hit, on the same connection: the only
	// connections the server received meanwhile are this test's own probes, each on a
	// fresh connection (4 CLIENT LIST in the loop and the 2 INFO here).
	if d := infoInt(t, srv, "keyspace_hits") - hits; d != 100 {
		t.Errorf("keyspace_hits grew by %d over 100 HITs, want 100", d)
	}
	if d := infoInt(t, srv, "total_connections_received") - received; d != 4+2 {
		t.Errorf("the server received %d connections during 100 warm invocations, want only the test's 6 probes", d)
	}
	pids := gp.runtimePIDs()
	if len(pids) != 1 {
		t.Fatalf("runtime processes %v, want one", pids)
	}

	t.Run("connections killed between invocations", func(t *testing.T) {
		for round := range 3 {
			killed, _ := strconv.Atoi(srv.MustDo("CLIENT", "KILL", "TYPE", "normal"))
			if killed < 1 {
				t.Fatalf("round %d: CLIENT KILL killed %d clients", round, killed)
			}
			r := gp.invoke(productEvent(t, v2, id))
			wantProduct(t, r, id, "HIT")
			within(t, "a HIT over a fresh connection", r, opTimeout)
			now := clientIDs(t, srv)
			if len(now) != 1 || slices.Equal(now, conns) {
				t.Fatalf("round %d: clients %v, want one new connection (old %v)", round, now, conns)
			}
			conns = now
		}
		if now := gp.runtimePIDs(); !slices.Equal(now, pids) {
			t.Fatalf("the runtime was restarted: %v, was %v", now, pids)
		}
	})

	lines := gp.requestLines()
	if len(lines) != 1+1+100+3 {
		t.Errorf("%d request lines, want %d", len(lines), 105)
	}
	for i, l := range lines {
		if cold := l["coldStart"] == true; cold != (i == 0) {
			t.Errorf("request line %d: coldStart %v", i, l["coldStart"])
		}
	}
	if n := gp.messages("start"); n != 1 {
		t.Errorf("the runtime started %d times, want once", n)
	}
}
