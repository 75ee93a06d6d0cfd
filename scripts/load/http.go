package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

func httpDriver(c *http.Client, base *url.URL) func(context.Context, int, string) (outcome, error) {
	prefix := strings.TrimSuffix(base.String(), "/") + "/products/"
	return func(ctx context.Context, _ int, id string) (outcome, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, prefix+id, nil)
		if err != nil {
			return outOther, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return outOther, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return outOther, fmt.Errorf("status %d", resp.StatusCode)
		}
		switch resp.Header.Get("X-Cache") {
		case "HIT":
			if resp.Header.Get("X-Cache-Tier") == "L1" {
				return outHitL1, nil
			}
			return outHit, nil
		case "MISS":
			return outMiss, nil
		case "BYPASS":
			return outBypass, nil
		case "STALE":
			return outStale, nil
		}
		return outOther, nil
	}
}

// serveBaseline is the baseline process: it serves GET /products/{id} on a loopback
// port with one raw go-redis GET of the bytes the local server stored (the floor an
// HTTP server on this Redis can reach), prints the address to out, and returns when
// standard input closes (the parent is done or gone).
func serveBaseline(rdb redis.UniversalClient, fullKey func(string) string, out io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, err := rdb.Get(r.Context(), fullKey(r.PathValue("id"))).Bytes()
		if err != nil {
			http.Error(w, "miss", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Cache", "HIT")
		_, _ = w.Write(b)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	if _, err := fmt.Fprintln(out, ln.Addr()); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// spawnBaseline starts this program again as the baseline server, with environ (the
// same Redis and key prefix), and returns its address and a function that stops it.
func spawnBaseline(environ map[string]string) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe, "-serve-baseline")
	for k, v := range environ {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr := strings.TrimSpace(line)
	if err != nil || addr == "" {
		stop()
		return "", nil, fmt.Errorf("the baseline process did not say its address: %v", err)
	}
	return addr, stop, nil
}
