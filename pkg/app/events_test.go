package app_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/serve"
	"github.com/acmestore/storeapi/pkg/telemetry"
	"github.com/alicebob/miniredis/v2"
)

// functions maps template.yaml's logical ids to the functions.
var functions = map[string]app.Function{
	"GetProductFunction": app.GetProduct,
	"HealthFunction":     app.Health,
	"CacheClearFunction": app.CacheClear,
}

// TestEventsThroughTheLambdaEntry feeds every event file through the same Lambda entry
// the bootstraps use (raw event bytes in, response bytes out), with the settings of
// events/env.json against miniredis, with Redis up and with it down.
func TestEventsThroughTheLambdaEntry(t *testing.T) {
	var expected map[string]struct {
		Function           string
		Status             int
		StatusWithoutRedis int
	}
	readJSON(t, "../../events/expected.json", &expected)
	var envs map[string]map[string]string
	readJSON(t, "../../events/env.json", &envs)
	files, _ := filepath.Glob("../../events/*.v[12].json")
	if len(files) != len(expected) {
		t.Fatalf("%d event files but %d in expected.json", len(files), len(expected))
	}
	for _, file := range files {
		name := filepath.Base(file)
		want, ok := expected[name]
		if !ok {
			t.Errorf("%s is not in expected.json", name)
			continue
		}
		for _, redisUp := range []bool{true, false} {
			status := want.Status
			if !redisUp {
				status = want.StatusWithoutRedis
			}
			t.Run(name+map[bool]string{true: "/redis up", false: "/redis down"}[redisUp], func(t *testing.T) {
				mr := miniredis.RunT(t)
				env := map[string]string{}
				for k, v := range envs[want.Function] {
					env[k] = v
				}
				env["REDIS_URL"] = "redis://" + mr.Addr()
				env["REDIS_BREAKER_FAILURES"] = "100"
				mr.RequireAuth(env["REDIS_PASSWORD"])
				if !redisUp {
					mr.Close()
				}
				var logs strings.Builder
				inv := lambdaEntry(t, env, functions[want.Function], &logs)
				payload, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				out, err := inv.Invoke(context.Background(), payload)
				if err != nil {
					t.Fatalf("Invoke: %v", err)
				}
				var resp struct {
					StatusCode        int                 `json:"statusCode"`
					Headers           map[string]string   `json:"headers"`
					MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
					Body              string              `json:"body"`
				}
				if err := json.Unmarshal(out, &resp); err != nil {
					t.Fatalf("response %s: %v", out, err)
				}
				if resp.StatusCode != status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, resp.Body)
				}
				if want.Function == "GetProductFunction" && status == 200 {
					wantCache := map[bool]string{true: "MISS", false: "BYPASS"}[redisUp]
					got := resp.Headers["X-Cache"]
					if v := resp.MultiValueHeaders["X-Cache"]; got == "" && len(v) == 1 {
						got = v[0]
					}
					if got != wantCache {
						t.Fatalf("X-Cache %q, want %q", got, wantCache)
					}
				}
				for _, secret := range []string{env["REDIS_PASSWORD"], env["CACHE_CLEAR_TOKEN"]} {
					if secret != "" && (strings.Contains(string(out), secret) || strings.Contains(logs.String(), secret)) {
						t.Fatal("a secret appears in the response or the log")
					}
				}
				if n := strings.Count(logs.String(), `"message":"request"`); n != 1 {
					t.Fatalf("%d request lines, want 1:\n%s", n, logs.String())
				}
			})
		}
	}
}

// lambdaEntry assembles f from env as app.Run does under Lambda, with app's own
// parts (app.New through apptest, app.Handler, app.LambdaOptions with app.Codec),
// and returns the Lambda entry that serve.Run would hand the runtime. The logger is
// the one app.NewLogger makes under Lambda, at the configured level, writing to logs;
// unlike app.Run, it is not made the process's default.
func lambdaEntry(t *testing.T, env map[string]string, f app.Function, logs io.Writer) *serve.Lambda {
	t.Helper()
	a := apptest.Build(t, env, config.ModeLambda)
	logger := telemetry.NewLogger(logs, a.Config.LogLevel)
	return serve.NewLambda(app.Handler(f, a, logger), app.LambdaOptions(f, logger))
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
