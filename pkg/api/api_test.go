package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/alicebob/miniredis/v2"
)

// fixture is the API as app.New assembles it, on a fresh miniredis with the sample
// catalog.
type fixture struct {
	api *api.API
	mr  *miniredis.Miniredis
	h   http.Handler
}

func newFixture(tb testing.TB, env map[string]string, mode config.Mode) *fixture {
	tb.Helper()
	mr := miniredis.RunT(tb)
	e := map[string]string{"REDIS_URL": "redis://" + mr.Addr(), "CACHE_CLEAR_TOKEN": "t0ken", "REDIS_BREAKER_FAILURES": "100"}
	for k, v := range env {
		e[k] = v
	}
	// A tally batch of 1: health shows each request's outcome at once.
	a := apptest.Build(tb, e, mode, app.WithTallyBatch(1, time.Hour))
	return &fixture{api: a, mr: mr, h: a.All()}
}

func (f *fixture) do(tb testing.TB, method, target string, body io.Reader, headers ...string) *http.Response {
	tb.Helper()
	req := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w.Result()
}

func readBody(tb testing.TB, r *http.Response) string {
	tb.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestGetProductMissThenHit(t *testing.T) {
	f := newFixture(t, nil, config.ModeLambda)
	first := f.do(t, "GET", "/products/prod-0001", nil)
	b1 := readBody(t, first)
	if first.StatusCode != 200 || first.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("first: %d %s %s", first.StatusCode, first.Header.Get("X-Cache"), b1)
	}
	var p product.Product
	if err := json.Unmarshal([]byte(b1), &p); err != nil || p.ID != "prod-0001" {
		t.Fatalf("body %q: %v", b1, err)
	}
	if ct := first.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	if first.Header.Get("Cache-Control") != "no-cache" || first.Header.Get("ETag") == "" {
		t.Fatalf("caching headers: %v", first.Header)
	}
	if !f.mr.Exists("store:dev:product:v2:prod-0001") {
		t.Fatalf("not cached under the versioned key: %v", f.mr.Keys())
	}
	second := f.do(t, "GET", "/products/prod-0001", nil)
	b2 := readBody(t, second)
	if second.StatusCode != 200 || second.Header.Get("X-Cache") != "HIT" || b2 != b1 {
		t.Fatalf("second: %d %s", second.StatusCode, second.Header.Get("X-Cache"))
	}
	if second.Header.Get("ETag") != first.Header.Get("ETag") {
		t.Fatal("ETag changed between MISS and HIT")
	}
	notMod := f.do(t, "GET", "/products/prod-0001", nil, "If-None-Match", `"x", `+first.Header.Get("ETag"))
	if notMod.StatusCode != http.StatusNotModified || readBody(t, notMod) != "" {
		t.Fatalf("If-None-Match: %d", notMod.StatusCode)
	}
	req := httptest.NewRequest("GET", "/products/prod-0001", nil)
	req.Header.Add("If-None-Match", `"x"`)
	req.Header.Add("If-None-Match", first.Header.Get("ETag"))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	if w.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match split over two header values: %d", w.Code)
	}
}

func TestGetProductServesStoredBytes(t *testing.T) {
	f := newFixture(t, nil, config.ModeLambda)
	const key = "store:dev:product:v2:prod-0002"
	filled := readBody(t, f.do(t, "GET", "/products/prod-0002", nil))
	raw, err := f.mr.Get(key)
	if err != nil || !strings.HasSuffix(raw, filled) {
		t.Fatalf("stored %q, %v; want an entry ending with the served bytes", raw, err)
	}
	// The same entry header, other bytes: a hit serves them as they are.
	stored := `{"id":"prod-0002","name":"stored as is"}`
	f.mr.Set(key, raw[:len(raw)-len(filled)]+stored)
	r := f.do(t, "GET", "/products/prod-0002", nil)
	if got := readBody(t, r); got != stored || r.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("got %q (%s)", got, r.Header.Get("X-Cache"))
	}
	f.mr.Set(key, raw[:len(raw)-len(filled)]+`{"id":"prod-0002","na`)
	r = f.do(t, "GET", "/products/prod-0002", nil)
	if got := readBody(t, r); r.Header.Get("X-Cache") != "MISS" || !json.Valid([]byte(got)) {
		t.Fatalf("truncated entry: %q (%s)", got, r.Header.Get("X-Cache"))
	}
}

