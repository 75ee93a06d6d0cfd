package composetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
)

// redisConf returns the lines of the config file that compose mounts into the redis
// service, read from its host path.
func redisConf(tb testing.TB, p *types.Project) []string {
	tb.Helper()
	host := hostPath(tb, service(tb, p, "redis"), redisConfInContainer)
	if host == "" {
		tb.Fatalf("redis: nothing mounted at %s", redisConfInContainer)
	}
	b, err := os.ReadFile(host)
	if err != nil {
		tb.Fatalf("redis: read the mounted config: %v", err)
	}
	return strings.Split(string(b), "\n")
}

// dataVolumeTarget returns where s mounts a named volume for its data.
func dataVolumeTarget(tb testing.TB, s types.ServiceConfig) string {
	tb.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == "/data" {
			return v.Target
		}
	}
	tb.Fatalf("%s: no named volume at /data", s.Name)
	return ""
}

// hostPath returns the host path of a file that s has bind-mounted at target, or "".
func hostPath(tb testing.TB, s types.ServiceConfig, target string) string {
	tb.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			if !v.ReadOnly {
				tb.Errorf("%s: %s is mounted writable", s.Name, target)
			}
			return v.Source
		}
	}
	return ""
}

// confValues returns the arguments of every line of a redis.conf that sets directive.
func confValues(conf []string, directive string) []string {
	var out []string
	for _, line := range conf {
		f := strings.Fields(line)
		if len(f) > 0 && !strings.HasPrefix(f[0], "#") && strings.EqualFold(f[0], directive) {
			out = append(out, strings.Join(f[1:], " "))
		}
	}
	return out
}

// confValue returns what directive is set to: its last line wins, as in Redis.
func confValue(conf []string, directive string) string {
	v := confValues(conf, directive)
	if len(v) == 0 {
		return ""
	}
	return strings.Trim(v[len(v)-1], `"`)
}

