package telemetry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// lineCase is what a handler says about its request, as the fuzz target's arguments,
// and attributes of any kind after them.
type lineCase struct {
	method, cache, key, cause, errMsg, attrKey, attrVal string
	status                                              int
	redis, source                                       time.Duration
	n                                                   int64
	f                                                   float64
	panics                                              bool
	attrs                                               []slog.Attr
}

// The clock of serveLine: it reads lineStart plus lineTick, then plus two ticks, so
// the line's time is lineStart+2*lineTick and its Latency one tick.
var lineStart = time.Date(2026, 11, 25, 21, 4, 5, 123456789, time.FixedZone("CET", 3600))

const lineTick = 1234567 * time.Nanosecond

// serveLine serves one request described by c through Middleware, writing its line
// with logger, and returns what logger wrote to out.
func serveLine(tb testing.TB, c lineCase, requestID string, logger *slog.Logger, out *bytes.Buffer) []byte {
	tb.Helper()
	ticks := 0
	o := Options{
		Logger: logger, Function: "getProduct", Stage: "prod",
		RequestID: func(context.Context) string { return requestID },
		ColdStart: func(context.Context) bool { return true },
		Now: func() time.Time {
			ticks++
			return lineStart.Add(time.Duration(ticks) * lineTick)
		},
	}
	// The handler runs for every method (a mux would answer 405 for most), and sets
	// the route itself.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := FromContext(r.Context())
		rec.SetRoute(testRoute)
		rec.SetCache(c.cache, c.key, c.redis, c.source)
		rec.SetCause(c.cause)
		rec.SetError(c.errMsg)
		if c.attrKey != "" {
			rec.Add(slog.String(c.attrKey, c.attrVal), slog.Int64("n", c.n), slog.Uint64("u", uint64(c.n)), slog.Bool("b", c.n%2 == 0), slog.Float64("f", c.f))
		}
		rec.Add(c.attrs...)
		if c.panics {
			panic("boom")
		}
		if c.status != 0 {
			w.WriteHeader(c.status)
		}
		_, _ = w.Write([]byte("{}"))
	})
	req := httptest.NewRequest(http.MethodGet, "/products/p1", nil)
	req.Method = c.method
	func() {
		defer func() { _ = recover() }()
		// A writer that takes every status and byte: the line reports what the
		// handler sent, not what a recorder makes of it.
		Middleware(h, o).ServeHTTP(&nopWriter{h: http.Header{}}, req)
	}()
	return out.Bytes()
}

// bothLines serves the request of c twice: with a logger from NewLogger, which gets
// the line as the bytes appendLine encodes, and with the same logger behind
// WithAttrs(nil), which gets the same attributes as a slog.Record that slog's JSON
// handler encodes.
func bothLines(tb testing.TB, c lineCase, requestID string) (direct, viaSlog []byte) {
	tb.Helper()
	var a, b bytes.Buffer
	fast := NewLogger(&a, slog.LevelInfo)
	slow := slog.New(NewLogger(&b, slog.LevelInfo).Handler().WithAttrs(nil))
	if directWriter(fast) == nil || directWriter(slow) != nil {
		tb.Fatal("want the direct path for NewLogger's logger and slog for one with attributes added")
	}
	return serveLine(tb, c, requestID, fast, &a), serveLine(tb, c, requestID, slow, &b)
}

// The metrics a line may declare, as the CloudWatchMetrics array must spell them.
const (
	declCache       = `{"Name":"CacheHit","Unit":"Count"},{"Name":"CacheMiss","Unit":"Count"},{"Name":"CacheBypass","Unit":"Count"},{"Name":"CacheStale","Unit":"Count"},`
	declLatency     = `{"Name":"Latency","Unit":"Milliseconds"},`
	declRedis       = `{"Name":"RedisLatency","Unit":"Milliseconds"},`
	declSource      = `{"Name":"SourceLatency","Unit":"Milliseconds"},`
	declServerError = `{"Name":"ServerError","Unit":"Count"}`
)