func TestGetProductErrors(t *testing.T) {
	f := newFixture(t, nil, config.ModeLambda)
	tests := []struct {
		name, method, target string
		status               int
		code                 string
	}{
		{"bad chars", "GET", "/products/a%3Cscript%3Ealert(1)%3C%2Fscript%3E", 400, "invalid_request"},
		{"too long", "GET", "/products/" + strings.Repeat("a", 65), 400, "invalid_request"},
		{"traversal", "GET", "/products/..%2F..%2Fetc", 400, "invalid_request"},
		{"unicode", "GET", "/products/pr%C3%B6d", 400, "invalid_request"},
		{"nul", "GET", "/products/a%00b", 400, "invalid_request"},
		{"unknown", "GET", "/products/prod-9999", 404, "not_found"},
		{"unknown again (negative cache)", "GET", "/products/prod-9999", 404, "not_found"},
		{"wrong method", "POST", "/products/prod-0001", 405, "method_not_allowed"},
		{"no route", "GET", "/nope", 404, "no_route"},
		{"clear with GET", "GET", "/cache/clear", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, tt.method, tt.target, nil)
			body := readBody(t, r)
			if r.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, tt.status, body)
			}
			var e struct{ Error, Code string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != tt.code || e.Error == "" {
				t.Fatalf("body %q: %v", body, err)
			}
			if strings.Contains(body, "script") || strings.Contains(body, "etc") || strings.Contains(body, "aaaa") {
				t.Fatalf("input echoed: %s", body)
			}
		})
	}
	if f.mr.Get("store:dev:product:v2:prod-9999"); !f.mr.Exists("store:dev:product:v2:prod-9999") {
		t.Fatal("not-found was not remembered")
	}
}

func TestGetProductSourceFailures(t *testing.T) {
	f := newFixture(t, nil, config.ModeLambda)
	f.api.Source = product.SourceFunc(func(ctx context.Context, id string) (product.Product, error) {
		if id == "slow" {
			<-ctx.Done()
			return product.Product{}, ctx.Err()
		}
		return product.Product{}, errors.New("db at 10.0.0.7:5432 refused")
	})
	f.h = f.api.GetProduct()
	r := f.do(t, "GET", "/products/boom", nil)
	if body := readBody(t, r); r.StatusCode != 502 || strings.Contains(body, "10.0.0.7") {
		t.Fatalf("source error: %d %s", r.StatusCode, body)
	}
	if f.mr.Exists("store:dev:product:v2:boom") {
		t.Fatal("a source error was cached")
	}
	req := httptest.NewRequest("GET", "/products/slow", nil)
	ctx, cancel := context.WithTimeout(req.Context(), 50*time.Millisecond)
	defer cancel()
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req.WithContext(ctx))
	if w.Code != 504 {
		t.Fatalf("slow source: %d", w.Code)
	}
}

func TestGetProductRedisDownBypasses(t *testing.T) {
	f := newFixture(t, map[string]string{"REDIS_BREAKER_FAILURES": "2"}, config.ModeLambda)
	f.mr.Close()
	for i := range 4 {
		r := f.do(t, "GET", "/products/prod-0003", nil)
		body := readBody(t, r)
		if r.StatusCode != 200 || r.Header.Get("X-Cache") != "BYPASS" || !strings.Contains(body, `"prod-0003"`) {
			t.Fatalf("call %d: %d %s %s", i, r.StatusCode, r.Header.Get("X-Cache"), body)
		}
	}
	if !f.api.Cache.BreakerOpen() {
		t.Fatal("breaker not open after repeated faults")
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t, map[string]string{"CORS_ALLOW_ORIGINS": "https://shop.example"}, config.ModeLambda)
	pre := f.do(t, "OPTIONS", "/products/prod-0001", nil, "Origin", "https://shop.example", "Access-Control-Request-Method", "GET")
	if pre.StatusCode != 204 || pre.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Fatalf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	get := f.do(t, "GET", "/products/prod-0001", nil, "Origin", "https://shop.example")
	if get.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" || !strings.Contains(get.Header.Get("Access-Control-Expose-Headers"), "X-Cache") {
		t.Fatalf("simple request: %v", get.Header)
	}
	other := f.do(t, "GET", "/products/prod-0001", nil, "Origin", "https://evil.example")
	if other.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("an unlisted origin was allowed")
	}
}

