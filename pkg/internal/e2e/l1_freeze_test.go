package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/redis/go-redis/v9"
)

// The trials of TestL1FrozenUnderEmulator.
const (
	freezeTrials = 200 // the key changed while the runtime is frozen
	killTrials   = 50  // the same, with the tracking connection killed too
)

// revName is the product name that carries revision rev; revOf reads it back.
func revName(rev int64) string { return "rev-" + strconv.FormatInt(rev, 10) }

func revOf(body string) (int64, bool) {
	var p struct{ Name string }
	if json.Unmarshal([]byte(body), &p) != nil {
		return 0, false
	}
	s, ok := strings.CutPrefix(p.Name, "rev-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// revSource is a product source over HTTP (as productServer) whose products are named
// after the revision it holds now: the source of truth the test changes.
type revSource struct {
	srv *httptest.Server
	cat *product.Catalog
	rev atomic.Int64
}

func newRevSource(tb testing.TB) *revSource {
	tb.Helper()
	cat, err := product.NewCatalog(0)
	if err != nil {
		tb.Fatal(err)
	}
	s := &revSource{cat: cat}
	s.srv = serveProducts(tb, func(ctx context.Context, id string) (product.Product, error) {
		return s.product(ctx, id, s.rev.Load())
	})
	return s
}

// product is the catalog's product id at revision rev.
func (s *revSource) product(ctx context.Context, id string, rev int64) (product.Product, error) {
	p, err := s.cat.Product(ctx, id)
	p.Name = revName(rev)
	return p, err
}

// l1Trial is one answer of the function: which revision it had to carry at least
// (the last change made before the invocation was sent) and which it carried.
type l1Trial struct {
	trial  int
	kind   string // how the key changed while the runtime was frozen
	phase  string // "thawed": the first invocation after SIGCONT; "warm": bringing it back into L1
	want   int64
	got    int64 // -1: no revision in the body
	status int
	cache  string
	tier   string
}

func (r l1Trial) stale() bool { return r.status != 200 || r.got != r.want }

func (r l1Trial) String() string {
	return fmt.Sprintf("trial %d %s %s: want rev %d, got %d (%d X-Cache %q X-Cache-Tier %q)",
		r.trial, r.kind, r.phase, r.want, r.got, r.status, r.cache, r.tier)
}

// frozenRun drives one getProduct environment under the emulator through the trials
// and keeps every answer.
type frozenRun struct {
	t     *testing.T
	gp    *function
	pid   int
	id    string
	key   string // the product's key, without the prefix
	src   *revSource
	rc    *redis.Client  // another client of the server: changes and CLIENT commands
	other *cache.Service // another environment's cache, on rc, with the same prefix
	rev   int64          // the revision the source and any new entry carry now
	log   []l1Trial
}

// read invokes getProduct once and records the answer against the current revision.
func (fr *frozenRun) read(trial int, kind, phase string) l1Trial {
	fr.t.Helper()
	want := fr.rev
	r := fr.gp.invoke(productEvent(fr.t, v2, fr.id))
	got, ok := revOf(r.Body)
	if !ok {
		got = -1
	}
	rec := l1Trial{trial: trial, kind: kind, phase: phase, want: want, got: got,
		status: r.Status, cache: r.cache(), tier: r.Header.Get("X-Cache-Tier")}
	fr.log = append(fr.log, rec)
	return rec
}

// warm invokes getProduct until an answer comes from L1: the product is then in the
// runtime's memory, about to be frozen there.
func (fr *frozenRun) warm(trial int) {
	fr.t.Helper()
	var seen seq
	for range 5 {
		r := fr.read(trial, "-", "warm")
		seen = append(seen, r.cache+"/"+r.tier)
		if r.cache == "HIT" && r.tier == "L1" {
			return
		}
	}
	fr.t.Fatalf("trial %d: the product never came from L1: %v", trial, seen)
}

// change moves the product to a new revision while the runtime is frozen: the source
// first, as a change starts there, then the cache entry. kind "write": another
// environment invalidates the entry and fills it again with the new product, through
// the cache package as getProduct does (GetOrSetRawJSON); the function must then
// read that entry from Redis. kind "del": the entry is deleted; the function must
// refill it from the source.
func (fr *frozenRun) change(kind string) {
	fr.t.Helper()
	ctx := context.Background()
	fr.rev++
	rev := fr.rev
	fr.src.rev.Store(rev)
	switch kind {
	case "write":
		if _, err := fr.other.Invalidate(ctx, fr.key); err != nil {
			fr.t.Fatalf("invalidate: %v", err)
		}
		v, res, err := cache.GetOrSetRawJSON(ctx, fr.other, fr.key, 10*time.Minute, func(ctx context.Context) (product.Product, error) {
			return fr.src.product(ctx, fr.id, rev)
		})
		if got, _ := revOf(v); err != nil || res.Outcome != cache.Miss || got != rev {
			fr.t.Fatalf("another environment's fill: %v, %v, rev %d: %.200s", err, res.Outcome, got, v)
		}
	case "del":
		if n, err := fr.rc.Del(ctx, fr.other.Key(fr.key)).Result(); err != nil || n != 1 {
			fr.t.Fatalf("DEL %s: %d, %v", fr.other.Key(fr.key), n, err)
		}
	default:
		fr.t.Fatalf("unknown change %q", kind)
	}
}

// trackingIDs are the ids of the server's connections with tracking on (flag t in
// CLIENT LIST): the runtime's tracking connection, when it has one open.
func (fr *frozenRun) trackingIDs() []string {
	fr.t.Helper()
	out, err := fr.rc.ClientList(context.Background()).Result()
	if err != nil {
		fr.t.Fatal(err)
	}
	return redistest.TrackingClients(out)
}

// kill closes the runtime's tracking connection on the server side, and returns its
// id. Where there is not exactly one tracking connection to kill, the test fails and
// goes on with the trial unkilled (so that its answers are still counted).
func (fr *frozenRun) kill(trial int) string {
	fr.t.Helper()
	ids := fr.trackingIDs()
	if len(ids) != 1 {
		fr.t.Errorf("trial %d: %d tracking connections %v, want one to kill", trial, len(ids), ids)
		return ""
	}
	n, err := fr.rc.Do(context.Background(), "CLIENT", "KILL", "ID", ids[0]).Int()
	if err != nil || n != 1 {
		fr.t.Fatalf("CLIENT KILL ID %s: %d, %v", ids[0], n, err)
	}
	return ids[0]
}

// freeze stops the runtime with SIGSTOP, as Lambda freezes an environment between
// invocations, and waits until every thread of it is stopped.
func (fr *frozenRun) freeze() {
	fr.t.Helper()
	if err := syscall.Kill(fr.pid, syscall.SIGSTOP); err != nil {
		fr.t.Fatalf("SIGSTOP %d: %v", fr.pid, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !allStopped(fr.pid) {
		if time.Now().After(deadline) {
			fr.t.Fatalf("runtime %d: not stopped 5s after SIGSTOP", fr.pid)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (fr *frozenRun) thaw() {
	fr.t.Helper()
	if err := syscall.Kill(fr.pid, syscall.SIGCONT); err != nil {
		fr.t.Fatalf("SIGCONT %d: %v", fr.pid, err)
	}
}

// allStopped reports whether every thread of pid is in state T (stopped).
func allStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(fmt.Sprintf("/proc/%d/task", pid), task.Name(), "stat"))
		if err != nil {
			return false
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// trial is one freeze: the product in L1, the runtime frozen, the key changed (and,
// with killWhen "before" or "after" the change, the tracking connection killed),
// the runtime continued and invoked at once. It returns the id of the connection it
// killed, if any.
func (fr *frozenRun) trial(n int, kind, killWhen string) (killed string) {
	fr.t.Helper()
	fr.warm(n)
	label := kind
	fr.freeze()
	if killWhen == "before" {
		killed = fr.kill(n)
		label = "kill+" + label
	}
	fr.change(kind)
	if killWhen == "after" {
		killed = fr.kill(n)
		label += "+kill"
	}
	fr.thaw()
	fr.read(n, label, "thawed")
	return killed
}

// TestL1FrozenUnderEmulator: the real getProduct bootstrap under aws-lambda-rie, with
// CACHE_L1=on (the tier's Lambda setting: a barrier before every read). Each trial
// brings the product into the runtime's L1 (an answer from L1), freezes the runtime
// with SIGSTOP as Lambda freezes an environment, changes the product while it is
// frozen (another environment's new entry, or a DEL with the source changed), sends
// SIGCONT and invokes at once: the answer must carry the new revision. Then the same
// with the tracking connection killed (CLIENT KILL) while frozen, before or after the
// change; the tier must serve from L1 again afterwards. Every answer is recorded, the
// warm-up ones too, and checked against the revision of the last change made before
// it was asked for.
//
// Only the runtime (the bootstrap, the emulator's child) is stopped: it is the
// function, the process whose memory holds L1 and whose goroutines (go-redis's
// invalidation drainer among them) Lambda's freeze stops. The emulator stands for
// Lambda's own service, which is not frozen and must stay up to take the invocation
// that thaws the environment.
func TestL1FrozenUnderEmulator(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	src := newRevSource(t)
	src.rev.Store(1)
	s := newStack(t, "redis://"+srv.Addr(), "CACHE_L1", "on",
		"PRODUCT_SOURCE_URL", src.srv.URL, "CACHE_EARLY_REFRESH", "0")
	gp := s.start("getproduct")
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = rc.Close() })
	const id = "prod-0009"
	fr := &frozenRun{t: t, gp: gp, id: id, key: api.ProductKeys.Key(id), src: src, rc: rc,
		other: cache.New(cache.Fixed(rc), cache.Options{Prefix: s.prefix}), rev: 1}

	// The tier serves under the emulator: a MISS, then (after a read that puts the
	// product in L1, an L2 HIT) a HIT from L1.
	first := fr.read(0, "-", "warm")
	if first.cache != "MISS" || first.stale() {
		t.Fatalf("first invocation: %v, want a MISS with rev 1", first)
	}
	fr.warm(0)
	t.Logf("before the trials: %v", fr.log)
	pids := gp.runtimePIDs()
	if len(pids) != 1 {
		t.Fatalf("runtime processes %v, want one", pids)
	}
	fr.pid = pids[0]

	start := time.Now()
	kinds := []string{"write", "del"}
	for i := range freezeTrials {
		fr.trial(1+i, kinds[i%2], "")
	}
	var killed []string
	for i := range killTrials {
		// Kill before the change (the change then sends the frozen process no
		// invalidation at all) or after it (the invalidation is in the socket when the
		// server closes it), each with both kinds of change.
		if id := fr.trial(1+freezeTrials+i, kinds[i%2], []string{"before", "before", "after", "after"}[i%4]); id != "" {
			killed = append(killed, id)
		}
	}
	// After the last kill the tier serves again (from L1), on a new connection.
	fr.warm(1 + freezeTrials + killTrials)
	now := fr.trackingIDs()
	if len(now) != 1 || slices.Contains(killed, now[0]) {
		t.Errorf("tracking connections after the trials: %v, want one new one (killed: %v)", now, killed)
	}
	elapsed := time.Since(start)

	type tally struct{ n, l1, l2, miss, other, stale int }
	var thawed, thawedKill, warm tally
	var stale []l1Trial
	for _, r := range fr.log {
		c := &warm
		switch {
		case r.phase == "thawed" && strings.Contains(r.kind, "kill"):
			c = &thawedKill
		case r.phase == "thawed":
			c = &thawed
		}
		c.n++
		switch {
		case r.cache == "HIT" && r.tier == "L1":
			c.l1++
		case r.cache == "HIT" && r.tier == "L2":
			c.l2++
		case r.cache == "MISS":
			c.miss++
		default:
			c.other++
		}
		if r.stale() {
			c.stale++
			stale = append(stale, r)
		}
	}
	for _, c := range []struct {
		what string
		t    tally
	}{{"thawed, key changed", thawed}, {"thawed, key changed and tracking connection killed", thawedKill}, {"warm-up reads", warm}} {
		t.Logf("%s: %d answers: %d HIT from L1, %d HIT from L2, %d MISS, %d other (BYPASS); %d stale",
			c.what, c.t.n, c.t.l1, c.t.l2, c.t.miss, c.t.other, c.t.stale)
	}
	t.Logf("%d freezes (%d with a kill) in %v; runtime %d; tracking connections: %d killed, now %v",
		freezeTrials+killTrials, killTrials, elapsed.Round(time.Millisecond), fr.pid, len(killed), now)
	if thawed.n != freezeTrials || thawedKill.n != killTrials {
		t.Errorf("%d and %d answers after SIGCONT, want %d and %d", thawed.n, thawedKill.n, freezeTrials, killTrials)
	}
	if len(stale) > 0 {
		var b strings.Builder
		for _, r := range stale {
			fmt.Fprintf(&b, "\n  %v", r)
		}
		t.Errorf("%d stale answers of %d:%s", len(stale), len(fr.log), b.String())
	}
	if now := gp.runtimePIDs(); len(now) != 1 || now[0] != fr.pid {
		t.Errorf("runtime processes %v, want the one, %d, never restarted", now, fr.pid)
	}
}
