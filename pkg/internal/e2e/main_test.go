package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/internal/testbin"
)

// functionDirs are the folders under functions/, one bootstrap each.
var functionDirs = []string{"getproduct", "health", "cacheclear"}

// buildDir holds this run's bootstraps; TestMain removes it.
var buildDir string

func TestMain(m *testing.M) {
	// Without these every scenario would skip, and `go test ./...` would print a plain
	// "ok" for the package.
	if code, ok := testbin.Require("pkg/internal/e2e", testbin.RedisServer, testbin.RedisCLI); !ok {
		os.Exit(code)
	}
	dir, err := os.MkdirTemp("", "storeapi-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// bootstrap returns the path of fn's bootstrap, building all three once per test run,
// for the host's architecture since they run here.
func bootstrap(tb testing.TB, fn string) string {
	tb.Helper()
	buildOnce.Do(func() { buildErr = buildAll() })
	if buildErr != nil {
		tb.Fatalf("building the bootstraps: %v", buildErr)
	}
	return filepath.Join(buildDir, fn, "bootstrap")
}

// buildAll builds the three functions in one go build (sharing its work), into
// <dir>/bin/<fn>, and moves each to <dir>/<fn>/bootstrap.
//
// With CI set they are built as Lambda gets them, with the Makefile's settings
// (GOOS=linux CGO_ENABLED=0 -tags lambda.norpc -trimpath -ldflags='-s -w'), under
// testbin's lock, which composetest shares. Elsewhere they are built with the settings
// of the go test run itself, so that the build links the packages that go test
// compiled for the other packages' tests: with Lambda's settings a first build compiles
// the standard library and every dependency once more, about 90 s of CPU on the
// 2-core development VM, most of what a fresh `go test ./...` may take. The code is the
// same; what differs is cgo (the binary may link libc), the paths recorded in it, and
// aws-lambda-go's RPC mode, which is compiled in but, as in Lambda, not used (it
// needs _LAMBDA_SERVER_PORT). samtest and composetest prove the Lambda settings in CI.
func buildAll() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(buildDir, "bin")
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	env := os.Environ()
	if redistest.InCI() {
		args = append(args, "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w")
		env = append(env, "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0", "GOFLAGS=")
	}
	for _, fn := range functionDirs {
		args = append(args, "./functions/"+fn)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = env
	if out, _, err := testbin.Build(cmd); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, fn := range functionDirs {
		if err := os.MkdirAll(filepath.Join(buildDir, fn), 0o755); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(bin, fn), filepath.Join(buildDir, fn, "bootstrap")); err != nil {
			return err
		}
	}
	return nil
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func root(tb testing.TB) string {
	tb.Helper()
	r, err := moduleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// emulator returns the path of aws-lambda-rie, the tool pinned in go.mod, built by
// `go tool` into the build cache the first time. Where it cannot be built the test
// fails: the Lambda path is never skipped where Go runs.
func emulator(tb testing.TB) string {
	tb.Helper()
	p, err := testbin.Emulator()
	if err != nil {
		tb.Fatalf("the Lambda emulator: %v", err)
	}
	return p
}

// cliBinary returns the path of redis-cli, skipping (failing in CI) when absent.
func cliBinary(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("redis-cli")
	if err != nil {
		redistest.Unavailable(tb, "redis-cli is not installed")
	}
	return p
}