// wantLine is the whole line of serveLine's clock for the given level, the members
// between message and "_aws", and the declared metrics.
func wantLine(level, members, metrics string) string {
	return `{"timestamp":"2026-11-25T20:04:05.125Z","level":"` + level + `","message":"request",` + members +
		`,"_aws":{"Timestamp":1795637045125,"CloudWatchMetrics":[{"Namespace":"StoreAPI","Dimensions":[["function","stage"]],"Metrics":[` +
		metrics + `]}]}}` + "\n"
}

// jsonValue is a json.Marshaler whose output slog and appendLine must copy as it is.
type jsonValue struct{}

func (jsonValue) MarshalJSON() ([]byte, error) { return []byte(`{"a": [1, "<&>"]}`), nil }

// lazyValue is a LogValuer: the line holds what it resolves to.
type lazyValue struct{}

func (lazyValue) LogValue() slog.Value { return slog.GroupValue(slog.String("resolved", "yes")) }

// TestRequestLineBytes states, byte for byte, the line of requests that between them
// set every field and every kind of attribute, through both ways of writing it. It
// fails when a field is dropped, renamed, moved or escaped otherwise.
func TestRequestLineBytes(t *testing.T) {
	const fixed = `"function":"getProduct","stage":"prod","coldStart":true`
	tests := []struct {
		name      string
		c         lineCase
		requestID string
		want      string
	}{
		{
			name:      "hit",
			c:         lineCase{method: "GET", cache: "hit", key: "store:product:v1:p1", redis: 420 * time.Microsecond},
			requestID: "8f2c7d1e-6b0a-4a53-9d38-5b1f0c2e9a47",
			want: wantLine("INFO", `"requestId":"8f2c7d1e-6b0a-4a53-9d38-5b1f0c2e9a47",`+fixed+
				`,"method":"GET","route":"GET /products/{id}","status":200,"bytes":2,"cache":"HIT","key":"store:product:v1:p1"`+
				`,"CacheHit":1,"CacheMiss":0,"CacheBypass":0,"CacheStale":0,"Latency":1.234,"RedisLatency":0.42,"ServerError":0`,
				declCache+declLatency+declRedis+declServerError),
		},
		{
			name:      "stale",
			c:         lineCase{method: "GET", cache: "stale", key: "store:product:v1:p1", redis: 420 * time.Microsecond},
			requestID: "8f2c7d1e-6b0a-4a53-9d38-5b1f0c2e9a47",
			want: wantLine("INFO", `"requestId":"8f2c7d1e-6b0a-4a53-9d38-5b1f0c2e9a47",`+fixed+
				`,"method":"GET","route":"GET /products/{id}","status":200,"bytes":2,"cache":"STALE","key":"store:product:v1:p1"`+
				`,"CacheHit":0,"CacheMiss":0,"CacheBypass":0,"CacheStale":1,"Latency":1.234,"RedisLatency":0.42,"ServerError":0`,
				declCache+declLatency+declRedis+declServerError),
		},
		{
			name: "bypass with every field and kind of attribute",
			c: lineCase{
				method: "DELETE", cache: "BYPASS", key: "k", cause: "timeout", errMsg: "redis_unavailable",
				status: 503, source: 20*time.Millisecond + 1500*time.Nanosecond,
				attrKey: "redisError", attrVal: "dial tcp 10.0.0.1:6379: i/o timeout", n: -7, f: 0.25,
				attrs: []slog.Attr{
					slog.Duration("wait", 1500*time.Millisecond),
					slog.Time("at", time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))),
					slog.Group("source", slog.String("name", "catalog"), slog.Group("try", slog.Int("n", 2)), slog.Group("empty")),
					slog.Group("", slog.String("inlined", "x")),
					slog.Any("err", errors.New("e\"1")),
					slog.Any("raw", jsonValue{}),
					slog.Any("lazy", lazyValue{}),
					slog.Any("nothing", nil),
					slog.Float64("big", 1e21), slog.Float64("small", 1e-7), slog.Float64("nan", math.NaN()),
					slog.Int("status", 7), slog.String("_aws", "x"),
				},
			},
			want: wantLine("ERROR", fixed+
				`,"method":"DELETE","route":"GET /products/{id}","status":503,"bytes":2,"cache":"BYPASS","key":"k","cause":"timeout","error":"redis_unavailable"`+
				`,"redisError":"dial tcp 10.0.0.1:6379: i/o timeout","n":-7,"u":18446744073709551609,"b":false,"f":0.25`+
				`,"wait":1500000000,"at":"2026-01-02T03:04:05.000000006+01:00","source":{"name":"catalog","try":{"n":2}},"inlined":"x"`+
				`,"err":"e\"1","raw":{"a":[1,"<&>"]},"lazy":{"resolved":"yes"},"nothing":null`+
				`,"big":1e+21,"small":1e-7,"nan":"!ERROR:json: unsupported value: NaN","attr.status":7,"attr._aws":"x"`+
				`,"CacheHit":0,"CacheMiss":0,"CacheBypass":1,"CacheStale":0,"Latency":1.234,"SourceLatency":20.001,"ServerError":1`,
				declCache+declLatency+declSource+declServerError),
		},
		{
			name: "panic",
			c:    lineCase{method: "GET", cache: "MISS", key: "k", redis: time.Millisecond, source: 3 * time.Millisecond, panics: true},
			want: wantLine("ERROR", fixed+
				`,"method":"GET","route":"GET /products/{id}","status":500,"bytes":0,"cache":"MISS","key":"k","panic":true`+
				`,"CacheHit":0,"CacheMiss":1,"CacheBypass":0,"CacheStale":0,"Latency":1.234,"RedisLatency":1,"SourceLatency":3,"ServerError":1`,
				declCache+declLatency+declRedis+declSource+declServerError),
		},
		{
			name: "no cache metrics",
			c:    lineCase{method: "BREW", cache: "REVALIDATED", status: 418, redis: -time.Second},
			want: wantLine("INFO", fixed+
				`,"method":"OTHER","route":"GET /products/{id}","status":418,"bytes":2,"cache":"REVALIDATED","Latency":1.234,"ServerError":0`,
				declLatency+declServerError),
		},
		{
			name: "escapes",
			c: lineCase{
				method: "POST", key: "a\"b\\c\n\r\t\x00\x1f\x7f</script>&", cause: "\xed\xa0\x80", errMsg: "ok\xf0\x9f\x98",
				attrKey: "k\"\u2028", attrVal: "\u2029 \xff\xfe end é 日本", n: 1<<63 - 1, f: 12.345,
			},
			want: wantLine("INFO", fixed+
				`,"method":"POST","route":"GET /products/{id}","status":200,"bytes":2`+
				`,"key":"a\"b\\c\n\r\t\u0000\u001f`+"\x7f"+`</script>&","cause":"\ufffd\ufffd\ufffd","error":"ok\ufffd\ufffd\ufffd"`+
				`,"k\"\u2028":"\u2029 \ufffd\ufffd end é 日本","n":9223372036854775807,"u":9223372036854775807,"b":false,"f":12.345`+
				`,"Latency":1.234,"ServerError":0`,
				declLatency+declServerError),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			direct, viaSlog := bothLines(t, tt.c, tt.requestID)
			for _, got := range []struct {
				how  string
				line []byte
			}{{"directly", direct}, {"through slog", viaSlog}} {
				if string(got.line) != tt.want {
					i := 0
					for i < len(got.line) && i < len(tt.want) && got.line[i] == tt.want[i] {
						i++
					}
					t.Errorf("written %s, differs at byte %d:\n got …%s\nwant …%s", got.how, i, got.line[max(i-40, 0):], tt.want[max(i-40, 0):])
				}
			}
		})
	}
}

