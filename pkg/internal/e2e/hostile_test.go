package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/internal/logbuf"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/serve"
	"github.com/acmestore/storeapi/pkg/telemetry"
	"github.com/alicebob/miniredis/v2"
)

// invokeError marks a row whose payload is not an API Gateway event at all: Invoke
// returns an error (a failed invocation), with no response.
const invokeError = -1

// TestHostileRequests sends hostile events through the production Lambda entry
// (app.Handler in serve.NewLambda with app.LambdaOptions, as the bootstraps run it)
// in-process, against miniredis with a password, in the prod stage: each gets its
// expected status; nothing panics, no response echoes input as markup, and no secret
// (the Redis password, the cacheClear and health tokens, a query string's token)
// appears in any response or captured log line. Nothing is written to os.Stdout but
// through the logger (here it writes elsewhere, so stdout must stay empty), and each
// event that API Gateway could not send is answered 400 with exactly one log line.
//
// It does not run in parallel: it points os.Stdout at a pipe, and it makes its
// logger slog's default, as the bootstraps do.
func TestHostileRequests(t *testing.T) {
	password, clearToken, healthToken := "pw-"+randHex(12), "clear-"+randHex(12), "health-"+randHex(12)
	queryToken := "qs-" + randHex(12)
	secrets := []string{password, clearToken, healthToken, queryToken}
	forged := forgedLine(randHex(8))
	mr := miniredis.RunT(t)
	mr.RequireAuth(password)
	a := apptest.Build(t, map[string]string{
		"REDIS_URL":           "redis://:" + password + "@" + mr.Addr(),
		"CACHE_KEY_PREFIX":    "hostile:prod:",
		"CACHE_CLEAR_TOKEN":   clearToken,
		"CACHE_CLEAR_ENABLED": "true",
		"HEALTH_TOKEN":        healthToken,
		"STAGE":               "prod",
	}, config.ModeLambda)
	var logs logbuf.Buffer
	logger := telemetry.NewLogger(&logs, slog.LevelDebug)
	// As app.NewLogger does in the bootstraps: the log package's lines (api-proxy's
	// on bad events, aws-lambda-go's) and go-redis's go through the same JSON handler.
	stdout := captureStdout(t)
	prev, prevOut, prevFlags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(logger)
	t.Cleanup(func() {
		slog.SetDefault(prev)
		log.SetOutput(prevOut)
		log.SetFlags(prevFlags)
	})
	entries := map[string]*serve.Lambda{}
	for _, f := range []app.Function{app.GetProduct, app.Health, app.CacheClear} {
		entries[f.Name] = serve.NewLambda(app.Handler(f, a, logger), app.LambdaOptions(f, logger))
	}

	gp := func(v apiVersion, id string) []byte { return productEvent(t, v, id) }
	edit := func(name string, f func(ev map[string]any)) []byte {
		ev := sampleEvent(t, name)
		f(ev)
		return encode(t, ev)
	}
	v2path := func(raw string) []byte {
		return edit("getproduct.v2.json", func(ev map[string]any) {
			ev["rawPath"] = raw
			obj(ev, "requestContext", "http")["path"] = raw
		})
	}
	v1path := func(path string) []byte {
		return edit("getproduct.v1.json", func(ev map[string]any) {
			ev["path"] = path
			obj(ev, "requestContext")["path"] = "/dev" + path
		})
	}
	v2method := func(m string) []byte {
		return edit("getproduct.v2.json", func(ev map[string]any) { obj(ev, "requestContext", "http")["method"] = m })
	}
	clear := func(v apiVersion, token, body string) []byte { return clearEvent(t, v, token, body) }
	clearAuth := func(header string) []byte {
		return edit("cacheclear.v2.json", func(ev map[string]any) {
			obj(ev, "headers")["authorization"] = header
			ev["body"] = `{"scope":"products"}`
		})
	}
	longID := strings.Repeat("A", 10<<10)
	bigJSON := `{"scope":"products","pad":"` + strings.Repeat("x", 1<<20) + `"}`

	rows := []struct {
		name string
		fn   string
		ev   []byte
		want int
		// never are strings of the input that the response must not contain.
		never []string
	}{
		{"product v2", "getProduct", gp(v2, "prod-0001"), 200, nil},
		{"product v1", "getProduct", gp(v1, "prod-0001"), 200, nil},
		{"traversal in rawPath", "getProduct", v2path("/products/../../etc/passwd"), 404, []string{"passwd"}},
		{"traversal encoded", "getProduct", v2path("/products/..%2F..%2Fetc%2Fpasswd"), 400, []string{"passwd"}},
		{"traversal v1", "getProduct", v1path("/products/..%2f..%2fetc%2fpasswd"), 400, []string{"passwd"}},
		{"dot-dot id", "getProduct", v2path("/products/.."), 404, nil},
		{"10 kB id v2", "getProduct", gp(v2, longID), 400, []string{longID[:64]}},
		{"10 kB id v1", "getProduct", gp(v1, longID), 400, []string{longID[:64]}},
		{"unicode id", "getProduct", gp(v2, "prodé-ü"), 400, []string{"prodé"}},
		{"emoji id", "getProduct", gp(v2, "prod-😀"), 400, []string{"😀"}},
		{"right-to-left override", "getProduct", gp(v2, "\u202eprod-0001"), 400, []string{"\u202e"}},
		{"NUL escaped", "getProduct", v2path("/products/prod-0001%00"), 400, []string{"\x00", `\u0000`}},
		{"NUL raw", "getProduct", v2path("/products/prod-0001\x00"), 400, []string{"\x00", `\u0000`}},
		{"CRLF escaped", "getProduct", v2path("/products/x%0d%0aSet-Cookie:%20pwned=1"), 400, []string{"pwned"}},
		{"markup id (events/getproduct-badid.v2.json)", "getProduct", sampleEventBytes(t, "getproduct-badid.v2.json"), 400, []string{"<script", "%3Cscript"}},
		{"markup id v1", "getProduct", v1path("/products/<img src=x onerror=alert(1)>"), 400, []string{"onerror"}},
		{"unknown id", "getProduct", gp(v2, "prod-9999"), 404, []string{"prod-9999"}},
		{"POST to a product", "getProduct", v2method("POST"), 405, nil},
		{"DELETE a product", "getProduct", v2method("DELETE"), 405, nil},
		// api-proxy upper-cases the method.
		{"lower-case method", "getProduct", v2method("get"), 200, nil},
		{"made-up method with markup", "getProduct", v2method("<script>"), 400, []string{"<script", "<SCRIPT"}},
		{"unknown route", "getProduct", v2path("/admin/<b>"), 404, []string{"admin"}},
		{"100 kB query string", "getProduct", edit("getproduct.v2.json", func(ev map[string]any) {
			ev["rawQueryString"] = "q=" + strings.Repeat("%3Cscript%3E", 8<<10)
		}), 200, []string{"<script", "%3Cscript"}},
		{"token in the query string v2", "getProduct", edit("getproduct.v2.json", func(ev map[string]any) {
			ev["rawQueryString"] = "access_token=" + queryToken
		}), 200, []string{queryToken}},
		{"token in the query string v1", "getProduct", edit("getproduct.v1.json", func(ev map[string]any) {
			ev["multiValueQueryStringParameters"] = map[string]any{"access_token": []any{queryToken}}
		}), 200, []string{queryToken}},
		{"invalid query escape", "getProduct", edit("getproduct.v2.json", func(ev map[string]any) { ev["rawQueryString"] = "a=%zz&b=<i>" }), 200, nil},
		{"markup in cookies", "getProduct", edit("getproduct.v2.json", func(ev map[string]any) { ev["cookies"] = []any{"a=<script>", "=;;="} }), 200, []string{"<script"}},
		{"named stage in rawPath", "getProduct", edit("getproduct.v2.json", func(ev map[string]any) {
			ev["rawPath"] = "/prod/products/prod-0001"
			obj(ev, "requestContext")["stage"] = "prod"
		}), 200, nil},
		{"If-None-Match *", "getProduct", edit("getproduct.v2.json", func(ev map[string]any) { obj(ev, "headers")["if-none-match"] = "*" }), 304, nil},
		{"GET with a bad base64 body", "getProduct", edit("getproduct.v2.json", func(ev map[string]any) {
			ev["isBase64Encoded"] = true
			ev["body"] = "!!<script>"
		}), 400, []string{"<script"}},
		{"v1 without headers", "getProduct", edit("getproduct.v1.json", func(ev map[string]any) {
			ev["headers"] = nil
			ev["multiValueHeaders"] = nil
		}), 200, nil},
		{"v1 with a null requestContext", "getProduct", edit("getproduct.v1.json", func(ev map[string]any) { ev["requestContext"] = nil }), 200, nil},
		{"v2 without method", "getProduct", v2method(""), invokeError, nil},
		{"version 3.0", "getProduct", edit("getproduct.v2.json", func(ev map[string]any) { ev["version"] = "3.0" }), invokeError, nil},
		{"wrong types", "getProduct", []byte(`{"version":"2.0","rawPath":7,"requestContext":{"http":{"method":["GET"]}}}`), invokeError, nil},
		{"not JSON", "getProduct", []byte("<html>"), invokeError, nil},
		{"JSON array", "getProduct", []byte(`[{"httpMethod":"GET"}]`), invokeError, nil},
		{"JSON null", "getProduct", []byte("null"), invokeError, nil},
		{"empty object", "getProduct", []byte("{}"), invokeError, nil},
		{"truncated event", "getProduct", gp(v2, "prod-0001")[:200], invokeError, nil},

		{"health without token", "health", healthEvent(t, v2, ""), 200, nil},
		{"health with a wrong token", "health", healthEvent(t, v1, "wrong-"+randHex(6)), 200, nil},
		{"health with the token in the query", "health", edit("health.v2.json", func(ev map[string]any) {
			ev["rawQueryString"] = "token=" + url.QueryEscape(healthToken)
		}), 200, nil},
		{"health with the token", "health", healthEvent(t, v2, healthToken), 200, nil},
		{"POST to health", "health", edit("health.v2.json", func(ev map[string]any) { obj(ev, "requestContext", "http")["method"] = "POST" }), 405, nil},

		{"clear without auth", "cacheClear", clear(v2, "", `{"scope":"all"}`), 401, nil},
		{"clear with a wrong token", "cacheClear", clear(v2, "wrong-"+randHex(6), `{"scope":"all"}`), 401, nil},
		{"clear with a token prefix", "cacheClear", clear(v2, clearToken[:len(clearToken)-1], `{"scope":"all"}`), 401, nil},
		{"clear with the token and a suffix", "cacheClear", clear(v1, clearToken+"x", `{"scope":"all"}`), 401, nil},
		{"clear with Basic auth", "cacheClear", clearAuth("Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+clearToken))), 401, nil},
		{"clear with the bare token", "cacheClear", clearAuth(clearToken), 401, nil},
		{"clear with a markup token", "cacheClear", clearAuth("Bearer <script>"), 401, []string{"<script"}},
		{"clear with invalid JSON", "cacheClear", clear(v2, clearToken, `{"scope":`), 400, nil},
		{"clear with a 1 MB body", "cacheClear", clear(v2, clearToken, bigJSON), 413, []string{"xxxx"}},
		{"clear with a 1 MB base64 body", "cacheClear", edit("cacheclear-base64.v2.json", func(ev map[string]any) {
			obj(ev, "headers")["authorization"] = "Bearer " + clearToken
			ev["body"] = base64.StdEncoding.EncodeToString([]byte(bigJSON))
		}), 413, []string{"xxxx"}},
		{"clear with a pattern escaping the prefix", "cacheClear", clear(v2, clearToken, `{"pattern":"../*"}`), 400, nil},
		{"clear with a glob escape", "cacheClear", clear(v2, clearToken, `{"pattern":"\\*"}`), 400, nil},
		{"clear with a markup scope", "cacheClear", clear(v2, clearToken, `{"scope":"<b>all</b>"}`), 400, []string{"<b>"}},
		{"clear with an unknown field", "cacheClear", clear(v2, clearToken, `{"scope":"all","flush":true}`), 400, nil},
		{"clear with 1001 ids", "cacheClear", clear(v2, clearToken, `{"ids":[`+strings.Repeat(`"prod-0001",`, 1000)+`"prod-0001"]}`), 400, nil},
		{"clear with a traversal id", "cacheClear", clear(v2, clearToken, `{"ids":["../../x"]}`), 400, nil},
		{"clear with a NUL in the body", "cacheClear", clear(v2, clearToken, "{\"scope\":\"all\x00\"}"), 400, nil},
		{"GET /cache/clear", "cacheClear", edit("cacheclear.v2.json", func(ev map[string]any) { obj(ev, "requestContext", "http")["method"] = "GET" }), 405, nil},
		{"clear products", "cacheClear", clear(v2, clearToken, `{"scope":"products"}`), 200, nil},
		{"clear v1", "cacheClear", clear(v1, clearToken, `{"scope":"all"}`), 200, nil},
		// An empty, null or case-variant selector is not "everything" (issue 10).
		{"clear with an empty body", "cacheClear", clear(v2, clearToken, ""), 400, nil},
		{"clear with a null body", "cacheClear", clear(v1, clearToken, "null"), 400, nil},
		{"clear with an empty object", "cacheClear", clear(v2, clearToken, "{}"), 400, nil},
		{"clear with an empty pattern", "cacheClear", clear(v2, clearToken, `{"pattern":""}`), 400, nil},
		{"clear with a null scope", "cacheClear", clear(v2, clearToken, `{"scope":null}`), 400, nil},
		{"clear with upper-case IDS", "cacheClear", clear(v2, clearToken, `{"IDS":["prod-0001"]}`), 400, nil},
		// A body that is not JSON, as a cross-origin form or text/plain POST sends it.
		{"clear with text/plain", "cacheClear", edit("cacheclear.v2.json", func(ev map[string]any) {
			obj(ev, "headers")["authorization"] = "Bearer " + clearToken
			obj(ev, "headers")["content-type"] = "text/plain;charset=UTF-8"
		}), 415, nil},
		{"clear without a Content-Type", "cacheClear", edit("cacheclear.v1.json", func(ev map[string]any) {
			setAuth(ev, v1, clearToken)
			delete(obj(ev, "headers"), "Content-Type")
			delete(obj(ev, "multiValueHeaders"), "Content-Type")
		}), 415, nil},
		// No CORS on cacheClear, for its POST or its preflight.
		{"clear from another origin", "cacheClear", edit("cacheclear.v2.json", func(ev map[string]any) {
			obj(ev, "headers")["authorization"] = "Bearer " + clearToken
			obj(ev, "headers")["origin"] = "https://evil.example"
		}), 200, []string{"Access-Control-Allow-Origin", "evil.example"}},
		{"clear preflight", "cacheClear", edit("cacheclear.v2.json", func(ev map[string]any) {
			obj(ev, "requestContext", "http")["method"] = "OPTIONS"
			obj(ev, "headers")["origin"] = "https://evil.example"
			obj(ev, "headers")["access-control-request-method"] = "POST"
			ev["body"] = ""
		}), 405, []string{"Access-Control-Allow-Origin", "evil.example"}},
		{"clear base64 (events/cacheclear-base64.v2.json)", "cacheClear", edit("cacheclear-base64.v2.json", func(ev map[string]any) {
			obj(ev, "headers")["authorization"] = "Bearer " + clearToken
		}), 200, nil},
		{"clear v1 with auth only in headers", "cacheClear", edit("cacheclear.v1.json", func(ev map[string]any) {
			setAuth(ev, v1, "")
			obj(ev, "headers")["Authorization"] = "Bearer " + clearToken
		}), 401, nil},
	}

	for _, u := range unsendableEvents(t, forged.text, "access_token="+queryToken) {
		rows = append(rows, struct {
			name  string
			fn    string
			ev    []byte
			want  int
			never []string
		}{unsendable + u.name, "getProduct", u.ev, 400, []string{forged.marker, queryToken, "pwned"}})
	}

	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			logged := len(logs.String())
			defer func() {
				if strings.HasPrefix(row.name, unsendable) {
					wantOneWarning(t, logs.String()[logged:])
				}
			}()
			out, err := invokeNoPanic(t, entries[row.fn], row.ev)
			if row.want == invokeError {
				if err == nil {
					t.Fatalf("Invoke answered %.300s, want an error", out)
				}
				if out != nil {
					t.Fatalf("Invoke returned an error and a response: %v, %.300s", err, out)
				}
				noSecrets(t, "the invoke error", err.Error(), secrets...)
				return
			}
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			r, err := decodeResponse(out)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != row.want {
				t.Errorf("status %d, want %d: %.300s", r.Status, row.want, r.Body)
			}
			if strings.Contains(r.Body, "<") {
				t.Errorf("the body has markup: %.300s", r.Body)
			}
			for k, vs := range r.Header {
				for _, v := range vs {
					if strings.ContainsAny(v, "<\r\n") {
						t.Errorf("header %s: %q", k, v)
					}
				}
				if strings.EqualFold(k, "Set-Cookie") {
					t.Errorf("a Set-Cookie header: %q", vs)
				}
			}
			if r.Status >= 400 {
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("error with Content-Type %q", ct)
				}
				var body map[string]any
				if err := json.Unmarshal([]byte(r.Body), &body); err != nil || body["error"] == nil {
					t.Errorf("error body is not a JSON error: %.300s", r.Body)
				}
			}
			for _, s := range row.never {
				if strings.Contains(string(out), s) {
					t.Errorf("the response echoes %.40q", s)
				}
			}
			noSecrets(t, "the response", string(out), secrets...)
			// miniredis has no INFO stats, so the details are the description and the
			// application's figures.
			details := strings.Contains(r.Body, `"description"`) || strings.Contains(r.Body, "app:productCache")
			if row.fn == "health" && details != (row.name == "health with the token") {
				t.Errorf("health details shown: %v: %.300s", details, r.Body)
			}
		})
	}

	if out := stdout(); out != "" {
		t.Errorf("%d bytes written to stdout outside the logger (a forged log line, a query string?):\n%.600q", len(out), out)
	}
	captured := logs.String()
	noSecrets(t, "the captured log", captured, secrets...)
	if strings.Contains(captured, forged.marker) {
		t.Errorf("the forged line's text reached the log")
	}
	lines := strings.Split(strings.TrimRight(captured, "\n"), "\n")
	requests := 0
	for _, line := range lines {
		var l logLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Errorf("a log line that is not one JSON object (input injected into the log?): %.300q", line)
			continue
		}
		switch l.str("message") {
		case "panic":
			t.Errorf("a handler panicked: %v", l)
		case "request":
			requests++
			if l["status"] == 500.0 {
				t.Errorf("a 500: %v", l)
			}
		}
	}
	if requests == 0 {
		t.Error("no request lines captured")
	}
}