type healthDoc struct {
	Status string
	Output string
	Notes  []string
	Checks map[string][]struct {
		Status        string
		Cause         string
		Output        string
		ObservedValue any
		Details       map[string]any
	}
}

func getHealth(t *testing.T, f *fixture, headers ...string) (int, healthDoc, string) {
	t.Helper()
	r := f.do(t, "GET", "/health", nil, headers...)
	body := readBody(t, r)
	if ct := r.Header.Get("Content-Type"); ct != "application/health+json; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	var d healthDoc
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("health body %q: %v", body, err)
	}
	return r.StatusCode, d, body
}

func TestHealth(t *testing.T) {
	t.Run("dev shows details", func(t *testing.T) {
		f := newFixture(t, nil, config.ModeLambda)
		code, d, _ := getHealth(t, f)
		if code != 200 || d.Status != "pass" || d.Checks["redis"][0].Status != "pass" {
			t.Fatalf("%d %+v", code, d)
		}
		if _, ok := d.Checks["redis:responseTime"]; !ok {
			t.Fatalf("dev stage without details: %+v", d.Checks)
		}
	})
	t.Run("prod is short without token", func(t *testing.T) {
		f := newFixture(t, map[string]string{"STAGE": "prod", "HEALTH_TOKEN": "h3alth"}, config.ModeLambda)
		code, d, body := getHealth(t, f)
		if code != 200 || d.Status != "pass" || len(d.Checks) != 1 || strings.Contains(body, "poolSize") {
			t.Fatalf("public body: %s", body)
		}
		code, d, _ = getHealth(t, f, "Authorization", "Bearer h3alth")
		if code != 200 || d.Checks["redis:connections"] == nil {
			t.Fatalf("token did not unlock details: %+v", d.Checks)
		}
		_, d, _ = getHealth(t, f, "Authorization", "Bearer wrong")
		if len(d.Checks) != 1 {
			t.Fatal("a wrong token unlocked details")
		}
	})
	t.Run("redis down", func(t *testing.T) {
		f := newFixture(t, map[string]string{"STAGE": "prod"}, config.ModeLambda)
		addr := f.mr.Addr()
		f.mr.Close()
		start := time.Now()
		code, d, body := getHealth(t, f)
		if code != 503 || d.Status != "fail" || d.Checks["redis"][0].Cause != "connection_refused" || d.Output == "" {
			t.Fatalf("%d %s", code, body)
		}
		if strings.Contains(body, addr) || strings.Contains(body, "127.0.0.1") || strings.Contains(body, "dial") {
			t.Fatalf("raw error in the body: %s", body)
		}
		if time.Since(start) > 3*time.Second {
			t.Fatal("health took too long")
		}
	})
}

