// Package scriptstest checks the developer scripts in scripts/: shellcheck-clean, a
// --help on each, and the ones that need no Docker run against a real local API.
package scriptstest

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/alicebob/miniredis/v2"
)

var scripts = []string{"dev", "clear-cache", "warm", "redis-cli", "bench-http"}

func scriptPath(name string) string { return filepath.Join("..", "..", "..", "scripts", name) }

func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		redistest.Unavailable(t, "shellcheck is not installed (apt-get install shellcheck)")
	}
	for _, s := range scripts {
		out, err := exec.Command(sc, "--severity=style", scriptPath(s)).CombinedOutput()
		if err != nil {
			t.Errorf("shellcheck %s: %v\n%s", s, err, out)
		}
	}
}

func TestScriptsAreStrictAndHelpful(t *testing.T) {
	for _, s := range scripts {
		t.Run(s, func(t *testing.T) {
			src, err := os.ReadFile(scriptPath(s))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(src), "#!/usr/bin/env bash\n") || !strings.Contains(string(src), "set -euo pipefail") {
				t.Fatal("want a bash shebang and set -euo pipefail")
			}
			out, err := exec.Command(scriptPath(s), "--help").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Usage: scripts/"+s) {
				t.Fatalf("--help: %v\n%s", err, out)
			}
		})
	}
}

// localAPI serves every route like the local run, on miniredis, with a token.
func localAPI(t *testing.T) (*httptest.Server, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	a := apptest.Build(t, map[string]string{"REDIS_URL": "redis://" + mr.Addr(), "CACHE_CLEAR_TOKEN": "scr1pt-token"}, config.ModeHTTP)
	srv := httptest.NewServer(a.All())
	t.Cleanup(srv.Close)
	return srv, mr
}

func run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(scriptPath(name), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestWarmAndClearAgainstLocalAPI(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		redistest.Unavailable(t, "curl is not installed")
	}
	srv, mr := localAPI(t)
	out, err := run(t, nil, "warm", "--url", srv.URL, "--count", "5")
	if err != nil || !strings.Contains(out, "HIT 0, MISS 5") {
		t.Fatalf("first warm: %v\n%s", err, out)
	}
	out, err = run(t, nil, "warm", "--url", srv.URL, "--count", "5")
	if err != nil || !strings.Contains(out, "HIT 5, MISS 0") {
		t.Fatalf("second warm: %v\n%s", err, out)
	}

	out, err = run(t, []string{"CACHE_CLEAR_TOKEN=wrong"}, "clear-cache", "--url", srv.URL)
	if err == nil || !strings.Contains(out, "HTTP 401") {
		t.Fatalf("wrong token: %v\n%s", err, out)
	}
	out, err = run(t, []string{"CACHE_CLEAR_TOKEN=scr1pt-token"}, "clear-cache", "--url", srv.URL, "--ids", "prod-0001,prod-0002")
	if err != nil || !strings.Contains(out, `"deleted":2`) {
		t.Fatalf("clear ids: %v\n%s", err, out)
	}
	if mr.Exists("store:dev:product:v2:prod-0001") || !mr.Exists("store:dev:product:v2:prod-0003") {
		t.Fatalf("keys after clearing two ids: %v", mr.Keys())
	}
	out, err = run(t, []string{"CACHE_CLEAR_TOKEN=scr1pt-token"}, "clear-cache", "--url", srv.URL, "--scope", "products")
	if err != nil || !strings.Contains(out, `"deleted":3`) {
		t.Fatalf("clear products: %v\n%s", err, out)
	}
	if strings.Contains(out, "scr1pt-token") {
		t.Fatal("token printed")
	}
}
