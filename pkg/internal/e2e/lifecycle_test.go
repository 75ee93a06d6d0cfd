package e2e

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
)

// TestShutdownClosesClient: stopping the emulator sends SIGTERM to the runtime (the
// functions start with lambda.WithEnableSIGTERM), which closes the Redis client
// cleanly: the server sees the connection close before the emulator's SIGKILL, and
// the log says so.
func TestShutdownClosesClient(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStack(t, "redis://"+srv.Addr())
	gp := s.start("getproduct")
	const id = "prod-0009"
	wantProduct(t, gp.invoke(productEvent(t, v2, id)), id, "MISS")
	wantProduct(t, gp.invoke(productEvent(t, v2, id)), id, "HIT")
	waitClients(t, srv, 1, time.Second)

	sent := time.Now()
	if err := gp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The emulator gives the runtime its deadline, then SIGKILLs it (which would close
	// the socket too): the connection must be gone before that.
	var closedAt time.Duration
	eventually(t, 5*time.Second, 5*time.Millisecond, "the connection to close", func() bool {
		if len(clientIDs(t, srv)) == 0 {
			closedAt = time.Since(sent)
			return true
		}
		return false
	})
	killedBefore := strings.Contains(gp.stderr(), "Sending SIGKILL")
	gp.stop()
	if killedBefore {
		t.Fatalf("the connection closed only after the emulator killed the runtime (%v after SIGTERM)", closedAt)
	}
	t.Logf("connection closed %v after SIGTERM", closedAt.Round(time.Millisecond))

	var order []string
	for _, l := range gp.logs() {
		if m := l.str("message"); m == "shutdown" || m == "redis client closed" || m == "shutdown hook failed" {
			order = append(order, m)
		}
	}
	if strings.Join(order, ",") != "shutdown,redis client closed" {
		t.Fatalf("shutdown log lines %q, want shutdown then redis client closed", order)
	}
}

// TestAppFiguresAcrossEnvironments: two getProduct environments (emulator processes)
// serve a mix of MISS and HIT; their figures reach Redis when they are stopped (SIGTERM
// flushes what is pending), and health, in a third process, reports the application's
// figures, consistent with every invocation, to a caller with the health token only.
func TestAppFiguresAcrossEnvironments(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	healthToken := "health-" + randHex(12)
	s := newStack(t, "redis://"+srv.Addr(), "STAGE", "prod", "HEALTH_TOKEN", healthToken)
	a, b := s.start("getproduct"), s.start("getproduct")

	type call struct {
		f    *function
		id   string
		want string
	}
	plan := []call{
		{a, "prod-0011", "MISS"}, {a, "prod-0011", "HIT"}, {a, "prod-0012", "MISS"}, {a, "prod-0011", "HIT"},
		{a, "prod-0013", "MISS"}, {a, "prod-0012", "HIT"}, {a, "prod-0012", "HIT"},
		// The second environment shares the cache: what the first stored is a HIT here.
		{b, "prod-0011", "HIT"}, {b, "prod-0014", "MISS"}, {b, "prod-0014", "HIT"}, {b, "prod-0011", "HIT"},
		{b, "prod-0014", "HIT"},
	}
	var hits, misses int
	for i, c := range plan {
		v := v2
		if i%3 == 2 {
			v = v1
		}
		wantProduct(t, c.f.invoke(productEvent(t, v, c.id)), c.id, c.want)
		if c.want == "HIT" {
			hits++
		} else {
			misses++
		}
	}
	tally := api.TallyKey(s.prefix)
	// Fewer outcomes than a batch, in less than its interval: nothing written yet.
	if exists(t, srv, tally) {
		t.Fatalf("the figures were written before the environments stopped: %s", srv.MustDo("HGETALL", tally))
	}
	a.stop()
	b.stop()
	want := "hits\n" + strconv.Itoa(hits) + "\nmisses\n" + strconv.Itoa(misses)
	if got := srv.MustDo("HGETALL", tally); got != want && got != "misses\n"+strconv.Itoa(misses)+"\nhits\n"+strconv.Itoa(hits) {
		t.Fatalf("HGETALL %s = %q, want hits %d and misses %d", tally, got, hits, misses)
	}

	hl := s.start("health")
	r := hl.invoke(healthEvent(t, v2, healthToken))
	c := checkOf(r.json(t), "app:productCache")
	if r.Status != 200 || c == nil {
		t.Fatalf("health with the token: %d %s, want app:productCache", r.Status, r.Body)
	}
	d, _ := c["details"].(map[string]any)
	if d["hits"] != float64(hits) || d["misses"] != float64(misses) || d["bypasses"] != 0.0 || d["scope"] != "all environments" {
		t.Fatalf("app:productCache details %v, want hits %d misses %d bypasses 0 (%d invocations)", d, hits, misses, len(plan))
	}
	if ratio, _ := c["observedValue"].(float64); ratio < float64(hits)/float64(len(plan))-0.001 || ratio > float64(hits)/float64(len(plan))+0.001 {
		t.Errorf("hit ratio %v, want %d/%d", c["observedValue"], hits, len(plan))
	}
	for _, token := range []string{"", "wrong-" + randHex(4)} {
		r := hl.invoke(healthEvent(t, v1, token))
		body := r.json(t)
		if r.Status != 200 || checkOf(body, "app:productCache") != nil || checkOf(body, "redis:server") != nil || body["description"] != nil {
			t.Fatalf("health without the token in prod shows details: %d %s", r.Status, r.Body)
		}
	}
	noSecrets(t, "the health response", r.Raw, healthToken)
	for _, f := range []*function{a, b, hl} {
		noSecrets(t, f.name+"'s output", f.allOutput(), healthToken)
	}

	// The figures are not cache entries: "scope: all" removes the four products'
	// entries, counts those alone, and leaves the figures as they were.
	cc := s.start("cacheclear", "CACHE_CLEAR_ENABLED", "true")
	r = cc.invoke(clearEvent(t, v2, s.token, `{"scope":"all"}`))
	if r.Status != 200 || r.json(t)["deleted"] != 4.0 {
		t.Fatalf("cacheClear scope all: %d %s, want 200 and deleted 4 (the products' entries)", r.Status, r.Body)
	}
	if got := srv.MustDo("HGETALL", tally); got != want && got != "misses\n"+strconv.Itoa(misses)+"\nhits\n"+strconv.Itoa(hits) {
		t.Fatalf("after scope all, HGETALL %s = %q, want hits %d and misses %d", tally, got, hits, misses)
	}
}