// composeRedis is a redis-server run with the command line that compose gives the
// redis service.
type composeRedis struct {
	tb       testing.TB
	bin      string
	args     []string
	Dir      string
	Port     int
	password string
	log      *lockedBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// newComposeRedis prepares the redis service of p as a private server. The command is
// the service's, variables resolved by the compose loader, with the mounted config
// file read from its host path. Three things differ, none of them under test: the
// port and the data directory (a free port and a temporary directory instead of 6379
// and the /data volume), and bind 127.0.0.1 instead of every interface, which a
// container needs but a test machine should not get. The image's entrypoint only
// drops to the redis user before it runs the same command.
func newComposeRedis(tb testing.TB, p *types.Project, extra ...string) *composeRedis {
	tb.Helper()
	s := service(tb, p, "redis")
	if len(s.Entrypoint) > 0 {
		tb.Fatalf("redis: the entrypoint is overridden (%v); the image's must run the command", s.Entrypoint)
	}
	if len(s.Command) == 0 || s.Command[0] != "redis-server" {
		tb.Fatal("redis: the command does not start redis-server")
	}
	r := &composeRedis{
		tb:   tb,
		bin:  redistest.ServerBinary(tb),
		Dir:  tb.TempDir(),
		Port: redistest.FreePort(tb),
		log:  &lockedBuffer{},
	}
	args := slices.Clone(s.Command[1:])
	var dir bool
	for i, a := range args {
		if host := hostPath(tb, s, a); host != "" {
			args[i] = host
		}
		if i+1 < len(args) {
			switch a {
			case "--requirepass":
				r.password = args[i+1]
			case "--dir":
				if args[i+1] != dataVolumeTarget(tb, s) {
					tb.Fatalf("redis: --dir %s is not the data volume", args[i+1])
				}
				args[i+1], dir = r.Dir, true
			}
		}
	}
	if !slices.Contains(s.Command, redisConfInContainer) {
		tb.Fatalf("redis: the command does not load %s", redisConfInContainer)
	}
	if !dir {
		tb.Fatal("redis: the command does not set --dir to the data volume")
	}
	r.args = append(args, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1")
	r.args = append(r.args, extra...)
	tb.Cleanup(r.Kill)
	return r
}

func (r *composeRedis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// Start runs the server and waits until it answers an authenticated PING.
func (r *composeRedis) Start(extra ...string) {
	r.tb.Helper()
	r.mu.Lock()
	if r.cmd != nil {
		r.mu.Unlock()
		r.tb.Fatal("redis-server already running")
	}
	cmd := exec.Command(r.bin, append(slices.Clone(r.args), extra...)...)
	cmd.Dir = r.Dir
	r.log = &lockedBuffer{} // this run's log only
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		r.tb.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := redistest.Do(r.Addr(), r.password, "PING")
		if err == nil && out == "PONG" {
			return
		}
		select {
		case <-done:
			r.tb.Fatalf("redis-server exited at start-up with the compose configuration:\n%s", r.log)
		default:
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("redis-server did not answer within 10s:\n%s", r.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL, as a crash or an OOM kill would, and waits.
func (r *composeRedis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// Shutdown asks the server to SHUTDOWN, as "docker compose stop" does with SIGTERM,
// and waits for it to exit cleanly.
func (r *composeRedis) Shutdown() {
	r.tb.Helper()
	_, _ = redistest.Do(r.Addr(), r.password, "SHUTDOWN") // the server closes the connection
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		r.tb.Fatal("SHUTDOWN: redis-server is not running")
	}
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		r.tb.Fatalf("redis-server did not exit after SHUTDOWN:\n%s", r.log)
	}
	if code := r.cmd.ProcessState.ExitCode(); code != 0 {
		r.tb.Errorf("redis-server exited with %d after SHUTDOWN:\n%s", code, r.log)
	}
	r.cmd = nil
}

// Do sends one command, authenticated.
func (r *composeRedis) Do(args ...string) (string, error) {
	return redistest.Do(r.Addr(), r.password, args...)
}

// MustDo is Do that fails the test on an error. Messages show the command name only:
// arguments may be secrets.
func (r *composeRedis) MustDo(args ...string) string {
	r.tb.Helper()
	out, err := r.Do(args...)
	if err != nil {
		r.tb.Fatalf("%s: %v", args[0], err)
	}
	return out
}

// Config returns the value of one CONFIG GET parameter.
func (r *composeRedis) Config(name string) string {
	r.tb.Helper()
	_, v, _ := strings.Cut(r.MustDo("CONFIG", "GET", name), "\n")
	return v
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRedisPersistence proves that the data of the compose Redis outlives both a crash
// (SIGKILL: the AOF brings it back) and a clean stop (SHUTDOWN writes the RDB snapshot
// too), on the same data directory, as the /data volume outlives containers.
func TestRedisPersistence(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, stackEnv(t))
	r := newComposeRedis(t, p)
	r.Start()

	for name, want := range map[string]string{
		"appendonly":       "yes",
		"appendfsync":      "everysec",
		"maxmemory":        strconv.Itoa(256 << 20),
		"maxmemory-policy": "allkeys-lru",
		"dir":              r.Dir,
	} {
		if got := r.Config(name); got != want {
			t.Errorf("CONFIG GET %s: %q, want %q", name, got, want)
		}
	}
	if r.Config("save") == "" {
		t.Error("CONFIG GET save: empty, RDB snapshots are off")
	}

	const n = 200
	mset := []string{"MSET"}
	for i := range n {
		mset = append(mset, "product:"+strconv.Itoa(i), `{"id":`+strconv.Itoa(i)+`}`)
	}
	r.MustDo(mset...)
	r.MustDo("HSET", "product:h", "name", "mug", "price", "12.50")
	r.MustDo("SET", "product:ttl", "x", "EX", "3600")
	wrote := time.Now()

	check := func(stage string, extra ...string) {
		t.Helper()
		want := strconv.Itoa(n + 2 + len(extra))
		if got := r.MustDo("DBSIZE"); got != want {
			t.Fatalf("%s: DBSIZE %s, want %s", stage, got, want)
		}
		for _, i := range []int{0, n / 2, n - 1} {
			k := "product:" + strconv.Itoa(i)
			if got := r.MustDo("GET", k); got != `{"id":`+strconv.Itoa(i)+`}` {
				t.Errorf("%s: GET %s = %q", stage, k, got)
			}
		}
		if got := r.MustDo("HGET", "product:h", "price"); got != "12.50" {
			t.Errorf("%s: HGET product:h price = %q", stage, got)
		}
		if ttl, _ := strconv.Atoi(r.MustDo("TTL", "product:ttl")); ttl <= 0 || ttl > 3600 {
			t.Errorf("%s: TTL product:ttl = %d, want the expiry kept", stage, ttl)
		}
		for _, k := range extra {
			if got := r.MustDo("GET", k); got != "1" {
				t.Errorf("%s: GET %s = %q", stage, k, got)
			}
		}
	}

	// appendfsync everysec: a write reaches the file (and the kernel) before the next
	// event loop turn and is fsynced within about a second. Give it that second, then
	// check that nothing is left in Redis's buffer or queued for fsync.
	time.Sleep(time.Until(wrote.Add(1100 * time.Millisecond)))
	waitAOFIdle(t, r)
	if !aofContains(t, r.Dir, "product:h") {
		t.Fatal("the written keys are not in the append-only file")
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "dump.rdb")); err == nil {
		t.Fatal("an RDB snapshot exists already; the crash test would not show that the AOF alone recovers the data")
	}

	t.Run("crash", func(t *testing.T) {
		r.Kill()
		r.Start()
		check("after SIGKILL and restart")
		if !strings.Contains(r.log.String(), "loaded from append only file") {
			t.Errorf("redis-server did not report loading the AOF:\n%s", r.log)
		}
	})

	t.Run("clean restart", func(t *testing.T) {
		r.MustDo("SET", "product:after-crash", "1")
		r.Shutdown()
		if _, err := os.Stat(filepath.Join(r.Dir, "dump.rdb")); err != nil {
			t.Errorf("no RDB snapshot after SHUTDOWN, although save points are set: %v", err)
		}
		r.Start()
		check("after SHUTDOWN and restart", "product:after-crash")
	})

	// Only for this check, and unlike compose: AOF off, so Redis must load the RDB
	// snapshot, which shows that the snapshot on the volume is whole by itself.
	t.Run("snapshot alone", func(t *testing.T) {
		r.Shutdown()
		r.Start("--appendonly", "no")
		check("from the RDB snapshot alone", "product:after-crash")
		r.Kill()
	})
}

// waitAOFIdle waits until Redis has nothing left to write to the AOF or to fsync.
func waitAOFIdle(tb testing.TB, r *composeRedis) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		info := r.MustDo("INFO", "persistence")
		f := func(k string) string { return redistest.InfoField(info, k) }
		if f("aof_enabled") != "1" {
			tb.Fatal("INFO persistence: AOF is not enabled")
		}
		if f("aof_last_write_status") != "ok" {
			tb.Fatalf("INFO persistence: aof_last_write_status %q", f("aof_last_write_status"))
		}
		if f("aof_buffer_length") == "0" && f("aof_pending_bio_fsync") == "0" && f("aof_rewrite_in_progress") == "0" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the AOF is still busy after 5s:\n%s", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// aofContains reports whether any file of the AOF directory contains s.
func aofContains(tb testing.TB, dir, s string) bool {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "appendonlydir", "*"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no append-only files in %s", dir)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// TestRedisHealthcheck runs the compose healthcheck's own command, with sh -c and the
// container's environment as compose would, against the private server.
func TestRedisHealthcheck(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		redistest.Unavailable(t, "redis-cli is not installed")
	}
	env := stackEnv(t)
	p := mustLoad(t, env)
	r := newComposeRedis(t, p)
	r.Start()

	s := service(t, p, "redis")
	if s.HealthCheck == nil || len(s.HealthCheck.Test) != 2 || s.HealthCheck.Test[0] != "CMD-SHELL" {
		t.Fatal("redis: want a CMD-SHELL healthcheck")
	}
	// The one change: the container's port 6379 becomes the private server's.
	portFlag := regexp.MustCompile(`(^|\s)-p\s+6379(\s|$)`)
	script := s.HealthCheck.Test[1]
	if len(portFlag.FindAllString(script, -1)) != 1 {
		t.Fatalf("the healthcheck %q does not name port 6379 exactly once", script)
	}
	script = portFlag.ReplaceAllString(script, "${1}-p "+strconv.Itoa(r.Port)+"${2}")

	containerEnv := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			containerEnv[k] = *v
		}
	}
	if containerEnv["REDISCLI_AUTH"] != env["REDIS_PASSWORD"] {
		t.Fatal("redis: REDISCLI_AUTH is not REDIS_PASSWORD in the container's environment")
	}
	run := func(t *testing.T, env map[string]string) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", script)
		// The container's environment only, plus what finds redis-cli and keeps a
		// developer's ~/.redisclirc out of it.
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("the healthcheck hung: %s", firstLine(out.String()))
		}
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run the healthcheck: %v", err)
		}
		return err
	}
	with := func(key, value string, drop bool) map[string]string {
		m := map[string]string{}
		for k, v := range containerEnv {
			m[k] = v
		}
		if drop {
			delete(m, key)
		} else {
			m[key] = value
		}
		return m
	}

	t.Run("right password", func(t *testing.T) {
		if err := run(t, containerEnv); err != nil {
			t.Errorf("healthcheck failed on a healthy server: %v", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		if err := run(t, with("REDISCLI_AUTH", "not-"+env["REDIS_PASSWORD"], false)); err == nil {
			t.Error("healthcheck passed with a wrong password")
		}
	})
	t.Run("no password", func(t *testing.T) {
		if err := run(t, with("REDISCLI_AUTH", "", true)); err == nil {
			t.Error("healthcheck passed without a password (NOAUTH)")
		}
	})
	t.Run("server down", func(t *testing.T) {
		r.Kill()
		if err := run(t, containerEnv); err == nil {
			t.Error("healthcheck passed with Redis down")
		}
	})
}

func firstLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	if sc.Scan() {
		return sc.Text()
	}
	return ""
}

