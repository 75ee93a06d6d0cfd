package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/logbuf"
)

const testRoute = "GET /products/{id}"

func testOptions(out io.Writer) Options {
	return Options{
		Logger:    NewLogger(out, slog.LevelInfo),
		Function:  "getProduct",
		Stage:     "test",
		Namespace: "StoreAPI",
		RequestID: func(context.Context) string { return "req-1" },
		ColdStart: func(context.Context) bool { return true },
	}
}

// productMux routes testRoute to h, as package api does: the handler records the
// route itself.
func productMux(h http.HandlerFunc) http.Handler {
	m := http.NewServeMux()
	m.HandleFunc(testRoute, func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).SetRoute(testRoute)
		h(w, r)
	})
	return m
}

// serveOne serves one request through Middleware and returns its line.
func serveOne(t *testing.T, o Options, out *logbuf.Buffer, h http.Handler, req *http.Request) (map[string]any, *httptest.ResponseRecorder) {
	t.Helper()
	rec := httptest.NewRecorder()
	before := time.Now()
	Middleware(h, o).ServeHTTP(rec, req)
	line := oneLine(t, out.String())
	ts := checkLambdaFormat(t, line, true)
	if ts.Before(before.Truncate(time.Millisecond)) || ts.After(time.Now()) {
		t.Errorf("timestamp %v is not the time of the request", ts)
	}
	checkEMF(t, line, time.Now())
	if aws := line["_aws"].(map[string]any); int64(aws["Timestamp"].(float64)) != ts.UnixMilli() {
		t.Errorf("_aws.Timestamp = %v, timestamp = %v: want the same instant", aws["Timestamp"], ts.UnixMilli())
	}
	return line, rec
}

func TestMiddlewareLine(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		handler http.HandlerFunc
		want    map[string]any
		metrics []string
		absent  []string
	}{
		{
			name: "hit",
			path: "/products/p1",
			handler: func(w http.ResponseWriter, r *http.Request) {
				FromContext(r.Context()).SetCache("HIT", "store:product:v1:p1", 800*time.Microsecond, 0)
				_, _ = io.WriteString(w, `{"id":"p1"}`)
			},
			want: map[string]any{
				"level": "INFO", "message": "request", "requestId": "req-1", "coldStart": true,
				"function": "getProduct", "stage": "test", "method": "GET", "route": testRoute,
				"status": 200.0, "bytes": 11.0, "cache": "HIT", "key": "store:product:v1:p1",
				"CacheHit": 1.0, "CacheMiss": 0.0, "CacheBypass": 0.0, "CacheStale": 0.0, "RedisLatency": 0.8, "ServerError": 0.0,
			},
			metrics: []string{metricHit, metricMiss, metricBypass, metricStale, metricLatency, metricRedis, metricServerError},
			absent:  []string{"SourceLatency", "cause", "error", "panic"},
		},
		{
			name: "miss",
			path: "/products/p2",
			handler: func(w http.ResponseWriter, r *http.Request) {
				FromContext(r.Context()).SetCache("miss", "k2", 1500*time.Microsecond, 12*time.Millisecond)
				w.WriteHeader(http.StatusOK)
			},
			want: map[string]any{
				"level": "INFO", "status": 200.0, "bytes": 0.0, "cache": "MISS",
				"CacheHit": 0.0, "CacheMiss": 1.0, "CacheBypass": 0.0, "CacheStale": 0.0, "RedisLatency": 1.5, "SourceLatency": 12.0,
			},
			metrics: []string{metricHit, metricMiss, metricBypass, metricStale, metricLatency, metricRedis, metricSource, metricServerError},
		},
		{
			name: "bypass",
			path: "/products/p3",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rec := FromContext(r.Context())
				rec.SetCache("BYPASS", "k3", 0, 3*time.Millisecond)
				rec.SetCause("timeout")
				rec.Add(slog.String("redisError", "dial tcp: i/o timeout"))
				w.WriteHeader(http.StatusOK)
			},
			want: map[string]any{
				"level": "INFO", "cache": "BYPASS", "cause": "timeout", "redisError": "dial tcp: i/o timeout",
				"CacheHit": 0.0, "CacheMiss": 0.0, "CacheBypass": 1.0, "CacheStale": 0.0, "SourceLatency": 3.0,
			},
			metrics: []string{metricHit, metricMiss, metricBypass, metricStale, metricLatency, metricSource, metricServerError},
			absent:  []string{"RedisLatency"},
		},
		{
			name: "no cache outcome",
			path: "/products/bad",
			handler: func(w http.ResponseWriter, r *http.Request) {
				FromContext(r.Context()).SetError("invalid_request")
				w.WriteHeader(http.StatusBadRequest)
			},
			want:    map[string]any{"level": "INFO", "status": 400.0, "error": "invalid_request", "ServerError": 0.0},
			metrics: []string{metricLatency, metricServerError},
			absent:  []string{"cache", "key", "CacheHit", "CacheMiss", "CacheBypass", "CacheStale"},
		},
		{
			name: "server error",
			path: "/products/p5",
			handler: func(w http.ResponseWriter, r *http.Request) {
				FromContext(r.Context()).SetError("internal")
				w.WriteHeader(http.StatusInternalServerError)
			},
			want:    map[string]any{"level": "ERROR", "status": 500.0, "error": "internal", "ServerError": 1.0},
			metrics: []string{metricLatency, metricServerError},
		},
		{
			name:   "unmatched path",
			path:   "/nowhere/../../etc/passwd",
			want:   map[string]any{"level": "INFO", "status": 404.0},
			absent: []string{"route"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &logbuf.Buffer{}
			h := http.Handler(http.NotFoundHandler())
			if tt.handler != nil {
				h = productMux(tt.handler)
			}
			line, _ := serveOne(t, testOptions(out), out, h, httptest.NewRequest(http.MethodGet, tt.path, nil))
			for k, v := range tt.want {
				if line[k] != v {
					t.Errorf("%s = %#v, want %#v", k, line[k], v)
				}
			}
			for _, k := range tt.absent {
				if v, ok := line[k]; ok {
					t.Errorf("%s = %#v, want it left out", k, v)
				}
			}
			if tt.metrics != nil {
				got := checkEMF(t, line, time.Now())
				if !slices.Equal(got, tt.metrics) {
					t.Errorf("declared metrics = %v, want %v", got, tt.metrics)
				}
			}
			if lat, _ := line["Latency"].(float64); lat < 0 {
				t.Errorf("Latency = %v", lat)
			}
			if strings.Contains(out.String(), "passwd") {
				t.Errorf("the raw path was logged: %s", out)
			}
		})
	}
}