// TestDirectLineMatchesSlog holds appendLine's escaping and numbers against slog's
// JSON handler, an encoder of its own, over every optional part of the line and every
// kind of text the escaping treats differently.
func TestDirectLineMatchesSlog(t *testing.T) {
	cases := map[string]lineCase{
		"hit":             {method: "GET", cache: "HIT", key: "store:product:v1:p1", redis: 420 * time.Microsecond},
		"miss":            {method: "GET", cache: "miss", key: "k", redis: time.Millisecond, source: 20 * time.Millisecond, status: 200},
		"bypass":          {method: "GET", cache: "BYPASS", key: "k", cause: "timeout", errMsg: "e", attrKey: "redisError", attrVal: "dial tcp 10.0.0.1:6379: i/o timeout", n: -7},
		"no cache":        {method: "POST", status: 204},
		"other outcome":   {method: "BREW", cache: "REVALIDATED", status: 418},
		"server error":    {method: "DELETE", status: 503, errMsg: "redis_unavailable"},
		"panic":           {method: "GET", cache: "HIT", key: "k", panics: true},
		"reserved key":    {method: "GET", attrKey: "status", attrVal: "x", n: 4},
		"escapes":         {method: "GET", cache: "HIT", key: "a\"b\\c\n\r\t\x00\x1f\x7f</script>&", attrKey: "k\"\u2028", attrVal: "\u2029 \xff\xfe end é 日本"},
		"invalid utf8":    {method: "GET", key: "\xc3", cause: "\xed\xa0\x80", errMsg: "ok\xf0\x9f\x98"},
		"big numbers":     {method: "GET", attrKey: "a", n: -1 << 63, f: math.MaxFloat64, redis: 1<<63 - 1, source: time.Nanosecond},
		"small numbers":   {method: "GET", attrKey: "a", n: 1, f: -math.SmallestNonzeroFloat64, redis: time.Microsecond},
		"negative timing": {method: "GET", cache: "HIT", redis: -time.Second},
		"floats":          {method: "GET", attrKey: "a", f: 1e12 - 0.001, attrs: []slog.Attr{slog.Float64("g", 999999999999.999), slog.Float64("h", -0.0), slog.Float64("i", math.Copysign(0, -1)), slog.Float64("j", 1e20), slog.Float64("k", math.Inf(-1)), slog.Float64("l", 0.1+0.2)}},
		"other kinds": {method: "GET", attrs: []slog.Attr{
			slog.Group("g", slog.Group("", slog.Int("x", 1)), slog.Attr{}, slog.Any("src", &slog.Source{Function: "f", File: "f.go", Line: 3})),
			slog.Any("zero", time.Time{}), slog.Any("ch", make(chan int)), slog.Any("m", map[string]any{"<": "&"}),
			slog.String("", "empty key"), slog.Any("lv", lazyValue{}),
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			for _, id := range []string{"8f2c7d1e-6b0a-4a53-9d38-5b1f0c2e9a47", ""} {
				direct, viaSlog := bothLines(t, c, id)
				if !bytes.Equal(direct, viaSlog) {
					t.Errorf("request id %q:\ndirect: %s\nslog:   %s", id, direct, viaSlog)
				}
				checkEscaped(t, direct)
			}
		})
	}
}