func TestCacheClear(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		mode   config.Mode
		open   bool
		body   string
		header []string
		status int
		left   []string
	}{
		{name: "no token", body: `{"scope":"all"}`, status: 401},
		{name: "wrong token", body: `{"scope":"all"}`, header: []string{"Authorization", "Bearer nope"}, status: 401},
		{name: "all", body: `{"scope":"all"}`, header: []string{"Authorization", "Bearer t0ken"}, status: 200, left: []string{"other:keep"}},
		{name: "scheme in lower case", body: `{"scope":"all"}`, header: []string{"Authorization", "bearer t0ken"}, status: 200, left: []string{"other:keep"}},
		{name: "other scheme", body: `{"scope":"all"}`, header: []string{"Authorization", "Basic t0ken"}, status: 401},
		{name: "products", body: `{"scope":"products"}`, header: []string{"Authorization", "Bearer t0ken"}, status: 200, left: []string{"other:keep", "store:session:1"}},
		{name: "ids", body: `{"ids":["prod-0001"]}`, header: []string{"Authorization", "Bearer t0ken"}, status: 200, left: []string{"other:keep", "store:product:v2:prod-0002", "store:session:1"}},
		{name: "pattern", body: `{"pattern":"session:*"}`, header: []string{"Authorization", "Bearer t0ken"}, status: 200, left: []string{"other:keep", "store:product:v2:prod-0001", "store:product:v2:prod-0002"}},
		{name: "escape pattern", body: `{"pattern":"\\*"}`, header: []string{"Authorization", "Bearer t0ken"}, status: 400},
		{name: "class pattern", body: `{"pattern":"[a-z]*"}`, header: []string{"Authorization", "Bearer t0ken"}, status: 400},
		{name: "bad id", body: `{"ids":["../x"]}`, header: []string{"Authorization", "Bearer t0ken"}, status: 400},
		{name: "two scopes", body: `{"scope":"all","ids":["a"]}`, header: []string{"Authorization", "Bearer t0ken"}, status: 400},
		{name: "unknown field", body: `{"flush":true}`, header: []string{"Authorization", "Bearer t0ken"}, status: 400},
		{name: "invalid json", body: `{"scope":`, header: []string{"Authorization", "Bearer t0ken"}, status: 400},
		{name: "huge body", body: `{"ids":["` + strings.Repeat("a", 1<<20) + `"]}`, header: []string{"Authorization", "Bearer t0ken"}, status: 413},
		{name: "prod refused", body: `{"scope":"all"}`, env: map[string]string{"STAGE": "prod"}, header: []string{"Authorization", "Bearer t0ken"}, status: 403},
		{name: "prod enabled", body: `{"scope":"all"}`, env: map[string]string{"STAGE": "prod", "CACHE_CLEAR_ENABLED": "true"}, header: []string{"Authorization", "Bearer t0ken"}, status: 200, left: []string{"other:keep"}},
		{name: "lambda without token configured", body: `{"scope":"all"}`, env: map[string]string{"CACHE_CLEAR_TOKEN": ""}, status: 403},
		{name: "local run open", body: `{"scope":"all"}`, env: map[string]string{"CACHE_CLEAR_TOKEN": ""}, mode: config.ModeHTTP, open: true, status: 200, left: []string{"other:keep"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.env, tt.mode)
			f.api.OpenClear = tt.open
			f.h = f.api.CacheClear()
			// "store:" in the keys stands for the fixture's prefix, store:<STAGE>:.
			at := func(k string) string {
				if rest, ok := strings.CutPrefix(k, "store:"); ok {
					return f.api.Config.Cache.KeyPrefix + rest
				}
				return k
			}
			if tt.open {
				// The open clear answers only over loopback.
				h := f.h
				f.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.RemoteAddr, r.Host = "127.0.0.1:50000", "localhost:3000"
					h.ServeHTTP(w, r)
				})
			}
			for _, k := range []string{"other:keep", "store:product:v2:prod-0001", "store:product:v2:prod-0002", "store:session:1"} {
				f.mr.Set(at(k), "x")
			}
			r := f.do(t, "POST", "/cache/clear", strings.NewReader(tt.body), append([]string{"Content-Type", "application/json"}, tt.header...)...)
			body := readBody(t, r)
			if r.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, tt.status, body)
			}
			if strings.Contains(body, "t0ken") {
				t.Fatal("token in the body")
			}
			if tt.status != 200 {
				if len(f.mr.Keys()) != 4 {
					t.Fatalf("a refused clear removed keys: %v", f.mr.Keys())
				}
				return
			}
			var resp api.ClearResponse
			if err := json.Unmarshal([]byte(body), &resp); err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, k := range tt.left {
				left = append(left, at(k))
			}
			if got := strings.Join(f.mr.Keys(), ","); got != strings.Join(left, ",") {
				t.Fatalf("left %s, want %s", got, strings.Join(left, ","))
			}
			if int(resp.Deleted) != 4-len(tt.left) {
				t.Fatalf("deleted = %d, want %d", resp.Deleted, 4-len(tt.left))
			}
		})
	}
	t.Run("redis down", func(t *testing.T) {
		f := newFixture(t, nil, config.ModeLambda)
		f.mr.Close()
		r := f.do(t, "POST", "/cache/clear", strings.NewReader(`{"scope":"all"}`), "Authorization", "Bearer t0ken", "Content-Type", "application/json")
		body := readBody(t, r)
		if r.StatusCode != 503 || !strings.Contains(body, "connection_refused") {
			t.Fatalf("%d %s", r.StatusCode, body)
		}
	})
}