// TestMiddlewareRouteFromMux covers a handler that does not call SetRoute: the
// pattern comes from the mux directly inside Middleware.
func TestMiddlewareRouteFromMux(t *testing.T) {
	out := &logbuf.Buffer{}
	m := http.NewServeMux()
	m.HandleFunc(testRoute, func(w http.ResponseWriter, r *http.Request) {})
	line, _ := serveOne(t, testOptions(out), out, m, httptest.NewRequest(http.MethodGet, "/products/x", nil))
	if line["route"] != testRoute {
		t.Errorf("route = %#v, want %q", line["route"], testRoute)
	}
}

func TestMiddlewarePanic(t *testing.T) {
	out := &logbuf.Buffer{}
	h := Middleware(productMux(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).SetCache(Hit, "k", time.Millisecond, 0)
		panic("boom")
	}), testOptions(out))
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %#v, want the handler's panic to go on", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/products/p", nil))
	}()
	line := oneLine(t, out.String())
	checkLambdaFormat(t, line, true)
	checkEMF(t, line, time.Now())
	for k, v := range map[string]any{"level": "ERROR", "status": 500.0, "panic": true, "ServerError": 1.0, "CacheHit": 1.0} {
		if line[k] != v {
			t.Errorf("%s = %#v, want %#v", k, line[k], v)
		}
	}
}

func TestMiddlewareOneLinePerRequest(t *testing.T) {
	out := &logbuf.Buffer{}
	h := Middleware(productMux(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).SetCache(Hit, "k", time.Millisecond, 0)
	}), testOptions(out))
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/products/p", nil))
		})
	}
	wg.Wait()
	lines := logLines(t, out.String())
	if len(lines) != n {
		t.Fatalf("%d requests wrote %d lines", n, len(lines))
	}
	for _, l := range lines {
		checkLambdaFormat(t, l, true)
		checkEMF(t, l, time.Now())
	}
}

// TestMiddlewareNoSecrets puts secrets where a client can: headers, query, path,
// method. None may reach the line.
func TestMiddlewareNoSecrets(t *testing.T) {
	out := &logbuf.Buffer{}
	h := productMux(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).SetCache(Miss, "k", time.Millisecond, time.Millisecond)
	})
	req := httptest.NewRequest(http.MethodGet, "/products/secret-in-path?token=secret-in-query", nil)
	req.Header.Set("Authorization", "Bearer secret-in-header")
	req.Header.Set("Cookie", "session=secret-in-cookie")
	req.Header.Set("X-Api-Key", "secret-in-key")
	serveOne(t, testOptions(out), out, h, req)

	req = httptest.NewRequest("SECRET-IN-METHOD", "/products/x", nil)
	req.Header.Set("Authorization", "Bearer secret-in-header")
	before := len(out.String())
	Middleware(h, testOptions(out)).ServeHTTP(httptest.NewRecorder(), req)
	if line := oneLine(t, out.String()[before:]); line["method"] != "OTHER" {
		t.Errorf("method = %#v, want OTHER", line["method"])
	}

	if s := strings.ToLower(out.String()); strings.Contains(s, "secret") || strings.Contains(s, "bearer") {
		t.Errorf("a secret from the request reached the log:\n%s", out)
	}
}

