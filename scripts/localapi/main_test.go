package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestLocalRun builds the local run, starts it on a free port with no REDIS_URL (so it
// embeds a Redis and must say so), and calls /health and a product twice.
func TestLocalRun(t *testing.T) {
	bin := binary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	cmd := exec.Command(bin, "-port", fmt.Sprint(port))
	// Log lines wait in memory up to 10 s: those of this short run reach stdout
	// through the flush at shutdown.
	cmd.Env = append(withoutRedisURL(os.Environ()), "LOG_FLUSH_INTERVAL=10s")
	stderr, _ := cmd.StderrPipe()
	var stdout bytes.Buffer // read only after Wait
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	banner := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stderr).ReadString('\n')
		banner <- line
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case line := <-banner:
		if !strings.Contains(line, "embedded in-memory Redis") {
			t.Fatalf("start-up line does not say the Redis is embedded: %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no start-up line")
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err = http.Get(base + "/health")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	var health struct{ Status string }
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || health.Status != "pass" {
		t.Fatalf("health: %d %+v %v", resp.StatusCode, health, err)
	}
	for _, want := range []string{"MISS", "HIT"} {
		r, err := http.Get(base + "/products/prod-0042")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 || r.Header.Get("X-Cache") != want {
			t.Fatalf("product: %d %s, want 200 %s", r.StatusCode, r.Header.Get("X-Cache"), want)
		}
	}

	// SIGTERM: a graceful stop that closes the Redis client and exits 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no exit after SIGTERM")
	}
	// Every line logged before the exit was written: one request line per request,
	// and the shutdown's own lines.
	out := stdout.String()
	if n := strings.Count(out, `"message":"request"`); n != 3 {
		t.Errorf("%d request lines on stdout, want 3 (health and two products):\n%s", n, out)
	}
	if !strings.Contains(out, `"message":"redis client closed"`) {
		t.Errorf("no shutdown line on stdout:\n%s", out)
	}
}

func TestLocalRunRefusesWithoutRedisWhenEmbeddedIsOff(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	err := run([]string{"-embedded=false", "-port", "1"})
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL is not set") {
		t.Fatalf("err = %v", err)
	}
}

func withoutRedisURL(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "REDIS_URL=") && !strings.HasPrefix(e, "PORT=") {
			out = append(out, e)
		}
	}
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the local run once for the tests of this file.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "localapi")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "localapi")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// local is a running local API.
type local struct {
	base   string // http://127.0.0.1:<port>
	banner string // the start-up lines on stderr
}

// startLocal runs the local run with env added to the environment (without REDIS_URL,
// PORT, HOST and CACHE_CLEAR_TOKEN of its own) on a free port, and waits for its
// start-up lines.
func startLocal(t *testing.T, env []string, args ...string) local {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(binary(t), append([]string{"-port", fmt.Sprint(port)}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				lines <- line
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	var banner strings.Builder
	timeout := time.After(30 * time.Second)
	for !strings.Contains(banner.String(), "listening") {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the local run ended: %s", banner.String())
			}
			banner.WriteString(line)
		case <-timeout:
			t.Fatalf("no start-up line: %s", banner.String())
		}
	}
	// The line about cacheClear follows at once.
	select {
	case line := <-lines:
		banner.WriteString(line)
	case <-time.After(2 * time.Second):
	}
	go func() {
		for range lines {
		}
	}()
	return local{base: fmt.Sprintf("http://127.0.0.1:%d", port), banner: banner.String()}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func cleanEnv() []string {
	var out []string
	for _, e := range os.Environ() {
		name, _, _ := strings.Cut(e, "=")
		switch name {
		case "REDIS_URL", "PORT", "HOST", "CACHE_CLEAR_TOKEN", "CACHE_CLEAR_TOKEN_FILE", "STAGE":
			continue
		}
		out = append(out, e)
	}
	return out
}

// post sends a clear request to base with the given Host, Content-Type and extra
// headers (name, value pairs), and returns the status and response headers.
func post(t *testing.T, base, host, contentType string, headers ...string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/cache/clear", strings.NewReader(`{"scope":"all"}`))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// nonLoopbackIP returns an IPv4 address of this machine that is not loopback, or "".
func nonLoopbackIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// Finding 2: the local run listened on every interface with cacheClear open, so any
// host on the network, and any web page through a text/plain POST, could empty the
// cache. It now listens on 127.0.0.1 by default and says that cacheClear is open
// there only.
func TestLocalRunListensOnLoopback(t *testing.T) {
	l := startLocal(t, nil)
	if ip := nonLoopbackIP(); ip == "" {
		t.Log("no address other than loopback here: not checking that the port is closed elsewhere")
	} else if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strings.TrimPrefix(l.base, "http://127.0.0.1:")), time.Second); err == nil {
		c.Close()
		t.Fatalf("the local run answers on %s", ip)
	}
	// The open clear: JSON from this machine, for localhost.
	if code, _ := post(t, l.base, "localhost", "application/json"); code != 200 {
		t.Fatalf("open clear: %d", code)
	}
	// A cross-origin text/plain POST, as any web page can send it.
	code, h := post(t, l.base, "", "text/plain;charset=UTF-8", "Origin", "http://evil.example")
	if code != 415 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("text/plain from another origin: %d, Access-Control-Allow-Origin %q", code, h.Get("Access-Control-Allow-Origin"))
	}
	// A page that rebound its host name to 127.0.0.1.
	if code, _ := post(t, l.base, "evil.example:"+strings.TrimPrefix(l.base, "http://127.0.0.1:"), "application/json"); code != 403 {
		t.Fatalf("rebound host name: %d", code)
	}
	if !strings.Contains(l.banner, "listening on "+l.base) || !strings.Contains(l.banner, "open without a token, on loopback only") {
		t.Fatalf("start-up lines: %s", l.banner)
	}
}

// Bound beyond loopback (-addr or HOST), the local run without a token closes
// cacheClear, and says so; with a token, cacheClear takes it.
func TestLocalRunBeyondLoopback(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  []string
		args []string
	}{
		{"-addr", nil, []string{"-addr", "0.0.0.0"}},
		{"HOST", []string{"HOST=0.0.0.0"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := startLocal(t, tt.env, tt.args...)
			if code, _ := post(t, l.base, "localhost", "application/json"); code != 403 {
				t.Fatalf("open clear bound beyond loopback: %d", code)
			}
			if !strings.Contains(l.banner, "every interface") || !strings.Contains(l.banner, "cacheClear is closed") {
				t.Fatalf("start-up lines: %s", l.banner)
			}
		})
	}
	l := startLocal(t, []string{"CACHE_CLEAR_TOKEN=local-test-token"}, "-addr", "0.0.0.0")
	if !strings.Contains(l.banner, "needs the bearer token") {
		t.Fatalf("start-up lines: %s", l.banner)
	}
	if code, _ := post(t, l.base, "", "application/json"); code != 401 {
		t.Fatalf("without the token: %d", code)
	}
	if code, _ := post(t, l.base, "", "application/json", "Authorization", "Bearer local-test-token"); code != 200 {
		t.Fatalf("with the token: %d", code)
	}
}

// A port in use is reported, and nothing says "listening".
func TestLocalRunBindFailure(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	cmd := exec.Command(binary(t), "-port", fmt.Sprint(port))
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("still running with its port in use: %s", stderr.String())
	}
	if err == nil {
		t.Fatal("exit 0 with its port in use")
	}
	out := stderr.String() + stdout.String()
	if !strings.Contains(out, "address already in use") || strings.Contains(out, "listening") || strings.Contains(out, "starting") {
		t.Fatalf("output:\n%s", out)
	}
}
