// Package testbin gives tests the programs they run that are not Go test binaries: the
// bootstraps and servers they build with go build (or make), the AWS Lambda Runtime
// Interface Emulator (a tool of this module, see go.mod), and the machine's own tools
// (redis-server, redis-cli), which a package checks for before its tests start.
//
// Builds take a lock per machine and build cache. pkg/internal/e2e, samtest and
// composetest each build the functions with the same compiler settings
// (GOOS=linux CGO_ENABLED=0 -tags lambda.norpc -trimpath), and `go test ./...` runs
// those packages at the same time: without the lock, each go process would compile
// the standard library and every dependency again, as the go command does not share
// work in progress between processes. With it, the first build compiles, and the
// others find the packages in the build cache and only link.
package testbin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Build runs cmd, a go build or a make target that runs one, holding the build lock,
// and returns its combined output. waited is how long it waited for another build.
func Build(cmd *exec.Cmd) (out []byte, waited time.Duration, err error) {
	began := time.Now()
	unlock, err := lock(cmd.Env)
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	waited = time.Since(began)
	out, err = cmd.CombinedOutput()
	return out, waited, err
}

// lockPath is the lock file of the build cache that env (a process environment, nil
// for this process's) builds into: builds into different caches do not share work, so
// they need not wait for each other.
func lockPath(env []string) (string, error) {
	cmd := exec.Command("go", "env", "GOCACHE")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOCACHE: %w", err)
	}
	sum := sha256.Sum256(bytes.TrimSpace(out))
	return filepath.Join(os.TempDir(), "storeapi-gobuild-"+hex.EncodeToString(sum[:6])+".lock"), nil
}

var (
	rieOnce sync.Once
	riePath string
	rieErr  error
)

// Emulator returns the path of aws-lambda-rie, the emulator pinned by go.mod's tool
// directive: `go tool -n aws-lambda-rie` builds it into the build cache the first
// time (about 5 s, after downloading its module from the module proxy where the module
// cache lacks it) and prints its path. It fails only where go cannot build it (no
// network and no module cache); it never skips.
func Emulator() (string, error) {
	rieOnce.Do(func() {
		cmd := exec.Command("go", "tool", "-n", "aws-lambda-rie")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			rieErr = fmt.Errorf("go tool -n aws-lambda-rie: %v\n%s", err, stderr.String())
			return
		}
		riePath = strings.TrimSpace(string(out))
		if _, err := os.Stat(riePath); err != nil {
			rieErr = fmt.Errorf("go tool -n aws-lambda-rie printed %q: %w", riePath, err)
		}
	})
	return riePath, rieErr
}

// Tool is a program of the machine that a test package needs, and how to get it.
type Tool struct {
	Name string
	Get  string
}

// The machine's tools that the real-Redis packages run.
var (
	RedisServer = Tool{"redis-server", "apt-get install redis-server, or brew install redis"}
	RedisCLI    = Tool{"redis-cli", "apt-get install redis-tools (redis-server brings it), or brew install redis"}
)

// Require checks, first thing in a TestMain, that the tools a package cannot run
// without are on PATH. Where one is missing it prints which and how to get it, and
// returns false with the code TestMain should exit with: 1 with CI set, where the tests
// are required; elsewhere 0, after the testing package's own "no tests to run" warning.
// `go test ./...` discards what a passing package prints (without -v) and adds only
// that warning to the package's summary line, as "[no tests to run]": without it, a
// package whose every test skipped would read as a plain "ok".
func Require(pkg string, tools ...Tool) (exitCode int, ok bool) {
	return require(os.Stdout, pkg, os.Getenv("CI") != "", tools...)
}

func require(w io.Writer, pkg string, ci bool, tools ...Tool) (exitCode int, ok bool) {
	var lines []string
	for _, t := range tools {
		if _, err := exec.LookPath(t.Name); err != nil {
			lines = append(lines, fmt.Sprintf("  %s: %s", t.Name, t.Get))
		}
	}
	if len(lines) == 0 {
		return 0, true
	}
	// One stream, so that the lines keep their order in go test's buffer.
	fmt.Fprintf(w, "%s: no test runs, as these programs are not installed:\n%s\n", pkg, strings.Join(lines, "\n"))
	if ci {
		fmt.Fprintln(w, "(required when CI is set)")
		return 1, false
	}
	fmt.Fprintln(w, "(the README's Testing section lists what each package needs)")
	fmt.Fprintln(w, "testing: warning: no tests to run")
	return 0, false
}