func TestMiddlewareWritesWhateverTheLevel(t *testing.T) {
	out := &logbuf.Buffer{}
	o := testOptions(out)
	o.Logger = NewLogger(out, slog.LevelError)
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.Logger.InfoContext(r.Context(), "dropped")
	}), o)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if line := oneLine(t, out.String()); line["message"] != "request" {
		t.Errorf("got %v, want the request line only", line)
	}
}

func TestMiddlewareDefaults(t *testing.T) {
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "fn-from-env")
	out := &logbuf.Buffer{}
	old := slog.Default()
	slog.SetDefault(NewLogger(out, nil))
	defer restoreDefault(old)

	Middleware(http.NotFoundHandler(), Options{}).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	line := oneLine(t, out.String())
	checkLambdaFormat(t, line, false)
	checkEMF(t, line, time.Now())
	want := map[string]any{"function": "fn-from-env", "stage": "unknown", "coldStart": false}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %#v, want %#v", k, line[k], v)
		}
	}
	if _, ok := line["requestId"]; ok {
		t.Errorf("requestId = %#v without a RequestID func", line["requestId"])
	}
	ns := line["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Namespace"]
	if ns != "StoreAPI" {
		t.Errorf("Namespace = %#v, want StoreAPI", ns)
	}
}

// TestRecordAdd covers extra attributes: groups, values resolved by the handler,
// more than the inline room, and keys that the line uses itself.
func TestRecordAdd(t *testing.T) {
	out := &logbuf.Buffer{}
	h := productMux(func(w http.ResponseWriter, r *http.Request) {
		rec := FromContext(r.Context())
		rec.SetCache(Hit, "k", time.Millisecond, 0)
		rec.Add(slog.Int("status", 7), slog.Int("CacheHit", 0), slog.String("_aws", "x"), slog.String("msg", "m"))
		rec.Add(slog.Group("source", slog.String("name", "catalog"), slog.Int("tries", 2)))
		rec.Add(slog.String("again", "first"), slog.String("again", "second"))
		for i := range 40 {
			rec.Add(slog.Int("n"+strings.Repeat("x", i), i))
		}
		w.WriteHeader(http.StatusAccepted)
	})
	line, _ := serveOne(t, testOptions(out), out, h, httptest.NewRequest(http.MethodGet, "/products/p", nil))
	want := map[string]any{
		"status": 202.0, "attr.status": 7.0, "CacheHit": 1.0, "attr.CacheHit": 0.0,
		"attr._aws": "x", "attr.msg": "m", "n": 0.0, "n" + strings.Repeat("x", 39): 39.0,
		"again": "second",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %#v, want %#v", k, line[k], v)
		}
	}
	if g, _ := line["source"].(map[string]any); g["name"] != "catalog" || g["tries"] != 2.0 {
		t.Errorf("source = %#v, want the group", line["source"])
	}
}

// TestRecordConcurrentUse runs under -race: a handler's goroutines use the Record
// during the request, and one outlives it.
func TestRecordConcurrentUse(t *testing.T) {
	out := &logbuf.Buffer{}
	late := make(chan struct{})
	lateDone := make(chan struct{})
	h := productMux(func(w http.ResponseWriter, r *http.Request) {
		rec := FromContext(r.Context())
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				rec.Add(slog.Int("worker", i))
				rec.SetCause("timeout")
				rec.SetCache(Miss, "k", time.Millisecond, time.Millisecond)
			})
		}
		wg.Wait()
		go func() {
			<-late
			rec.SetError("too late")
			rec.Add(slog.String("late", "yes"))
			rec.SetRoute("late")
			close(lateDone)
		}()
	})
	line, _ := serveOne(t, testOptions(out), out, h, httptest.NewRequest(http.MethodGet, "/products/p", nil))
	close(late)
	<-lateDone
	if _, ok := line["worker"].(float64); !ok || line["cause"] != "timeout" || line["cache"] != "MISS" {
		t.Errorf("line = %v", line)
	}
	if _, ok := line["error"]; ok {
		t.Errorf("a call after the line was written changed it: %v", line)
	}
	if n := len(logLines(t, out.String())); n != 1 {
		t.Errorf("%d lines, want 1", n)
	}
}

