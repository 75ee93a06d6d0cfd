// Command coldstart measures the first invoke of a fresh getProduct under the AWS
// Lambda Runtime Interface Emulator against a hello-world aws-lambda-go function built
// with the same flags: the median, over interleaved fresh starts of each, of the time
// from starting the emulator to the first response (a cache HIT for getProduct). The
// emulator's own "Init Duration" is not used: it times an asynchronous dispatch.
//
//	go run ./scripts/coldstart -n 20        # needs Redis at REDIS_URL (default redis://127.0.0.1:6379)
//
// The emulator is a tool of this module (go.mod's tool directive): the command runs the
// binary that `go tool -n aws-lambda-rie` builds into the build cache, the first time
// after downloading its module, so it needs nothing installed besides Go and Redis.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/redis/go-redis/v9"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 20, "fresh starts of each function")
	redisURL := flag.String("redis", envOr("REDIS_URL", "redis://127.0.0.1:6379"), "Redis for getProduct (loopback)")
	flag.Parse()
	rie, err := emulator()
	if err != nil {
		return err
	}
	event, err := os.ReadFile("events/getproduct.v2.json")
	if err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	dir, err := os.MkdirTemp("", "coldstart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fns := map[string]string{"getproduct": "./functions/getproduct", "hello": "./scripts/coldstart/hello"}
	for name, pkg := range fns {
		out := filepath.Join(dir, name, "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", name, err, b)
		}
		st, _ := os.Stat(out)
		fmt.Printf("%s: %d bytes\n", name, st.Size())
	}
	// Its last segment is the stage, as config requires of every prefix.
	prefix := fmt.Sprintf("coldstart%d:%s:", os.Getpid(), envOr("STAGE", "dev"))
	defer cleanUp(*redisURL, prefix)
	env := append(os.Environ(), "REDIS_URL="+*redisURL, "CACHE_KEY_PREFIX="+prefix, "AWS_LAMBDA_FUNCTION_TIMEOUT=10")
	// One start to fill the cache, so the measured getProduct starts are HITs.
	if _, _, err := start(rie, filepath.Join(dir, "getproduct", "bootstrap"), env, event); err != nil {
		return err
	}
	times := map[string][]time.Duration{}
	for i := range *n {
		order := []string{"getproduct", "hello"}
		if i%2 == 1 {
			order = []string{"hello", "getproduct"}
		}
		for _, name := range order {
			d, body, err := start(rie, filepath.Join(dir, name, "bootstrap"), env, event)
			if err != nil {
				return err
			}
			if name == "getproduct" && !bytes.Contains(body, []byte(`"X-Cache":"HIT"`)) {
				return fmt.Errorf("getproduct did not answer a HIT: %.200s", body)
			}
			times[name] = append(times[name], d)
		}
	}
	g, h := median(times["getproduct"]), median(times["hello"])
	fmt.Printf("first invoke, median of %d fresh starts: getproduct %v, hello %v, ratio %.2f\n", *n, g.Round(100*time.Microsecond), h.Round(100*time.Microsecond), float64(g)/float64(h))
	return nil
}

// emulator returns the path of the module's aws-lambda-rie tool, building it the first
// time on this machine.
func emulator() (string, error) {
	fmt.Fprintln(os.Stderr, "coldstart: go tool -n aws-lambda-rie (the first time on a machine, a download and a build of about 5 s)")
	var stderr bytes.Buffer
	cmd := exec.Command("go", "tool", "-n", "aws-lambda-rie")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go tool -n aws-lambda-rie (run from the repository root): %v\n%s", err, stderr.Bytes())
	}
	return string(bytes.TrimSpace(out)), nil
}

// start runs one fresh emulator with bootstrap and times its first invoke.
func start(rie, bootstrap string, env []string, event []byte) (time.Duration, []byte, error) {
	api, rt := freePort(), freePort()
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", "127.0.0.1:"+api, "--runtime-api-address", "127.0.0.1:"+rt, bootstrap)
	cmd.Env = env
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	url := "http://127.0.0.1:" + api + "/2015-03-31/functions/function/invocations"
	client := &http.Client{Timeout: 5 * time.Second}
	for time.Since(t0) < 10*time.Second {
		resp, err := client.Post(url, "application/json", bytes.NewReader(event))
		if err != nil {
			time.Sleep(time.Millisecond)
			continue
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		return time.Since(t0), body.Bytes(), nil
	}
	return 0, nil, fmt.Errorf("%s: no answer within 10 s", bootstrap)
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "0"
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// cleanUp removes the keys the measured functions wrote: the cache entries under
// prefix and the figures beside it.
func cleanUp(redisURL, prefix string) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	rdb.Unlink(ctx, api.TallyKey(prefix))
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		rdb.Unlink(ctx, iter.Val())
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
