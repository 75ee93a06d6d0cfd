package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// lineCase is what a handler says about its request, as the fuzz target's arguments.
type lineCase struct {
	method, cache, key, cause, errMsg, attrKey, attrVal string
	status                                              int
	redis, source                                       time.Duration
	n                                                   int64
	panics                                              bool
}

// bothLines serves one request described by c through Middleware twice, with the
// request line written directly (a logger from NewLogger) and through slog (the same
// logger behind WithAttrs(nil), which the direct path refuses), on the same clock,
// and returns both lines.
func bothLines(t *testing.T, c lineCase, requestID string) (direct, viaSlog []byte) {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := FromContext(r.Context())
		rec.SetCache(c.cache, c.key, c.redis, c.source)
		rec.SetCause(c.cause)
		rec.SetError(c.errMsg)
		if c.attrKey != "" {
			rec.Add(slog.String(c.attrKey, c.attrVal), slog.Int64("n", c.n), slog.Uint64("u", uint64(c.n)), slog.Bool("b", c.n%2 == 0))
		}
		if c.panics {
			panic("boom")
		}
		if c.status != 0 {
			w.WriteHeader(c.status)
		}
		_, _ = w.Write([]byte("{}"))
	})
	serve := func(logger *slog.Logger, out *bytes.Buffer) []byte {
		t0 := time.Date(2026, 11, 25, 21, 4, 5, 123456789, time.FixedZone("CET", 3600))
		ticks := 0
		o := Options{
			Logger: logger, Function: "getProduct", Stage: "prod",
			RequestID: func(context.Context) string { return requestID },
			ColdStart: func(context.Context) bool { return true },
			Now: func() time.Time {
				ticks++
				return t0.Add(time.Duration(ticks) * 1234567 * time.Nanosecond)
			},
		}
		req := httptest.NewRequest(http.MethodGet, "/products/p1", nil)
		req.Method = c.method
		func() {
			defer func() { _ = recover() }()
			// The handler runs for every method (a mux would answer 405 for most),
			// and sets the route itself.
			Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				FromContext(r.Context()).SetRoute(testRoute)
				h(w, r)
			}), o).ServeHTTP(httptest.NewRecorder(), req)
		}()
		return out.Bytes()
	}
	var a, b bytes.Buffer
	fast := NewLogger(&a, slog.LevelInfo)
	slow := slog.New(NewLogger(&b, slog.LevelInfo).Handler().WithAttrs(nil))
	if directWriter(fast) == nil || directWriter(slow) != nil {
		t.Fatal("want the direct path for NewLogger's logger and slog for one with attributes added")
	}
	return serve(fast, &a), serve(slow, &b)
}

// TestDirectLineMatchesSlog proves the request line encoded in this package is the
// line slog's JSON handler writes, byte for byte, over every optional part of it and
// every kind of text the escaping treats differently.
func TestDirectLineMatchesSlog(t *testing.T) {
	cases := map[string]lineCase{
		"hit":             {method: "GET", cache: "HIT", key: "store:product:v1:p1", redis: 420 * time.Microsecond},
		"miss":            {method: "GET", cache: "miss", key: "k", redis: time.Millisecond, source: 20 * time.Millisecond, status: 200},
		"bypass":          {method: "GET", cache: "BYPASS", key: "k", cause: "timeout", errMsg: "e", attrKey: "redisError", attrVal: "dial tcp 10.0.0.1:6379: i/o timeout", n: -7},
		"no cache":        {method: "POST", status: 204},
		"other outcome":   {method: "BREW", cache: "STALE", status: 418},
		"server error":    {method: "DELETE", status: 503, errMsg: "redis_unavailable"},
		"panic":           {method: "GET", cache: "HIT", key: "k", panics: true},
		"reserved key":    {method: "GET", attrKey: "status", attrVal: "x", n: 4},
		"escapes":         {method: "GET", cache: "HIT", key: "a\"b\\c\n\r\t\x00\x1f\x7f</script>&", attrKey: "k\"\u2028", attrVal: "\u2029 \xff\xfe end é 日本"},
		"invalid utf8":    {method: "GET", key: "\xc3", cause: "\xed\xa0\x80", errMsg: "ok\xf0\x9f\x98"},
		"big numbers":     {method: "GET", attrKey: "a", n: -1 << 63, redis: 1<<63 - 1, source: time.Nanosecond},
		"negative timing": {method: "GET", cache: "HIT", redis: -time.Second},
	}
	for name, c := range cases {
		for _, id := range []string{"8f2c7d1e-6b0a-4a53-9d38-5b1f0c2e9a47", ""} {
			direct, viaSlog := bothLines(t, c, id)
			if !bytes.Equal(direct, viaSlog) {
				t.Errorf("%s, request id %q:\ndirect: %s\nslog:   %s", name, id, direct, viaSlog)
			}
			if bytes.Count(direct, []byte("\n")) != 1 {
				t.Errorf("%s: want one line, got %q", name, direct)
			}
		}
	}
}

// FuzzDirectLine checks the same equivalence on any text a handler might record.
func FuzzDirectLine(f *testing.F) {
	f.Add("GET", "HIT", "store:product:v1:p1", "", "", "redisError", "x", int64(420000), int64(0), int64(1), 200)
	f.Add("POST", "BYPASS", "k\u2028", "timeout", "\xff", "k\"", "\x00\n", int64(-1), int64(5), int64(-3), 503)
	f.Fuzz(func(t *testing.T, method, cache, key, cause, errMsg, attrKey, attrVal string, redis, source, n int64, status int) {
		if status < 100 || status > 999 {
			status = 200
		}
		c := lineCase{method: method, cache: cache, key: key, cause: cause, errMsg: errMsg,
			attrKey: attrKey, attrVal: attrVal, status: status,
			redis: time.Duration(redis), source: time.Duration(source), n: n}
		direct, viaSlog := bothLines(t, c, key)
		if !bytes.Equal(direct, viaSlog) {
			t.Errorf("direct: %s\nslog:   %s", direct, viaSlog)
		}
	})
}

// TestDirectWriterFallsBack: a logger that is not NewLogger's own, or a line with an
// attribute the direct encoder leaves to slog, still gets its line through slog.
func TestDirectWriterFallsBack(t *testing.T) {
	var out bytes.Buffer
	logger := NewLogger(&out, slog.LevelInfo).With("region", "eu-west-1")
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).Add(slog.Float64("ratio", 0.5), slog.Group("g", slog.Int("x", 1)))
	}), Options{Logger: logger})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	line := oneLine(t, out.String())
	if line["region"] != "eu-west-1" || line["ratio"] != 0.5 || line["g"].(map[string]any)["x"] != 1.0 {
		t.Errorf("line lost attributes: %v", line)
	}
	if directAttrs([]slog.Attr{slog.Float64("ratio", 0.5)}) || directAttrs([]slog.Attr{slog.String("", "x")}) {
		t.Error("directAttrs accepts a kind appendLine does not encode")
	}
}