// invokeNoPanic calls l.Invoke, turning a panic into a test failure.
func invokeNoPanic(t *testing.T, l *serve.Lambda, ev []byte) (out []byte, err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("Invoke panicked: %v", p)
		}
	}()
	return l.Invoke(context.Background(), ev)
}

func sampleEventBytes(tb testing.TB, name string) []byte {
	tb.Helper()
	return encode(tb, sampleEvent(tb, name))
}

// TestHostileRequestsBootstrap runs the getProduct bootstrap under the emulator and
// sends it the events API Gateway could not send, each with a token in its query
// string: each is a 400, and the process writes nothing but the function's JSON lines
// (and the emulator its own): no forged line, no raw control character, no query.
func TestHostileRequestsBootstrap(t *testing.T) {
	t.Parallel()
	queryToken := "qs-" + randHex(12)
	forged := forgedLine(randHex(8))
	srv := redistest.Start(t)
	s := newStack(t, "redis://"+srv.Addr())
	gp := s.start("getproduct")
	events := unsendableEvents(t, forged.text, "access_token="+queryToken)
	for _, e := range events {
		if r := gp.invoke(e.ev); r.Status != 400 {
			t.Errorf("%s: %d, want 400: %.300s", e.name, r.Status, r.Body)
		}
	}
	if r := gp.invoke(productEvent(t, v2, "prod-0001")); r.Status != 200 {
		t.Errorf("a good event after them: %d: %.300s", r.Status, r.Body)
	}
	gp.stop()

	out := gp.stdout()
	for _, where := range []struct{ name, text string }{{"stdout", out}, {"stderr", gp.stderr()}} {
		noSecrets(t, where.name, where.text, queryToken)
		if strings.Contains(where.text, forged.marker) {
			t.Errorf("the forged line's text is in the process's %s", where.name)
		}
	}
	warnings := 0
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if emulatorLine(line) {
			continue
		}
		var l logLine
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.str("timestamp") == "" || l.str("level") == "" {
			t.Errorf("a stdout line that is not one of the function's JSON lines: %.300q", line)
			continue
		}
		if l.str("level") == "WARN" {
			warnings++
		}
	}
	if warnings != len(events) {
		t.Errorf("%d WARN lines for %d rejected events", warnings, len(events))
	}
}