// Every error answer has fault's one shape, with the request's id, and a Redis
// failure adds its classified cause, never the raw error.
func TestErrorBodyShape(t *testing.T) {
	tests := []struct {
		name, method, target string
		redisDown            bool
		status               int
		body                 string
	}{
		{"no route", "GET", "/nope", false, 404, `{"error":"no such route","code":"no_route","requestId":"rid-7"}`},
		{"wrong method", "DELETE", "/health", false, 405, `{"error":"method not allowed","code":"method_not_allowed","requestId":"rid-7"}`},
		{"redis down", "POST", "/cache/clear", true, 503,
			`{"error":"Redis is unavailable: Redis refused the connection (nothing listening at the configured address).","code":"redis_unavailable","cause":"connection_refused","requestId":"rid-7"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, config.ModeLambda)
			f.api.RequestID = func(context.Context) string { return "rid-7" }
			if tt.redisDown {
				f.mr.Close()
			}
			r := f.do(t, tt.method, tt.target, strings.NewReader(`{"scope":"all"}`), "Authorization", "Bearer t0ken", "Content-Type", "application/json")
			if body := readBody(t, r); r.StatusCode != tt.status || body != tt.body+"\n" {
				t.Fatalf("got %d %s, want %d %s", r.StatusCode, body, tt.status, tt.body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
}

// FuzzParseClearRequest checks that an accepted body is one JSON object with exactly
// one selector, spelled exactly so and non-empty, which is what the request holds,
// and that nothing accepted leaves the key prefix.
func FuzzParseClearRequest(f *testing.F) {
	for _, s := range []string{"", " ", `{}`, `{"scope":"all"}`, `{"scope":"products"}`, `{"pattern":"product:v2:*"}`,
		`{"ids":["prod-0001","prod-0002"]}`, `{"pattern":"\\*"}`, `{"scope":"../"}`, `[]`, `null`, `{"ids":[]}`,
		`{"pattern":""}`, `{"scope":""}`, `{"ids":null}`, `{"pattern":null}`, `{"IDS":["prod-0001"]}`, `{"Scope":"all"}`,
		`{"scope":"ALL"}`, `{"scope":"all","pattern":""}`, `{"scope":"all","scope":"all"}`, `{"\u0073cope":"all"}`,
		`{"ids":["prod-0001",null]}`, `{"scope":"all"} `, `{"scope":"all"}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := api.ParseClearRequest(body)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "bad clear request: ") || !strings.Contains(msg, `{"scope":"all"}`) {
				t.Fatalf("error %q does not name the accepted forms", msg)
			}
			return
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil || len(fields) != 1 {
			t.Fatalf("accepted %q: not one object with one field (%v)", body, err)
		}
		set := 0
		for name, raw := range fields {
			var want any
			switch name {
			case "scope":
				want = req.Scope
			case "pattern":
				want = req.Pattern
			case "ids":
				want = req.IDs
			default:
				t.Fatalf("accepted %q: field %q", body, name)
			}
			if got, _ := json.Marshal(want); !jsonEqual(t, got, raw) {
				t.Fatalf("accepted %q as %+v", body, req)
			}
		}
		for _, ok := range []bool{req.Scope != "", req.Pattern != "", len(req.IDs) > 0} {
			if ok {
				set++
			}
		}
		if set != 1 {
			t.Fatalf("accepted %q with %d selectors: %+v", body, set, req)
		}
		for _, c := range req.Pattern {
			if strings.ContainsRune(`\[]{}^ `, c) {
				t.Fatalf("accepted pattern %q", req.Pattern)
			}
		}
		if len(req.IDs) > 1000 {
			t.Fatalf("accepted %d ids", len(req.IDs))
		}
		for _, id := range req.IDs {
			if _, err := product.ParseID(id); err != nil {
				t.Fatalf("accepted id %q", id)
			}
		}
		if req.Scope != "" && req.Scope != "all" && req.Scope != "products" {
			t.Fatalf("accepted scope %q", req.Scope)
		}
		// What the API accepts, it accepts again as its own encoding.
		b, _ := json.Marshal(req)
		if again, err := api.ParseClearRequest(b); err != nil || fmt.Sprint(again) != fmt.Sprint(req) {
			t.Fatalf("%s: re-parsed as %+v, %v", b, again, err)
		}
	})
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(tb testing.TB, a, b []byte) bool {
	tb.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}