// TestRedisCommands checks that the commands removed by the compose configuration are
// gone and that those RedisInsight's browser, profiler and slow log use still work.
func TestRedisCommands(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, stackEnv(t))
	r := newComposeRedis(t, p)
	r.Start()
	r.MustDo("SET", "product:1", `{"id":1}`)

	for _, c := range [][]string{{"FLUSHALL"}, {"FLUSHALL", "ASYNC"}, {"FLUSHDB"}, {"DEBUG", "SLEEP", "0"}, {"DEBUG", "OBJECT", "product:1"}} {
		out, err := r.Do(c...)
		if err == nil || !strings.Contains(out, "unknown command") {
			t.Errorf("%s: answered %q, want an unknown command", strings.Join(c, " "), out)
		}
	}
	if got := r.MustDo("DBSIZE"); got != "1" {
		t.Fatalf("DBSIZE %s after the refused flushes, want 1", got)
	}

	for _, c := range [][]string{
		{"INFO", "all"}, {"DBSIZE"}, {"SCAN", "0", "MATCH", "product:*", "COUNT", "100"},
		{"TYPE", "product:1"}, {"TTL", "product:1"}, {"MEMORY", "USAGE", "product:1"},
		{"SLOWLOG", "GET", "10"}, {"CONFIG", "GET", "maxmemory"}, {"CLIENT", "LIST"},
		{"LATENCY", "LATEST"}, {"COMMAND", "COUNT"}, {"MONITOR"}, {"UNLINK", "product:1"},
	} {
		if _, err := r.Do(c...); err != nil {
			t.Errorf("%s: %v; RedisInsight needs it", strings.Join(c, " "), err)
		}
	}
}
