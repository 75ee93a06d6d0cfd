package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/serve"
	"github.com/acmestore/storeapi/pkg/telemetry"
	"github.com/alicebob/miniredis/v2"
)

// entryPoint calls one function of a as a client reaches it, with a bearer token and a
// JSON body when they are not empty.
type entryPoint struct {
	name string
	mode config.Mode
	call func(t *testing.T, a *api.API, f app.Function, method, path, token, body string) answer
}

// answer is what a function returned: the status, the X-Cache header and the body.
type answer struct {
	status int
	xcache string
	body   string
}

// entryPoints are the two ways in: the HTTP mode's handler, and the Lambda entry the
// bootstraps hand the runtime, fed an API Gateway HTTP API (v2) event.
var entryPoints = []entryPoint{
	{name: "http", mode: config.ModeHTTP, call: callHTTP},
	{name: "lambda", mode: config.ModeLambda, call: callLambda},
}

func callHTTP(t *testing.T, a *api.API, f app.Function, method, path, token, body string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	app.Handler(f, a, telemetry.NewLogger(io.Discard, nil)).ServeHTTP(w, req)
	return answer{w.Code, w.Header().Get("X-Cache"), w.Body.String()}
}

func callLambda(t *testing.T, a *api.API, f app.Function, method, path, token, body string) answer {
	t.Helper()
	headers := map[string]string{"host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"}
	if body != "" {
		headers["content-type"] = "application/json"
	}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	ev, err := json.Marshal(map[string]any{
		"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
		"headers": headers,
		"requestContext": map[string]any{
			"accountId": "123456789012", "apiId": "a1b2c3d4e5", "domainName": headers["host"],
			"http":      map[string]any{"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "test"},
			"requestId": "figures-test", "routeKey": "$default", "stage": "$default", "timeEpoch": time.Now().UnixMilli(),
		},
		"body": body, "isBase64Encoded": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	logger := telemetry.NewLogger(io.Discard, nil)
	out, err := serve.NewLambda(app.Handler(f, a, logger), app.LambdaOptions(f, logger)).Invoke(context.Background(), ev)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	r, err := apptest.DecodeResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	return answer{r.Status, r.Header.Get("X-Cache"), r.Body}
}

// buildApp assembles the App of env on mr, writing its figures after every outcome.
func buildApp(t *testing.T, mr *miniredis.Miniredis, mode config.Mode, env map[string]string) *api.API {
	t.Helper()
	e := map[string]string{"REDIS_URL": "redis://" + mr.Addr(), "REDIS_BREAKER_FAILURES": "100"}
	for k, v := range env {
		e[k] = v
	}
	return apptest.Build(t, e, mode, app.WithTallyBatch(1, time.Hour))
}

// wantProduct gets id through getProduct and checks X-Cache.
func wantProduct(t *testing.T, en entryPoint, a *api.API, id, xcache string) {
	t.Helper()
	r := en.call(t, a, app.GetProduct, "GET", "/products/"+id, "", "")
	if r.status != 200 || !strings.Contains(r.body, `"id":"`+id+`"`) {
		t.Fatalf("GET %s: %d %.200s", id, r.status, r.body)
	}
	if r.xcache != xcache {
		t.Fatalf("GET %s: X-Cache %q, want %s", id, r.xcache, xcache)
	}
}

// clearCache calls cacheClear with body and returns the count it reports.
func clearCache(t *testing.T, en entryPoint, a *api.API, token, body string) int64 {
	t.Helper()
	r := en.call(t, a, app.CacheClear, "POST", "/cache/clear", token, body)
	if r.status != 200 {
		t.Fatalf("cacheClear %s: %d %s", body, r.status, r.body)
	}
	var resp api.ClearResponse
	if err := json.Unmarshal([]byte(r.body), &resp); err != nil {
		t.Fatalf("cacheClear %s: %v: %s", body, err, r.body)
	}
	return resp.Deleted
}

// healthFigures returns the application's counts as health reports them.
func healthFigures(t *testing.T, en entryPoint, a *api.API) map[string]any {
	t.Helper()
	r := en.call(t, a, app.Health, "GET", "/health", "", "")
	var body struct {
		Checks map[string][]struct {
			Details map[string]any `json:"details"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != 200 {
		t.Fatalf("health: %d %s (%v)", r.status, r.body, err)
	}
	c := body.Checks["app:productCache"]
	if len(c) != 1 {
		t.Fatalf("health has no app:productCache check: %s", r.body)
	}
	return c[0].Details
}

// TestClearLeavesFigures: the application's figures are not cache entries. No form of
// cacheClear removes them, "deleted" counts cache entries only, and health's counts
// go on after a clear, over HTTP and through the Lambda entry.
func TestClearLeavesFigures(t *testing.T) {
	bodies := []string{`{"scope":"all"}`, `{"pattern":"*"}`, `{"scope":"products"}`, `{"ids":["prod-0001"]}`}
	for _, en := range entryPoints {
		for _, body := range bodies {
			t.Run(en.name+"/"+body, func(t *testing.T) {
				mr := miniredis.RunT(t)
				a := buildApp(t, mr, en.mode, map[string]string{"CACHE_CLEAR_TOKEN": "t0ken"})
				prefix := a.Config.Cache.KeyPrefix
				key := api.TallyKey(prefix)
				if strings.HasPrefix(key, prefix) {
					t.Errorf("the figures key %q is under the cache prefix %q", key, prefix)
				}
				wantProduct(t, en, a, "prod-0001", "MISS")
				wantProduct(t, en, a, "prod-0001", "HIT")
				if got := mr.HGet(key, "hits") + "/" + mr.HGet(key, "misses"); got != "1/1" {
					t.Fatalf("figures before the clear: hits/misses %s, want 1/1 (keys %v)", got, mr.Keys())
				}

				// One cache entry (prod-0001's) and the figures: one deleted.
				if n := clearCache(t, en, a, "t0ken", body); n != 1 {
					t.Errorf("deleted = %d, want 1: the product's entry only (keys left %v)", n, mr.Keys())
				}
				if !mr.Exists(key) {
					t.Fatalf("the clear removed the application's figures (%s); keys left %v", key, mr.Keys())
				}
				wantProduct(t, en, a, "prod-0001", "MISS")
				d := healthFigures(t, en, a)
				if d["hits"] != 1.0 || d["misses"] != 2.0 {
					t.Fatalf("health after the clear: %v, want hits 1 and misses 2", d)
				}
			})
		}
	}
}

// TestStagesShareRedis: instances of two stages on their default prefixes share one
// Redis, as the template lets them. Neither reads the other's entries, and "scope:
// all" in dev leaves every prod key (entries and figures), over HTTP and through the
// Lambda entry.
func TestStagesShareRedis(t *testing.T) {
	for _, en := range entryPoints {
		t.Run(en.name, func(t *testing.T) {
			mr := miniredis.RunT(t)
			dev := buildApp(t, mr, en.mode, map[string]string{"CACHE_CLEAR_TOKEN": "dev-t0ken"})
			prod := buildApp(t, mr, en.mode, map[string]string{"STAGE": "prod", "CACHE_CLEAR_TOKEN": "prod-t0ken", "CACHE_CLEAR_ENABLED": "true"})
			dp, pp := dev.Config.Cache.KeyPrefix, prod.Config.Cache.KeyPrefix
			if strings.HasPrefix(dp, pp) || strings.HasPrefix(pp, dp) {
				t.Errorf("default prefixes %q (dev) and %q (prod): one contains the other", dp, pp)
			}

			wantProduct(t, en, prod, "prod-0001", "MISS")
			// The same id in dev is dev's own miss, not prod's entry.
			wantProduct(t, en, dev, "prod-0001", "MISS")
			wantProduct(t, en, dev, "prod-0002", "MISS")
			if n := clearCache(t, en, dev, "dev-t0ken", `{"scope":"all"}`); n != 2 {
				t.Errorf("dev's clear deleted %d keys, want dev's 2 entries (keys left %v)", n, mr.Keys())
			}
			for _, k := range mr.Keys() {
				if strings.HasPrefix(k, dp) {
					t.Errorf("dev's clear left dev's %s", k)
				}
			}
			for _, k := range []string{pp + api.ProductKeys.Key("prod-0001"), api.TallyKey(pp), api.TallyKey(dp)} {
				if !mr.Exists(k) {
					t.Errorf("dev's clear removed %s; keys left %v", k, mr.Keys())
				}
			}
			wantProduct(t, en, prod, "prod-0001", "HIT")
		})
	}
}