// emulatorLine reports whether line is one the emulator writes to its stdout itself.
func emulatorLine(line string) bool {
	for _, p := range []string{"START RequestId: ", "END RequestId: ", "REPORT RequestId: "} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// unsendable starts the names of TestHostileRequests's rows that API Gateway could not
// send: each must be a 400 with exactly one log line.
const unsendable = "unsendable: "

// forged is a line that looks like the function's own request line, with a marker to
// find it by.
type forged struct{ marker, text string }

func forgedLine(marker string) forged {
	return forged{marker, `{"timestamp":"2026-01-01T00:00:00.000Z","level":"ERROR","message":"request","function":"getProduct","status":500,"ServerError":1000,"forged":"` + marker + `"}`}
}

type hostileEvent struct {
	name string
	ev   []byte
}

// unsendableEvents are getProduct events whose path, method, headers, cookies, query
// or domain hold what API Gateway never sends (control characters; a line break
// followed by forged, which would start a log line of its own; text that is no URL),
// or whose body is not the base64 it claims to be, each with the query string query.
// api-proxy cannot turn such an event into a request and says so on stdout with
// fmt.Printf, and with the log package, giving the whole URL and its query.
func unsendableEvents(tb testing.TB, forged, query string) []hostileEvent {
	tb.Helper()
	line := "\n" + forged + "\n"
	v2 := func(f func(ev, http map[string]any)) []byte {
		ev := sampleEvent(tb, "getproduct.v2.json")
		ev["rawQueryString"] = query
		f(ev, obj(ev, "requestContext", "http"))
		return encode(tb, ev)
	}
	v1 := func(f func(ev map[string]any)) []byte {
		ev := sampleEvent(tb, "getproduct.v1.json")
		k, v, _ := strings.Cut(query, "=")
		ev["queryStringParameters"] = map[string]any{k: v}
		ev["multiValueQueryStringParameters"] = map[string]any{k: []any{v}}
		f(ev)
		return encode(tb, ev)
	}
	return []hostileEvent{
		{"v2 rawPath with a forged log line", v2(func(ev, h map[string]any) {
			ev["rawPath"] = "/products/prod-0001" + line
			h["path"] = ev["rawPath"]
		})},
		{"v2 http.path with a forged log line, no rawPath", v2(func(ev, h map[string]any) {
			delete(ev, "rawPath")
			h["path"] = "/products/prod-0001" + line
		})},
		{"v2 rawPath with CR and NUL", v2(func(ev, h map[string]any) { ev["rawPath"] = "/products/prod\r\x00-0001" })},
		{"v2 rawPath with DEL", v2(func(ev, h map[string]any) { ev["rawPath"] = "/products/prod\x7f0001" })},
		{"v2 rawPath with a bad escape", v2(func(ev, h map[string]any) { ev["rawPath"] = "/products/%zz" })},
		{"v2 method with a forged log line", v2(func(ev, h map[string]any) { h["method"] = "GET" + line })},
		{"v2 method with a space", v2(func(ev, h map[string]any) { h["method"] = "GE T" })},
		{"v2 header value with CRLF", v2(func(ev, h map[string]any) {
			obj(ev, "headers")["x-evil"] = "a\r\nSet-Cookie: pwned=1"
		})},
		{"v2 header value with a forged log line", v2(func(ev, h map[string]any) { obj(ev, "headers")["x-evil"] = "a" + line })},
		{"v2 header name with NUL", v2(func(ev, h map[string]any) { obj(ev, "headers")["x-a\x00b"] = "1" })},
		{"v2 header name with a forged log line", v2(func(ev, h map[string]any) { obj(ev, "headers")["x"+line] = "1" })},
		{"v2 cookie with a forged log line", v2(func(ev, h map[string]any) { ev["cookies"] = []any{"a=1" + line} })},
		{"v2 query string with a forged log line", v2(func(ev, h map[string]any) { ev["rawQueryString"] = query + "&x=" + line })},
		{"v2 domainName with a forged log line", v2(func(ev, h map[string]any) { obj(ev, "requestContext")["domainName"] = "a" + line })},
		{"v2 domainName with a space", v2(func(ev, h map[string]any) { obj(ev, "requestContext")["domainName"] = "a b" })},
		{"v2 body that is not base64", v2(func(ev, h map[string]any) {
			ev["isBase64Encoded"] = true
			ev["body"] = "!!" + line
		})},
		{"v1 path with a forged log line", v1(func(ev map[string]any) { ev["path"] = "/products/prod-0001" + line })},
		{"v1 path with NUL", v1(func(ev map[string]any) { ev["path"] = "/products/prod-0001\x00" })},
		{"v1 path with a bad escape", v1(func(ev map[string]any) { ev["path"] = "/products/prod-0001%" })},
		{"v1 httpMethod with a forged log line", v1(func(ev map[string]any) { ev["httpMethod"] = "GET" + line })},
		{"v1 multi-value header with CRLF", v1(func(ev map[string]any) {
			obj(ev, "multiValueHeaders")["X-Evil"] = []any{"a\r\nSet-Cookie: pwned=1"}
		})},
		{"v1 header name with a space, no multi-value headers", v1(func(ev map[string]any) {
			ev["multiValueHeaders"] = nil
			obj(ev, "headers")["X Evil"] = "1"
		})},
		{"v1 domainName with a forged log line", v1(func(ev map[string]any) { obj(ev, "requestContext")["domainName"] = "a" + line })},
		{"v1 body that is not base64", v1(func(ev map[string]any) {
			ev["isBase64Encoded"] = true
			ev["body"] = "!!" + line
		})},
	}
}

// wantOneWarning asserts that logged, what one invocation logged, is one JSON line at
// WARN.
func wantOneWarning(tb testing.TB, logged string) {
	tb.Helper()
	lines := strings.Split(strings.TrimSuffix(logged, "\n"), "\n")
	var l logLine
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &l) != nil || l.str("level") != "WARN" {
		tb.Errorf("want one WARN line, logged %d lines:\n%.600s", len(lines), logged)
	}
}

// captureStdout points os.Stdout at a pipe until the test ends or the returned
// function is called, which returns everything written to it.
func captureStdout(tb testing.TB) func() string {
	tb.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	prev := os.Stdout
	os.Stdout = w
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(&buf, r)
		close(done)
	}()
	var once sync.Once
	stop := func() string {
		once.Do(func() {
			os.Stdout = prev
			_ = w.Close()
			<-done
			_ = r.Close()
		})
		return buf.String()
	}
	tb.Cleanup(func() { stop() })
	return stop
}
