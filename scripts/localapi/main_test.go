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
	"syscall"
	"testing"
	"time"
)

// TestLocalRun builds the local run, starts it on a free port with no REDIS_URL (so it
// embeds a Redis and must say so), and calls /health and a product twice.
func TestLocalRun(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "localapi")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
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
