package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
)

// The Redis settings every function in the suite runs with: short, so faults cost
// little test time, and the budgets the timing assertions derive from.
const (
	readTimeout     = 200 * time.Millisecond
	dialTimeout     = 300 * time.Millisecond
	breakerCooldown = time.Second
	// opTimeout is REDIS_OP_TIMEOUT's default for these settings (2×read + dial): the
	// most a request waits on Redis before it falls back to the source.
	opTimeout = 2*readTimeout + dialTimeout
	// faultBound is the slowest acceptable answer while Redis is faulty: 3× the budget
	// (go-redis's defaults would take 5 s or more per dial, and a server that never
	// answers would hold the request until the function's 10 s timeout).
	faultBound = 3 * opTimeout
	// fastBound is the slowest acceptable answer while the breaker is open: below one
	// read timeout, the least that any call to an unresponsive Redis costs.
	fastBound = readTimeout
	// breakerOpenText is gobreaker's error, in the request line's redisError, when a
	// call skipped Redis.
	breakerOpenText = "circuit breaker is open"
)

// stack is the shared settings of the functions of one scenario: the same endpoint,
// key prefix and cacheClear token.
type stack struct {
	tb     testing.TB
	prefix string
	token  string
	env    map[string]string
}

// newStack returns settings pointing the functions at redisURL, with a random key
// prefix (e2e:<random>:<STAGE>:, its last segment the stage as config requires) and
// cacheClear token. kv are extra variables, as key, value pairs.
func newStack(tb testing.TB, redisURL string, kv ...string) *stack {
	tb.Helper()
	s := &stack{tb: tb, token: "tok-" + randHex(12)}
	s.env = map[string]string{
		"REDIS_URL":              redisURL,
		"CACHE_CLEAR_TOKEN":      s.token,
		"REDIS_READ_TIMEOUT":     readTimeout.String(),
		"REDIS_DIAL_TIMEOUT":     dialTimeout.String(),
		"REDIS_BREAKER_COOLDOWN": breakerCooldown.String(),
		"STAGE":                  "dev",
	}
	setPairs(tb, s.env, kv)
	s.prefix = "e2e:" + randHex(6) + ":" + s.env["STAGE"] + ":"
	s.env["CACHE_KEY_PREFIX"] = s.prefix
	return s
}