// FuzzDirectLine checks the line of any text and numbers a handler might record:
// decoded, it holds every field with the value recorded, and nothing else; its bytes
// are valid UTF-8 with no raw control character or line separator; and slog's JSON
// handler writes the same bytes from the same attributes.
func FuzzDirectLine(f *testing.F) {
	f.Add("GET", "HIT", "store:product:v1:p1", "", "", "redisError", "x", int64(420000), int64(0), int64(1), 0.5, 200)
	f.Add("POST", "BYPASS", "k\u2028", "timeout", "\xff", "k\"", "\x00\n", int64(-1), int64(5), int64(-3), math.Inf(1), 503)
	f.Add("BREW", "miss", "\xed\xa0\x80", "c", "e", "status", "v", int64(1<<62), int64(1500), int64(7), 1e-7, 101)
	f.Fuzz(func(t *testing.T, method, cache, key, cause, errMsg, attrKey, attrVal string, redis, source, n int64, fl float64, status int) {
		if status < 100 || status > 999 {
			status = 200
		}
		c := lineCase{method: method, cache: cache, key: key, cause: cause, errMsg: errMsg,
			attrKey: attrKey, attrVal: attrVal, status: status,
			redis: time.Duration(redis), source: time.Duration(source), n: n, f: fl}
		direct, viaSlog := bothLines(t, c, key)
		if !bytes.Equal(direct, viaSlog) {
			t.Errorf("direct: %s\nslog:   %s", direct, viaSlog)
		}
		checkEscaped(t, direct)
		checkFields(t, c, key, direct)
	})
}