func TestFromContextWithoutMiddleware(t *testing.T) {
	var nilCtx context.Context
	for _, ctx := range []context.Context{context.Background(), nilCtx} {
		rec := FromContext(ctx)
		if rec == nil {
			t.Fatal("FromContext returned nil")
		}
		rec.SetRoute("r")
		rec.SetCache(Hit, "k", 1, 1)
		rec.SetCause("c")
		rec.SetError("e")
		rec.Add(slog.String("a", "b"))
		if rec.route != "" || rec.cache != "" || len(rec.attrs) != 0 {
			t.Errorf("the discard record kept a value: %+v", rec)
		}
	}
	var nilRec *Record
	nilRec.SetCache(Hit, "k", 1, 1)
	nilRec.Add(slog.String("a", "b"))

	// A handler tested without the middleware works as it would with it.
	h := productMux(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).SetCache(Hit, "k", time.Millisecond, 0)
		w.WriteHeader(http.StatusNoContent)
	})
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/products/p", nil))
	if rr.Code != http.StatusNoContent {
		t.Errorf("status = %d", rr.Code)
	}
}

// TestResponseWriter runs a real server: httptest.ResponseRecorder takes a 1xx
// status for the final one.
func TestResponseWriter(t *testing.T) {
	out := &logbuf.Buffer{}
	var flushed, controlled, deadline bool
	srv := httptest.NewServer(Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "abc")
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
			flushed = true
		}
		rc := http.NewResponseController(w)
		controlled = rc.Flush() == nil
		// Only the server's own writer has deadlines: this reaches it through Unwrap.
		deadline = rc.SetWriteDeadline(time.Now().Add(time.Minute)) == nil
		w.WriteHeader(http.StatusTeapot) // superfluous: the status is out
		_, _ = io.WriteString(w, "de")
	}), testOptions(out)))
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	srv.Close()
	if !flushed || !controlled || !deadline {
		t.Errorf("Flusher %v, ResponseController.Flush %v, SetWriteDeadline %v: want all true", flushed, controlled, deadline)
	}
	if resp.StatusCode != http.StatusOK || string(body) != "abcde" {
		t.Errorf("response %d %q, want 200 \"abcde\"", resp.StatusCode, body)
	}
	line := oneLine(t, out.String())
	if line["status"] != 200.0 || line["bytes"] != 5.0 {
		t.Errorf("status = %v, bytes = %v, want 200 and 5", line["status"], line["bytes"])
	}
}

func TestMillis(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                      "0",
		1500 * time.Nanosecond: "0.001",
		800 * time.Microsecond: "0.8",
		12*time.Millisecond + 345*time.Microsecond: "12.345",
		3 * time.Second: "3000",
		-time.Second:    "0",
	} {
		if b := appendJSONFloat(nil, millis(d)); string(b) != want {
			t.Errorf("%v: %s, want %s", d, b, want)
		}
	}
}

// BenchmarkMiddleware measures the cost of the request line on a cache hit: the
// Record, the request copy, and the line through NewLogger's handler to io.Discard.
// "handler only" is the same handler without the middleware (its Record calls are
// no-ops then).
func BenchmarkMiddleware(b *testing.B) {
	opts := Options{
		Logger:    NewLogger(io.Discard, slog.LevelInfo),
		Function:  "getProduct",
		Stage:     "prod",
		Namespace: "StoreAPI",
		RequestID: func(context.Context) string { return "8f2c7d1e-6b0a-4a53-9d38-5b1f0c2e9a47" },
		ColdStart: func(context.Context) bool { return false },
	}
	body := []byte(`{"id":"prod-0001","name":"Meridian Rugged Neoprene Yoga Mat","price":{"amount":10195,"currency":"USD"}}`)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := FromContext(r.Context())
		rec.SetRoute(testRoute)
		rec.SetCache(Hit, "store:product:v1:prod-0001", 420*time.Microsecond, 0)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	req := httptest.NewRequest(http.MethodGet, "/products/prod-0001", nil)
	w := &nopWriter{h: http.Header{}}

	b.Run("handler only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			handler.ServeHTTP(w, req)
		}
	})
	b.Run("with middleware", func(b *testing.B) {
		h := Middleware(handler, opts)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
	})
	b.Run("with middleware and extra attrs", func(b *testing.B) {
		h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := FromContext(r.Context())
			rec.SetCache(Bypass, "store:product:v1:prod-0001", 0, 2*time.Millisecond)
			rec.SetCause("timeout")
			rec.Add(slog.String("redisError", "dial tcp 10.0.0.1:6379: i/o timeout"))
			handler(w, r)
		}), opts)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
	})
}
