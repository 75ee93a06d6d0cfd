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
)

// rieModule is the emulator the suite runs, pinned; .ci/run installs the same.
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// functionDirs are the folders under functions/, one bootstrap each.
var functionDirs = []string{"getproduct", "health", "cacheclear"}

// buildDir holds this run's bootstraps; TestMain removes it.
var buildDir string

func TestMain(m *testing.M) {
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

// bootstrap returns the path of fn's bootstrap, building all three once per test run
// exactly as Lambda gets them: GOOS=linux CGO_ENABLED=0 go build -tags lambda.norpc
// -trimpath, for the host's architecture since they run here.
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
func buildAll() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(buildDir, "bin")
	args := []string{"build", "-tags", "lambda.norpc", "-trimpath", "-o", bin + string(filepath.Separator)}
	for _, fn := range functionDirs {
		args = append(args, "./functions/"+fn)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
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

// emulator returns the path of aws-lambda-rie, from PATH or GOBIN/GOPATH/bin; without
// one the test skips (fails in CI) saying how to install it.
func emulator(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		// One line each, GOBIN's empty when unset.
		lines := strings.Split(string(out), "\n")
		if gobin := strings.TrimSpace(lines[0]); gobin != "" {
			dirs = append(dirs, gobin)
		}
		if len(lines) > 1 {
			for _, p := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "aws-lambda-rie")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	redistest.Unavailable(tb, "aws-lambda-rie is not installed (go install "+rieModule+")")
	return ""
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