// checkEscaped fails unless line is valid UTF-8 ending in its only newline, with
// every control character, U+2028 and U+2029 escaped.
func checkEscaped(tb testing.TB, line []byte) {
	tb.Helper()
	body, ok := bytes.CutSuffix(line, []byte("\n"))
	if !ok || !utf8.Valid(body) {
		tb.Fatalf("want valid UTF-8 and one final newline: %q", line)
	}
	for _, r := range string(body) {
		if r < 0x20 || r == '\u2028' || r == '\u2029' {
			tb.Fatalf("unescaped %U in %q", r, line)
		}
	}
}

// checkFields decodes the line of c served by serveLine and compares every member with
// the value c recorded, as the JSON text decodes (invalid UTF-8 as U+FFFD).
func checkFields(tb testing.TB, c lineCase, requestID string, line []byte) {
	tb.Helper()
	got := oneLine(tb, string(line))
	end := lineStart.Add(2 * lineTick)
	status := 200
	switch {
	case c.panics:
		status = 500
	case c.status >= 200 || c.status == 101:
		status = c.status
	}
	level, serverError := "INFO", 0.0
	if status >= 500 {
		level, serverError = "ERROR", 1
	}
	want := map[string]any{
		"timestamp": end.UTC().Format("2006-01-02T15:04:05.000Z"), "level": level, "message": "request",
		"function": "getProduct", "stage": "prod", "coldStart": true, "method": methodName(c.method),
		"route": testRoute, "status": float64(status), "bytes": 2.0,
		"Latency": millis(lineTick), "ServerError": serverError,
	}
	optional := func(k, v string) {
		if v != "" {
			want[k] = decoded(v)
		}
	}
	optional("requestId", requestID)
	cache := normalizeOutcome(c.cache)
	optional("cache", cache)
	optional("key", c.key)
	optional("cause", c.cause)
	optional("error", c.errMsg)
	if c.attrKey != "" {
		k := c.attrKey
		if reserved(k) {
			k = "attr." + k
		}
		want[decoded(k)] = decoded(c.attrVal)
		want["n"] = float64(c.n)
		want["u"] = float64(uint64(c.n))
		want["b"] = c.n%2 == 0
		want["f"] = c.f
		if math.IsNaN(c.f) || math.IsInf(c.f, 0) {
			want["f"] = "!ERROR:json: unsupported value: " + strconv.FormatFloat(c.f, 'g', -1, 64)
		}
	}
	if cache == Hit || cache == Miss || cache == Bypass || cache == Stale {
		want["CacheHit"] = float64(count(cache == Hit))
		want["CacheMiss"] = float64(count(cache == Miss))
		want["CacheBypass"] = float64(count(cache == Bypass))
		want["CacheStale"] = float64(count(cache == Stale))
	}
	if c.redis > 0 {
		want["RedisLatency"] = millis(c.redis)
	}
	if c.source > 0 {
		want["SourceLatency"] = millis(c.source)
	}
	checkEMF(tb, got, end)
	if ts := got["_aws"].(map[string]any)["Timestamp"]; ts != float64(end.UnixMilli()) {
		tb.Errorf("_aws.Timestamp = %v, want %d", ts, end.UnixMilli())
	}
	delete(got, "_aws")
	for k, v := range want {
		if g, ok := got[k]; !ok {
			tb.Errorf("%q is missing: %s", k, line)
		} else if g != v {
			tb.Errorf("%q = %#v, want %#v: %s", k, g, v, line)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			tb.Errorf("%q was not recorded: %s", k, line)
		}
	}
}

