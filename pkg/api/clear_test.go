package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/serve"
	"github.com/acmestore/storeapi/pkg/telemetry"
)

// answer is a response as a client sees it, over HTTP or through the Lambda entry.
type answer struct {
	status int
	header http.Header
	body   string
}

// entry is one way to call cacheClear: over HTTP (the handler as the HTTP mode serves
// it) or through the Lambda entry (an API Gateway event built from
// events/cacheclear.v2.json, through serve.NewLambda as the bootstraps run it).
type entry struct {
	name string
	call func(tb testing.TB, ctx context.Context, headers map[string]string, body string) answer
}

// entries returns both ways to call a's cacheClear. Header names are canonical; a
// Content-Type of "-" means none.
func entries(a *api.API) []entry {
	logger := telemetry.NewLogger(io.Discard, slog.LevelError)
	lambda := serve.NewLambda(app.Handler(app.CacheClear, a, logger), app.LambdaOptions(app.CacheClear, logger))
	h := app.Handler(app.CacheClear, a, logger)
	return []entry{
		{"http", func(tb testing.TB, ctx context.Context, headers map[string]string, body string) answer {
			tb.Helper()
			req := httptest.NewRequest("POST", "/cache/clear", strings.NewReader(body)).WithContext(ctx)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header.Set("Content-Type", "application/json")
			for k, v := range headers {
				if v == "-" {
					req.Header.Del(k)
					continue
				}
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			r := w.Result()
			return answer{r.StatusCode, r.Header, readBody(tb, r)}
		}},
		{"lambda", func(tb testing.TB, ctx context.Context, headers map[string]string, body string) answer {
			tb.Helper()
			out, err := lambda.Invoke(ctx, clearEventV2(tb, headers, body))
			if err != nil {
				tb.Fatalf("Invoke: %v", err)
			}
			return decodeProxyResponse(tb, out)
		}},
	}
}

func entryNamed(a *api.API, name string) entry {
	for _, e := range entries(a) {
		if e.name == name {
			return e
		}
	}
	panic("no entry " + name)
}

// clearEventV2 is events/cacheclear.v2.json with the given headers (lower-cased, as
// API Gateway sends them; "-" removes one) and body.
func clearEventV2(tb testing.TB, headers map[string]string, body string) []byte {
	tb.Helper()
	b, err := os.ReadFile("../../events/cacheclear.v2.json")
	if err != nil {
		tb.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		tb.Fatal(err)
	}
	h := ev["headers"].(map[string]any)
	delete(h, "content-length")
	delete(h, "authorization")
	for k, v := range headers {
		k = strings.ToLower(k)
		if v == "-" {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	ev["body"] = body
	ev["isBase64Encoded"] = false
	b, err = json.Marshal(ev)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func decodeProxyResponse(tb testing.TB, out []byte) answer {
	tb.Helper()
	r, err := apptest.DecodeResponse(out)
	if err != nil {
		tb.Fatal(err)
	}
	return answer{status: r.Status, header: r.Header, body: r.Body}
}

// errorBody decodes an error answer, failing unless it has fault's shape.
func errorBody(tb testing.TB, a answer) (msg, code string) {
	tb.Helper()
	var e struct{ Error, Code string }
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error == "" || e.Code == "" {
		tb.Fatalf("not an error body: %v: %.300s", err, a.body)
	}
	return e.Error, e.Code
}

const bearer = "Bearer t0ken"

// seed stores keys under the prefix and one outside it, and returns them all.
func (f *fixture) seed(tb testing.TB) []string {
	tb.Helper()
	keys := []string{"other:keep", f.api.Cache.Key("product:v2:prod-0001"), f.api.Cache.Key("product:v2:prod-0002"), f.api.Cache.Key("session:1")}
	for _, k := range keys {
		if err := f.mr.Set(k, "x"); err != nil {
			tb.Fatal(err)
		}
	}
	slices.Sort(keys)
	return keys
}

// Finding 1: an empty, null or case-variant selector used to clear everything under
// the prefix. Now only exactly one explicit, non-empty selector is accepted.
func TestClearSelectors(t *testing.T) {
	rejected := []struct{ name, body string }{
		{"empty body", ""},
		{"only whitespace", " \n\t"},
		{"null", "null"},
		{"empty object", "{}"},
		{"empty pattern", `{"pattern":""}`},
		{"empty scope", `{"scope":""}`},
		{"null ids", `{"ids":null}`},
		{"null pattern", `{"pattern":null}`},
		{"null scope", `{"scope":null}`},
		{"no ids", `{"ids":[]}`},
		{"a null id", `{"ids":["prod-0001",null]}`},
		{"an empty id", `{"ids":["prod-0001",""]}`},
		{"ids as a string", `{"ids":"prod-0001"}`},
		{"scope as a list", `{"scope":["all"]}`},
		{"upper-case field", `{"IDS":["prod-0001"]}`},
		{"capitalised field", `{"Scope":"all"}`},
		{"upper-case pattern field", `{"PATTERN":"session:*"}`},
		{"field with a Kelvin sign", "{\"patt\u212Arn\":\"x\"}"},
		{"upper-case scope", `{"scope":"ALL"}`},
		{"unknown scope", `{"scope":"everything"}`},
		{"two selectors", `{"scope":"all","pattern":"session:*"}`},
		{"a selector and an empty one", `{"scope":"all","pattern":""}`},
		{"a selector and a null one", `{"ids":["prod-0001"],"scope":null}`},
		{"the same selector twice", `{"scope":"products","scope":"all"}`},
		{"unknown field", `{"scope":"all","flush":true}`},
		{"array", `[{"scope":"all"}]`},
		{"string", `"all"`},
		{"trailing value", `{"scope":"all"} {}`},
		{"trailing garbage", `{"scope":"all"}x`},
		{"1001 ids", `{"ids":[` + strings.Repeat(`"prod-0001",`, 1000) + `"prod-0001"]}`},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, config.ModeLambda)
			before := f.seed(t)
			for _, e := range entries(f.api) {
				a := e.call(t, context.Background(), map[string]string{"Authorization": bearer}, tt.body)
				if a.status != 400 {
					t.Fatalf("%s: status %d, want 400: %s", e.name, a.status, a.body)
				}
				msg, code := errorBody(t, a)
				if code != "invalid_request" {
					t.Fatalf("%s: code %q", e.name, code)
				}
				for _, form := range []string{`{"ids":[`, `{"pattern":`, `{"scope":"products"}`, `{"scope":"all"}`} {
					if !strings.Contains(msg, form) {
						t.Fatalf("%s: the message does not name the form %s: %q", e.name, form, msg)
					}
				}
				if got := f.mr.Keys(); !slices.Equal(got, before) {
					t.Fatalf("%s: a refused clear removed keys: %v", e.name, got)
				}
			}
		})
	}
	accepted := []struct {
		name, body string
		left       []string
	}{
		{"scope all", `{"scope":"all"}`, []string{"other:keep"}},
		{"scope all with spaces", " { \"scope\" : \"all\" } \n", []string{"other:keep"}},
		{"scope products", `{"scope":"products"}`, []string{"other:keep", "session:1"}},
		{"pattern", `{"pattern":"session:*"}`, []string{"other:keep", "product:v2:prod-0001", "product:v2:prod-0002"}},
		{"ids", `{"ids":["prod-0001"]}`, []string{"other:keep", "product:v2:prod-0002", "session:1"}},
		{"escaped field name", `{"\u0069ds":["prod-0001"]}`, []string{"other:keep", "product:v2:prod-0002", "session:1"}},
	}
	for _, tt := range accepted {
		for _, via := range []string{"http", "lambda"} {
			t.Run(tt.name+"/"+via, func(t *testing.T) {
				f := newFixture(t, nil, config.ModeLambda)
				f.seed(t)
				a := entryNamed(f.api, via).call(t, context.Background(), map[string]string{"Authorization": bearer}, tt.body)
				if a.status != 200 {
					t.Fatalf("status %d: %s", a.status, a.body)
				}
				var resp struct{ Complete *bool }
				if err := json.Unmarshal([]byte(a.body), &resp); err != nil || resp.Complete == nil || !*resp.Complete {
					t.Fatalf("body %s: %v", a.body, err)
				}
				var want []string
				for _, k := range tt.left {
					if k != "other:keep" {
						k = f.api.Cache.Key(k)
					}
					want = append(want, k)
				}
				slices.Sort(want)
				if got := f.mr.Keys(); !slices.Equal(got, want) {
					t.Fatalf("left %v, want %v", got, want)
				}
			})
		}
	}
}

// Finding 2: a cross-origin text/plain POST (which browsers send without a preflight)
// cleared the cache. cacheClear now takes only JSON.
func TestClearContentType(t *testing.T) {
	tests := []struct {
		ct     string
		status int
	}{
		{"-", 415},
		{"", 415},
		{"text/plain", 415},
		{"text/plain;charset=UTF-8", 415},
		{"application/x-www-form-urlencoded", 415},
		{"multipart/form-data; boundary=x", 415},
		{"application/jsonx", 415},
		{"application/json-seq", 415},
		{"application/json; charset=latin1", 415},
		{"application/json", 200},
		{"application/json; charset=utf-8", 200},
		{"Application/JSON; charset=UTF-8", 200},
	}
	for _, tt := range tests {
		t.Run(tt.ct, func(t *testing.T) {
			f := newFixture(t, nil, config.ModeLambda)
			for _, e := range entries(f.api) {
				before := f.seed(t)
				a := e.call(t, context.Background(), map[string]string{"Authorization": bearer, "Content-Type": tt.ct}, `{"scope":"all"}`)
				if a.status != tt.status {
					t.Fatalf("%s: status %d, want %d: %s", e.name, a.status, tt.status, a.body)
				}
				if tt.status != 415 {
					continue
				}
				if msg, code := errorBody(t, a); code != "unsupported_media_type" || !strings.Contains(msg, "application/json") {
					t.Fatalf("%s: %q %q", e.name, code, msg)
				}
				if got := f.mr.Keys(); !slices.Equal(got, before) {
					t.Fatalf("%s: a refused clear removed keys: %v", e.name, got)
				}
			}
		})
	}
}

// Finding 2: cacheClear answered Access-Control-Allow-Origin: * to a cross-origin
// POST and to its preflight. CORS stays on getProduct and health.
func TestClearNoCORS(t *testing.T) {
	for _, origins := range []string{"*", "https://shop.example,https://evil.example"} {
		t.Run(origins, func(t *testing.T) {
			f := newFixture(t, map[string]string{"CORS_ALLOW_ORIGINS": origins}, config.ModeLambda)
			f.seed(t)
			for _, h := range []http.Handler{f.api.All(), f.api.CacheClear()} {
				f.h = h
				for _, ct := range []string{"text/plain", "application/json"} {
					r := f.do(t, "POST", "/cache/clear", strings.NewReader(`{"scope":"products"}`), "Origin", "https://evil.example", "Content-Type", ct, "Authorization", bearer)
					if acao := r.Header.Get("Access-Control-Allow-Origin"); acao != "" {
						t.Fatalf("POST (%s): Access-Control-Allow-Origin %q (status %d)", ct, acao, r.StatusCode)
					}
				}
				pre := f.do(t, "OPTIONS", "/cache/clear", nil, "Origin", "https://evil.example",
					"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
				for k := range pre.Header {
					if strings.HasPrefix(k, "Access-Control-") {
						t.Fatalf("preflight: %s: %q (status %d)", k, pre.Header.Get(k), pre.StatusCode)
					}
				}
				if pre.StatusCode < 400 {
					t.Fatalf("preflight answered %d", pre.StatusCode)
				}
			}
			// Browsers still read products and health.
			f.h = f.api.All()
			for _, target := range []string{"/products/prod-0001", "/health"} {
				r := f.do(t, "GET", target, nil, "Origin", "https://evil.example")
				if r.Header.Get("Access-Control-Allow-Origin") == "" {
					t.Fatalf("GET %s: no Access-Control-Allow-Origin", target)
				}
				pre := f.do(t, "OPTIONS", target, nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "GET")
				if pre.StatusCode != 204 || pre.Header.Get("Access-Control-Allow-Origin") == "" {
					t.Fatalf("preflight %s: %d %v", target, pre.StatusCode, pre.Header)
				}
			}
			for _, e := range entries(f.api) {
				a := e.call(t, context.Background(), map[string]string{"Authorization": bearer, "Origin": "https://evil.example"}, `{"ids":["prod-0001"]}`)
				if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "" {
					t.Fatalf("%s: %d, Access-Control-Allow-Origin %q", e.name, a.status, a.header.Get("Access-Control-Allow-Origin"))
				}
			}
		})
	}
}

// The local run's open cacheClear (no token) answers only requests that reach it over
// loopback for a loopback host name: a page that rebinds its own host name to
// 127.0.0.1 sends its own Host header.
func TestOpenClearOnlyFromLoopback(t *testing.T) {
	tests := []struct {
		remote, host string
		status       int
	}{
		{"127.0.0.1:5000", "localhost:3000", 200},
		{"127.0.0.1:5000", "127.0.0.1:3000", 200},
		{"[::1]:5000", "[::1]:3000", 200},
		{"127.0.0.1:5000", "localhost", 200},
		{"127.0.0.1:5000", "evil.example:3000", 403},
		{"127.0.0.1:5000", "localhost.evil.example", 403},
		{"192.0.2.7:5000", "localhost:3000", 403},
	}
	for _, tt := range tests {
		t.Run(tt.remote+"/"+tt.host, func(t *testing.T) {
			f := newFixture(t, map[string]string{"CACHE_CLEAR_TOKEN": ""}, config.ModeHTTP)
			f.api.OpenClear = true
			before := f.seed(t)
			req := httptest.NewRequest("POST", "/cache/clear", strings.NewReader(`{"scope":"all"}`))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr, req.Host = tt.remote, tt.host
			w := httptest.NewRecorder()
			f.api.All().ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status != 200 && !slices.Equal(f.mr.Keys(), before) {
				t.Fatal("a refused clear removed keys")
			}
		})
	}
}

// Finding 7: in prod with cacheClear disabled, a wrong token got 401 and the right one
// 403, which confirmed a guessed token. Every request now gets the same 403.
func TestClearDisabledInProdIsOneAnswer(t *testing.T) {
	f := newFixture(t, map[string]string{"STAGE": "prod"}, config.ModeLambda)
	before := f.seed(t)
	auths := []string{"-", bearer, "Bearer wrong", "bearer t0ken", "Bearer t0ke", "Basic dDBrZW4=", "t0ken"}
	for _, e := range entries(f.api) {
		var first answer
		for i, auth := range auths {
			for _, body := range []string{`{"scope":"all"}`, "", "garbage"} {
				a := e.call(t, context.Background(), map[string]string{"Authorization": auth, "Content-Type": "application/json"}, body)
				if a.status != 403 {
					t.Fatalf("%s: Authorization %q: status %d, want 403: %s", e.name, auth, a.status, a.body)
				}
				for _, h := range []string{"Date", "X-Request-Id", "Content-Length"} {
					a.header.Del(h)
				}
				if i == 0 {
					first = a
					continue
				}
				if a.body != first.body || !equalHeaders(a.header, first.header) {
					t.Fatalf("%s: Authorization %q: answer differs from that without a token:\n%v %s\n%v %s", e.name, auth, a.header, a.body, first.header, first.body)
				}
			}
		}
	}
	if !slices.Equal(f.mr.Keys(), before) {
		t.Fatal("a refused clear removed keys")
	}
	// Enabled, the token is checked as before.
	f = newFixture(t, map[string]string{"STAGE": "prod", "CACHE_CLEAR_ENABLED": "true"}, config.ModeLambda)
	for _, e := range entries(f.api) {
		if a := e.call(t, context.Background(), map[string]string{"Authorization": "Bearer wrong"}, `{"scope":"all"}`); a.status != 401 {
			t.Fatalf("%s: enabled, wrong token: %d", e.name, a.status)
		}
		if a := e.call(t, context.Background(), map[string]string{"Authorization": bearer}, `{"scope":"all"}`); a.status != 200 {
			t.Fatalf("%s: enabled, right token: %d %s", e.name, a.status, a.body)
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// Finding 4: a clear that ran out of time was answered 503 "Redis did not answer in
// time" while Redis was fine. It now answers 200 with "complete": false and the count
// removed so far, before the deadline, and calling again finishes the job. It runs on
// a private redis-server filled with bulkKeys keys.
func TestClearOutOfTime(t *testing.T) {
	const bulkKeys = 200_000
	srv := redistest.Start(t, "--enable-debug-command", "local")
	for _, e := range []string{"http", "lambda"} {
		t.Run(e, func(t *testing.T) {
			// Timeouts that a loaded test machine does not reach: only the request's
			// deadline is to stop this clear.
			a := apptest.Build(t, map[string]string{"REDIS_URL": "redis://" + srv.Addr(), "CACHE_CLEAR_TOKEN": "t0ken",
				"REDIS_READ_TIMEOUT": "3s", "REDIS_BREAKER_FAILURES": "100"}, config.ModeLambda)
			call := entryNamed(a, e)
			bulk := a.Cache.Key("bulk")
			srv.MustDo("DEBUG", "POPULATE", strconv.Itoa(bulkKeys), bulk)
			srv.MustDo("SET", "other:keep", "x")
			total := dbsize(t, srv)
			if total != bulkKeys+1 {
				t.Fatalf("DBSIZE %d after DEBUG POPULATE", total)
			}

			// Through the Lambda entry the request's deadline is the invocation's less
			// serve's margin (200ms); over HTTP it is the request context's.
			budget := 120 * time.Millisecond
			if e == "lambda" {
				budget += 200 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), budget)
			defer cancel()
			deadline, _ := ctx.Deadline()
			ans := call.call(t, ctx, map[string]string{"Authorization": bearer}, `{"scope":"all"}`)
			// The clear stops a margin before the deadline to answer in; a machine
			// that starves this process can still make the answer late.
			if late := time.Since(deadline); late > 500*time.Millisecond {
				t.Errorf("answered %v after the deadline", late)
			}
			if ans.status != 200 {
				t.Fatalf("status %d, want 200: %s", ans.status, ans.body)
			}
			var resp struct {
				Deleted  int64
				Complete *bool
				Message  string
			}
			if err := json.Unmarshal([]byte(ans.body), &resp); err != nil || resp.Complete == nil {
				t.Fatalf("body %s: %v", ans.body, err)
			}
			t.Logf("first call: %s", strings.TrimSpace(ans.body))
			if *resp.Complete || resp.Deleted <= 0 || resp.Deleted >= bulkKeys || !strings.Contains(resp.Message, "again") {
				t.Fatalf("want an incomplete clear with a count and a hint to call again: %s", ans.body)
			}
			// The count is at most what is gone: the replies of the page that the
			// deadline cut (one UNLINK pipeline of one SCAN page, about 500 keys;
			// SCAN's COUNT is a hint) are lost, though Redis may have run them.
			const page = 1000
			if left := dbsize(t, srv); left > total-resp.Deleted || left < total-resp.Deleted-page {
				t.Fatalf("%d keys left, %d reported deleted of %d", left, resp.Deleted, total)
			}
			if !a.Cache.IsConnected() || a.Cache.BreakerOpen() {
				t.Fatal("an incomplete clear counted as a Redis fault")
			}

			// Calling again finishes the job.
			deleted, incomplete := resp.Deleted, int64(1)
			for i := 0; ; i++ {
				if i == 50 {
					t.Fatal("no complete clear after 50 calls")
				}
				ans = call.call(t, context.Background(), map[string]string{"Authorization": bearer}, `{"scope":"all"}`)
				if ans.status != 200 {
					t.Fatalf("status %d: %s", ans.status, ans.body)
				}
				resp.Complete = nil
				if err := json.Unmarshal([]byte(ans.body), &resp); err != nil || resp.Complete == nil {
					t.Fatalf("body %s: %v", ans.body, err)
				}
				deleted += resp.Deleted
				if *resp.Complete {
					break
				}
				incomplete++
			}
			if deleted > bulkKeys || deleted < bulkKeys-incomplete*page || dbsize(t, srv) != 1 {
				t.Fatalf("deleted %d in all (%d incomplete calls), %d keys left; want %d and other:keep", deleted, incomplete, dbsize(t, srv), bulkKeys)
			}
		})
	}
}

func dbsize(tb testing.TB, srv *redistest.Server) int64 {
	tb.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(srv.MustDo("DBSIZE")), 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// A Redis that does not answer is still a 503 (timeout), not an incomplete clear.
func TestClearUnresponsiveRedis(t *testing.T) {
	srv := redistest.Start(t)
	a := apptest.Build(t, map[string]string{"REDIS_URL": "redis://" + srv.Addr(), "CACHE_CLEAR_TOKEN": "t0ken", "REDIS_BREAKER_FAILURES": "100"}, config.ModeLambda)
	srv.MustDo("SET", a.Cache.Key("k"), "v")
	srv.Pause()
	defer srv.Resume()
	for _, e := range entries(a) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ans := e.call(t, ctx, map[string]string{"Authorization": bearer}, `{"scope":"all"}`)
		cancel()
		if ans.status != 503 || !bytes.Contains([]byte(ans.body), []byte(`"cause":"timeout"`)) {
			t.Fatalf("%s: %d %s", e.name, ans.status, ans.body)
		}
	}
}
