package main

import (
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
	"testing"
	"time"
)

// quickStart returns the README's quick-start commands: the sh block that holds the
// If-None-Match example, pointed at base instead of localhost:3000.
func quickStart(t *testing.T, base string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case !in && line == "```sh":
			in, block = true, nil
		case in && line == "```":
			in = false
			if strings.Contains(strings.Join(block, "\n"), "If-None-Match") {
				return block
			}
		case in:
			block = append(block, strings.ReplaceAll(line, "localhost:3000", base))
		}
	}
	t.Fatal("no sh block with an If-None-Match example in the README")
	return nil
}

// TestQuickStartETagAndHealth runs the README's quick-start requests, as written, in
// sh with curl, against the local run with its embedded Redis: MISS then HIT, the
// ETag captured from a response and sent back for a 304, and health's notes, which
// must not read like a failure of the embedded Redis.
func TestQuickStartETagAndHealth(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is not installed (required when CI is set)")
		}
		t.Skip("curl is not installed, and the README's commands use it: skipping; set CI=1 to make this a failure")
	}
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
	cmd.Env = withoutRedisURL(os.Environ())
	cmd.Stdout = io.Discard
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	base := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		r, err := http.Get("http://" + base + "/health")
		if err == nil {
			r.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the local run does not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	block := quickStart(t, base)
	// The requests up to the conditional one, in one shell as a reader pastes them,
	// with a marker after each so that each command's output can be told apart.
	const marker = "@@quickstart@@"
	var script, cmds []string
	for _, line := range block {
		if strings.TrimSpace(line) == "" {
			continue
		}
		cmds = append(cmds, line)
		script = append(script, line, "printf '\\n"+marker+"\\n'")
		if strings.Contains(line, "If-None-Match") {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", strings.Join(script, "\n")).Output()
	if err != nil {
		t.Fatalf("the quick start's commands: %v\n%s\n%s", err, strings.Join(script, "\n"), out)
	}
	outs := strings.Split(string(out), "\n"+marker+"\n")
	if len(outs) != len(cmds)+1 {
		t.Fatalf("%d outputs for %d commands:\n%s", len(outs)-1, len(cmds), out)
	}
	xcache := func(s string) string {
		for _, line := range strings.Split(s, "\n") {
			if v, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(line)), "x-cache: "); ok {
				return strings.ToUpper(v)
			}
		}
		return ""
	}
	if got := []string{xcache(outs[0]), xcache(outs[1])}; got[0] != "MISS" || got[1] != "HIT" {
		t.Errorf("X-Cache of the first two requests: %q, want MISS then HIT as the README says", got)
	}
	if got := strings.TrimSpace(outs[len(cmds)-1]); got != "HTTP/1.1 304 Not Modified" {
		t.Errorf("%s\nprints %q, want HTTP/1.1 304 Not Modified as the README says", cmds[len(cmds)-1], got)
	}

	var health string
	for _, line := range block {
		if strings.Contains(line, "/health") {
			health = line
		}
	}
	if health == "" {
		t.Fatal("no health request in the quick start")
	}
	out, err = exec.CommandContext(ctx, "sh", "-c", health).Output()
	if err != nil {
		t.Fatalf("%s: %v", health, err)
	}
	var h struct {
		Status string
		Notes  []string
	}
	if err := json.Unmarshal(out, &h); err != nil || h.Status != "pass" {
		t.Fatalf("health: %v %s", err, out)
	}
	for _, n := range h.Notes {
		if strings.Contains(n, "unavailable") || strings.Contains(n, "error") {
			t.Errorf("health note %q reads like a failure of the embedded Redis", n)
		}
	}
}