// decoded is s as a JSON decoder returns it once written: each byte of invalid UTF-8
// replaced by U+FFFD.
func decoded(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// TestAppendLineWhereSlogIsNotJSON covers the attributes for which slog's JSON
// handler writes text that is not JSON: appendLine writes JSON.
func TestAppendLineWhereSlogIsNotJSON(t *testing.T) {
	const head = `{"timestamp":"2026-11-25T20:04:05.123Z","level":"WARN","message":"request",`
	tests := []struct {
		name  string
		attrs []slog.Attr
		want  string
	}{
		{
			name:  "group of empty attributes",
			attrs: []slog.Attr{slog.Int("a", 1), slog.Group("g", slog.Attr{}), slog.Group("", slog.Attr{}), slog.Int("c", 3)},
			want:  head + `"a":1,"c":3}` + "\n",
		},
		{
			name:  "year outside 0 to 9999",
			attrs: []slog.Attr{slog.Time("y", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)), slog.Time("z", time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC))},
			want:  head + `"y":"!ERROR:time.Time year outside of range [0,9999]","z":"!ERROR:time.Time year outside of range [0,9999]"}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendLine(nil, lineStart, slog.LevelWarn, tt.attrs)
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			checkEscaped(t, got)
			oneLine(t, string(got))
		})
	}
}

// TestOtherLoggersGetTheSameAttrs: a logger that is not NewLogger's own gets the line's
// attributes through its handler, as a valid EMF document in that handler's format.
func TestOtherLoggersGetTheSameAttrs(t *testing.T) {
	tests := []struct {
		name      string
		logger    func(*bytes.Buffer) *slog.Logger
		lambda    bool
		wantExtra map[string]any
	}{
		{
			name:      "NewLogger with attributes",
			logger:    func(b *bytes.Buffer) *slog.Logger { return NewLogger(b, slog.LevelInfo).With("region", "eu-west-1") },
			lambda:    true,
			wantExtra: map[string]any{"region": "eu-west-1"},
		},
		{
			name:      "slog's JSON handler",
			logger:    func(b *bytes.Buffer) *slog.Logger { return slog.New(slog.NewJSONHandler(b, nil)) },
			wantExtra: map[string]any{"msg": "request"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := FromContext(r.Context())
				rec.SetCache(Hit, "k", 420*time.Microsecond, 0)
				rec.Add(slog.Float64("ratio", 0.5), slog.Group("g", slog.Int("x", 1)))
			}), Options{Logger: tt.logger(&out)})
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
			line := oneLine(t, out.String())
			if tt.lambda {
				checkLambdaFormat(t, line, false)
			}
			got := checkEMF(t, line, time.Now())
			if want := []string{metricHit, metricMiss, metricBypass, metricStale, metricLatency, metricRedis, metricServerError}; !slices.Equal(got, want) {
				t.Errorf("declared metrics = %v, want %v", got, want)
			}
			want := map[string]any{"ratio": 0.5, "cache": "HIT", "CacheHit": 1.0, "RedisLatency": 0.42}
			for k, v := range tt.wantExtra {
				want[k] = v
			}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("%s = %#v, want %#v", k, line[k], v)
				}
			}
			if g, _ := line["g"].(map[string]any); g["x"] != 1.0 {
				t.Errorf("g = %#v, want the group", line["g"])
			}
		})
	}
}