func setPairs(tb testing.TB, m map[string]string, kv []string) {
	tb.Helper()
	if len(kv)%2 != 0 {
		tb.Fatalf("odd key-value list %q", kv)
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
}

// start runs function fn (a folder under functions/) with the stack's settings and
// the extra variables kv.
func (s *stack) start(fn string, kv ...string) *function {
	s.tb.Helper()
	env := maps.Clone(s.env)
	setPairs(s.tb, env, kv)
	return startFunction(s.tb, fn, env)
}

// productKey is the Redis key of a cached product under the stack's prefix.
func (s *stack) productKey(id string) string { return s.prefix + "product:v2:" + id }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// clientIDs returns the ids of the server's normal clients, leaving out the connection
// that asks.
func clientIDs(tb testing.TB, srv *redistest.Server) []string {
	tb.Helper()
	out := srv.MustDo("CLIENT", "LIST", "TYPE", "normal")
	var ids []string
	for _, line := range strings.Split(out, "\n") {
		if line == "" || strings.Contains(line, "cmd=client|list") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// waitClients polls until the server has n normal clients (besides the asking one),
// and returns their ids.
func waitClients(tb testing.TB, srv *redistest.Server, n int, within time.Duration) []string {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		ids := clientIDs(tb, srv)
		if len(ids) == n {
			return ids
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the server has %d clients (%v), want %d", len(ids), ids, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// infoInt returns an integer INFO field.
func infoInt(tb testing.TB, srv *redistest.Server, field string) int64 {
	tb.Helper()
	v := srv.Info(field)
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		tb.Fatalf("INFO %s = %q", field, v)
	}
	return n
}

// scanKeys returns the keys matching match on the server at addr (SCAN, not KEYS).
func scanKeys(tb testing.TB, addr, password, match string) []string {
	tb.Helper()
	var keys []string
	cursor := "0"
	for {
		out, err := redistest.Do(addr, password, "SCAN", cursor, "MATCH", match, "COUNT", "1000")
		if err != nil {
			tb.Fatalf("SCAN on %s: %v", addr, err)
		}
		// The reply is flattened to lines: the cursor, then the keys.
		lines := strings.Split(out, "\n")
		cursor = lines[0]
		for _, k := range lines[1:] {
			if k != "" {
				keys = append(keys, k)
			}
		}
		if cursor == "0" {
			return keys
		}
	}
}

// exists reports whether key is on the server.
func exists(tb testing.TB, srv *redistest.Server, key string) bool {
	tb.Helper()
	return srv.MustDo("EXISTS", key) == "1"
}

// blackhole is a TCP server that accepts connections and never answers: a Redis that
// hangs (a full network path, a frozen process behind a load balancer).
type blackhole struct {
	ln      net.Listener
	accepts atomic.Int64
}

func newBlackhole(tb testing.TB) *blackhole {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	b := &blackhole{ln: ln}
	held := make(chan net.Conn, 1024)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepts.Add(1)
			select {
			case held <- c: // held open, never read or written
			default:
				_ = c.Close()
			}
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		close(held)
		for c := range held {
			_ = c.Close()
		}
	})
	return b
}

func (b *blackhole) addr() string { return b.ln.Addr().String() }

// process is a helper process (a redis-server the redistest package cannot start)
// killed with its process group when the test ends.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startProcess(tb testing.TB, dir, bin string, args ...string) *process {
	tb.Helper()
	logPath := filepath.Join(dir, filepath.Base(bin)+".out")
	out, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

func (p *process) output() string { return readFile(p.log) }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// eventually polls f every interval until it returns true, failing after within.
func eventually(tb testing.TB, within, interval time.Duration, what string, f func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(interval)
	}
}

// wantProduct asserts a 200 product answer for id with X-Cache want.
func wantProduct(tb testing.TB, r response, id, want string) {
	tb.Helper()
	if r.Status != 200 || r.cache() != want || !strings.Contains(r.Body, `"id":"`+id+`"`) {
		tb.Fatalf("getProduct %s = %d X-Cache %q (%v), want 200 %s with the product: %.200s", id, r.Status, r.cache(), r.Elapsed, want, r.Body)
	}
}

// within asserts that a call took at most bound.
func within(tb testing.TB, what string, r response, bound time.Duration) {
	tb.Helper()
	tb.Logf("%s: %d in %v (bound %v)", what, r.Status, r.Elapsed.Round(time.Millisecond), bound)
	if r.Elapsed > bound {
		tb.Errorf("%s took %v, more than %v", what, r.Elapsed.Round(time.Millisecond), bound)
	}
}

// noSecrets asserts that none of secrets occurs in text.
func noSecrets(tb testing.TB, where, text string, secrets ...string) {
	tb.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			tb.Errorf("a secret (%d bytes, starting %.3q) appears in %s", len(s), s, where)
		}
	}
}

// checkOf returns the first check named name of a health body, or nil.
func checkOf(body map[string]any, name string) map[string]any {
	checks, _ := body["checks"].(map[string]any)
	list, _ := checks[name].([]any)
	if len(list) == 0 {
		return nil
	}
	c, _ := list[0].(map[string]any)
	return c
}

// wantHealthFail asserts a 503 health answer whose redis check failed with cause.
func wantHealthFail(tb testing.TB, r response, cause string) {
	tb.Helper()
	b := r.json(tb)
	c := checkOf(b, "redis")
	if r.Status != 503 || b["status"] != "fail" || c == nil || c["cause"] != cause {
		tb.Fatalf("health = %d %s, want 503 fail with cause %s", r.Status, r.Body, cause)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/health+json") {
		tb.Errorf("health Content-Type %q", ct)
	}
}

// wantClearFail asserts a 503 cacheClear answer with cause.
func wantClearFail(tb testing.TB, r response, cause string) {
	tb.Helper()
	b := r.json(tb)
	if r.Status != 503 || b["cause"] != cause || b["code"] != "redis_unavailable" {
		tb.Fatalf("cacheClear = %d %s, want 503 redis_unavailable with cause %s", r.Status, r.Body, cause)
	}
}

// seq is a sequence of X-Cache values, for messages.
type seq []string

func (s seq) String() string { return strings.Join(s, " ") }
