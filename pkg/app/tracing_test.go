package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/logbuf"
	"github.com/acmestore/storeapi/pkg/internal/otlptest"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/telemetry"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// tracedEnv is the environment of an App on the private Redis at addr that sends its
// spans to rcv.
func tracedEnv(addr string, rcv *otlptest.Receiver) map[string]string {
	return map[string]string{
		"REDIS_URL":                   "redis://" + addr,
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL,
		// In-process tier off: a HIT is then a Redis GET in every mode.
		"CACHE_L1": "off",
	}
}

// v2Event is an HTTP API event for GET /products/{id}.
func v2Event(tb testing.TB, id, requestID string) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]any{
		"version": "2.0", "routeKey": "GET /products/{id}", "rawPath": "/products/" + id,
		"headers": map[string]string{"accept": "application/json"},
		"requestContext": map[string]any{
			"requestId": requestID, "stage": "$default",
			"http": map[string]string{"method": "GET", "path": "/products/" + id},
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// requestSpan returns the one server span among spans whose trace is traceID, and
// fails the test unless there is exactly one.
func requestSpan(tb testing.TB, spans []otlptest.Span, traceID string) otlptest.Span {
	tb.Helper()
	var found []otlptest.Span
	for _, s := range spans {
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER && s.TraceID == traceID {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("%d server spans in trace %s, want 1; spans %s", len(found), traceID, otlptest.Names(spans))
	}
	return found[0]
}

// checkTree checks the request span's attributes and its children: the cache outcome,
// the status, the cold start, and which kinds of child span it has (Redis commands,
// the source fetch) and which it must not have.
func checkTree(tb testing.TB, spans []otlptest.Span, req otlptest.Span, outcome, cold string, wantSource, wantRedisOK, wantRedisErr bool) {
	tb.Helper()
	for k, want := range map[string]string{
		"faas.name":                 "getProduct",
		"http.route":                "GET /products/{id}",
		"http.request.method":       "GET",
		"http.response.status_code": "200",
		"cache.outcome":             outcome,
		"faas.coldstart":            cold,
	} {
		if got := req.Attrs[k]; got != want {
			tb.Errorf("%s span: %s = %q, want %q", outcome, k, got, want)
		}
	}
	if req.Name != "GET /products/{id}" || req.Error {
		tb.Errorf("%s span: name %q error %v", outcome, req.Name, req.Error)
	}
	var source, redisOK, redisErr int
	for _, c := range otlptest.Children(spans, req) {
		switch {
		case c.Name == "product.source":
			source++
			if c.Attrs["product.id"] == "" || c.Kind != tracepb.Span_SPAN_KIND_CLIENT {
				tb.Errorf("source span: %+v", c)
			}
		case c.Attrs["db.system"] == "redis":
			if c.Attrs["db.statement"] != "" {
				tb.Errorf("redis span %s carries the command's arguments", c.Name)
			}
			switch {
			case c.Error && strings.HasPrefix(c.ErrorMessage, "NOSCRIPT"):
				// The first EVALSHA of a script, which go-redis follows with EVAL.
			case c.Error:
				redisErr++
			default:
				redisOK++
			}
		default:
			tb.Errorf("%s: unexpected child span %q", outcome, c.Name)
		}
		if !c.Start.Before(req.End) || c.Start.Before(req.Start) {
			tb.Errorf("child %s does not start inside its parent", c.Name)
		}
	}
	if (source > 0) != wantSource || (redisOK > 0) != wantRedisOK || (redisErr > 0) != wantRedisErr {
		tb.Errorf("%s: children %s: %d source, %d redis ok, %d redis failed; want source %v, redis ok %v, redis failed %v",
			outcome, otlptest.Names(otlptest.Children(spans, req)), source, redisOK, redisErr, wantSource, wantRedisOK, wantRedisErr)
	}
}

// traceIDOf returns the traceId of the last request line in log.
func traceIDOf(tb testing.TB, log string) string {
	tb.Helper()
	lines := strings.Split(strings.TrimSpace(log), "\n")
	var line struct {
		Message string `json:"message"`
		TraceID string `json:"traceId"`
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if err := json.Unmarshal([]byte(lines[i]), &line); err == nil && line.Message == "request" {
			return line.TraceID
		}
	}
	tb.Fatalf("no request line in %q", log)
	return ""
}

// TestTracingLambda drives the Lambda entry in-process: each invocation's spans are
// at the receiver when Invoke returns (the batch processor alone would hold them
// for 5 s), children of the invocation's X-Ray trace, with the tree of a MISS, a
// HIT, and a BYPASS once Redis is stopped.
func TestTracingLambda(t *testing.T) {
	srv := redistest.Start(t)
	rcv := otlptest.Start(t)
	a := newApp(t, tracedEnv(srv.Addr(), rcv), config.ModeLambda)
	var log logbuf.Buffer
	l := a.Lambda(app.GetProduct, telemetry.NewLogger(&log, slog.LevelInfo))

	invoke := func(n int, id string) (traceID, parent string) {
		t.Helper()
		traceID = fmt.Sprintf("6925fa13%024x", n)
		parent = fmt.Sprintf("%016x", 0xabc0+n)
		// What aws-lambda-go sets for each invocation.
		t.Setenv("_X_AMZN_TRACE_ID", "Root=1-"+traceID[:8]+"-"+traceID[8:]+";Parent="+parent+";Sampled=1;Lineage=a:1")
		out, err := l.Invoke(context.Background(), v2Event(t, id, fmt.Sprintf("req-%d", n)))
		if err != nil {
			t.Fatal(err)
		}
		var resp struct{ StatusCode int }
		if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("invoke %d: %s", n, out)
		}
		if got := traceIDOf(t, log.String()); got != traceID {
			t.Errorf("request line traceId %q, want %q", got, traceID)
		}
		return traceID, parent
	}

	for _, step := range traceSteps {
		if step.down {
			srv.Stop()
		}
		n := rcv.Requests()
		traceID, parent := invoke(rcv.Requests()+len(step.outcome), "prod-0007")
		if rcv.Requests() == n {
			t.Fatalf("%s: no export during the invocation", step.outcome)
		}
		spans := rcv.Spans()
		req := requestSpan(t, spans, traceID)
		if req.ParentSpanID != parent {
			t.Errorf("%s: request span's parent %s, want the X-Ray Parent %s", step.outcome, req.ParentSpanID, parent)
		}
		if req.Resource["service.name"] == "" {
			t.Errorf("no service.name on the resource: %v", req.Resource)
		}
		checkTree(t, spans, req, step.outcome, step.cold, step.wantSource, step.wantRedisOK, step.wantRedisErr)
		rcv.Reset()
	}
}

// traceSteps are the requests both tracing tests make, in order, and the span tree
// each must leave: a MISS (cold), a HIT, and a BYPASS with Redis stopped.
var traceSteps = []struct {
	outcome, cold                               string
	wantSource, wantRedisOK, wantRedisErr, down bool
}{
	{outcome: "MISS", cold: "true", wantSource: true, wantRedisOK: true},
	{outcome: "HIT", cold: "false", wantRedisOK: true},
	{outcome: "BYPASS", cold: "false", wantSource: true, wantRedisErr: true, down: true},
}

// TestTracingHTTP serves the HTTP mode on a listener: a caller's W3C traceparent is
// the parent, and the batch processor delivers the MISS, HIT and BYPASS trees in the
// background.
func TestTracingHTTP(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	srv := redistest.Start(t)
	rcv := otlptest.Start(t)
	a := newApp(t, tracedEnv(srv.Addr(), rcv), config.ModeHTTP)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var log logbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- app.ServeOn(ctx, app.GetProduct, a, telemetry.NewLogger(&log, slog.LevelInfo), ln) }()
	t.Cleanup(func() {
		cancel()
		// Redis is stopped by then: the shutdown's tally write fails, as it should.
		if err := <-served; err != nil {
			t.Logf("ServeOn: %v", err)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	for n, step := range traceSteps {
		if step.down {
			srv.Stop()
		}
		traceID := fmt.Sprintf("%032x", 0x5eed0+n)
		parent := fmt.Sprintf("%016x", 0xbeef0+n)
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/products/prod-0009", nil)
		req.Header.Set("traceparent", "00-"+traceID+"-"+parent+"-01")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Cache") != step.outcome {
			t.Fatalf("%s: status %d, X-Cache %q", step.outcome, resp.StatusCode, resp.Header.Get("X-Cache"))
		}
		spans := rcv.Await(t, 10*time.Second, func(s otlptest.Span) bool {
			return s.TraceID == traceID && s.Kind == tracepb.Span_SPAN_KIND_SERVER
		})
		r := requestSpan(t, spans, traceID)
		if r.ParentSpanID != parent {
			t.Errorf("%s: request span's parent %s, want traceparent's %s", step.outcome, r.ParentSpanID, parent)
		}
		// A child ends before its parent, and the processor exports in end order: the
		// whole tree is in by the time its root is.
		checkTree(t, spans, r, step.outcome, step.cold, step.wantSource, step.wantRedisOK, step.wantRedisErr)
		if got := traceIDOf(t, log.String()); got != traceID {
			t.Errorf("request line traceId %q, want %q", got, traceID)
		}
		rcv.Reset()
	}
}

// TestTracingOff: with OTEL_SDK_DISABLED the endpoint is ignored: nothing is sent and
// the request line names no trace.
func TestTracingOff(t *testing.T) {
	srv := redistest.Start(t)
	rcv := otlptest.Start(t)
	env := tracedEnv(srv.Addr(), rcv)
	env["OTEL_SDK_DISABLED"] = "true"
	a := newApp(t, env, config.ModeLambda)
	var log logbuf.Buffer
	l := a.Lambda(app.GetProduct, telemetry.NewLogger(&log, slog.LevelInfo))
	t.Setenv("_X_AMZN_TRACE_ID", "Root=1-6925fa13-000000000000000000000001;Parent=0000000000000001;Sampled=1")
	if _, err := l.Invoke(context.Background(), v2Event(t, "prod-0003", "req-off")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := traceIDOf(t, log.String()); got != "" {
		t.Errorf("request line traceId %q with tracing off", got)
	}
	if n := rcv.Requests(); n != 0 {
		t.Errorf("%d exports with tracing off", n)
	}
}

// TestTracingHTTPSource: a MISS on the HTTP source sends the trace on to the source
// service: its request carries a traceparent whose parent is the client span under
// product.source, in the invocation's trace.
func TestTracingHTTPSource(t *testing.T) {
	var seen atomic.Pointer[string]
	source := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tp := r.Header.Get("traceparent")
		seen.Store(&tp)
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"id":%q,"sku":"S-1","name":"n","description":"d","price":{"amount":100,"currency":"EUR"},"stock":1}`, strings.TrimPrefix(r.URL.Path, "/"))
	}))
	t.Cleanup(source.Close)
	srv := redistest.Start(t)
	rcv := otlptest.Start(t)
	env := tracedEnv(srv.Addr(), rcv)
	env["PRODUCT_SOURCE_URL"] = source.URL + "/"
	a := newApp(t, env, config.ModeLambda)
	var log logbuf.Buffer
	l := a.Lambda(app.GetProduct, telemetry.NewLogger(&log, slog.LevelInfo))
	const traceID, parent = "6925fa1300000000000000000000abcd", "000000000000abcd"
	t.Setenv("_X_AMZN_TRACE_ID", "Root=1-"+traceID[:8]+"-"+traceID[8:]+";Parent="+parent+";Sampled=1")
	out, err := l.Invoke(context.Background(), v2Event(t, "ext-1", "req-src"))
	if err != nil || !strings.Contains(string(out), `"statusCode":200`) {
		t.Fatalf("invoke: %v %s", err, out)
	}
	spans := rcv.Spans()
	req := requestSpan(t, spans, traceID)
	var fetch, client *otlptest.Span
	for _, c := range otlptest.Children(spans, req) {
		if c.Name == "product.source" {
			fetch = &c
		}
	}
	if fetch == nil {
		t.Fatalf("no product.source span under the request: %s", otlptest.Names(spans))
	}
	for _, c := range otlptest.Children(spans, *fetch) {
		if c.Name == "HTTP GET" {
			client = &c
		}
	}
	if client == nil || client.Attrs["http.response.status_code"] != "200" {
		t.Fatalf("no HTTP GET client span under product.source: %s", otlptest.Names(spans))
	}
	got := seen.Load()
	if want := "00-" + traceID + "-" + client.SpanID + "-01"; got == nil || *got != want {
		t.Errorf("source saw traceparent %v, want %s", got, want)
	}
}
