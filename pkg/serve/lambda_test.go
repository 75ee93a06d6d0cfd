package serve

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/logbuf"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// seen is what a handler saw of its request.
type seen struct {
	Method, Path, RawQuery, Host, RemoteAddr string
	Query                                    url.Values
	Header                                   http.Header
	Body                                     string
	ID                                       string // r.PathValue("id")
	RequestID                                string
	Cold                                     bool
	Deadline                                 time.Time
	HasDeadline                              bool
	CtxErr                                   error
	Stage                                    string // from api-proxy's context
	Lambda                                   *lambdacontext.LambdaContext
}

func record(r *http.Request) seen {
	body, _ := io.ReadAll(r.Body)
	s := seen{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.URL.Host,
		RemoteAddr: r.RemoteAddr, Query: r.URL.Query(), Header: r.Header, Body: string(body),
		ID: r.PathValue("id"), RequestID: RequestID(r.Context()), Cold: ColdStart(r.Context()),
		CtxErr: r.Context().Err(),
	}
	s.Deadline, s.HasDeadline = r.Context().Deadline()
	if gw, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok {
		s.Stage = gw.Stage
	}
	if gw, ok := core.GetAPIGatewayContextFromContext(r.Context()); ok {
		s.Stage = gw.Stage
	}
	s.Lambda, _ = lambdacontext.FromContext(r.Context())
	return s
}

// storeMux routes like the store API and records the request it served.
func storeMux(got *seen) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		*got = record(r)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Cache", "MISS")
		h.Add("Vary", "Origin")
		h.Add("Vary", "Accept-Encoding")
		h.Add("Set-Cookie", "a=1; Path=/")
		h.Add("Set-Cookie", "b=2; Path=/")
		_, _ = io.WriteString(w, `{"id":"`+r.PathValue("id")+`","name":"Mug"}`)
	})
	mux.HandleFunc("POST /cache/clear", func(w http.ResponseWriter, r *http.Request) {
		*got = record(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"removed":3}`)
	})
	return mux
}

func quietOptions() Options {
	return Options{Logger: slog.New(slog.DiscardHandler)}
}

func TestInvokeEvents(t *testing.T) {
	tests := []struct {
		file         string
		v2           bool
		method, path string
		query        url.Values
		header       map[string]string // request headers that must arrive
		cookies      string
		body         string
		requestID    string
		stage        string
		remoteAddr   string
	}{
		{
			file: "httpapi-v2.json", v2: true, method: "GET", path: "/products/42",
			query:  url.Values{"fields": {"name", "price"}, "currency": {"EUR"}},
			header: map[string]string{"Accept": "application/json", "If-None-Match": `"v1-42"`, "Origin": "https://shop.example.com"},
			// api-proxy adds each cookie as its own Cookie header.
			cookies:   "session=abc123 theme=dark",
			requestID: "Zx8kQhV2joEEMyw=", stage: "$default", remoteAddr: "203.0.113.7",
		},
		{
			file: "httpapi-v2-stage.json", v2: true, method: "GET", path: "/products/42",
			query:     url.Values{},
			header:    map[string]string{"User-Agent": "curl/8.5.0"},
			requestID: "Zx9AbCdEfGhIjKl=", stage: "dev", remoteAddr: "198.51.100.20",
		},
		{
			file: "function-url.json", v2: true, method: "GET", path: "/products/7",
			query:     url.Values{"currency": {"USD"}},
			header:    map[string]string{"X-Amzn-Tls-Version": "TLSv1.3"},
			requestID: "5f0e8a1c-3b2d-4c6e-9f7a-0b1c2d3e4f50", stage: "$default", remoteAddr: "192.0.2.44",
		},
		{
			file: "httpapi-v2-post-base64.json", v2: true, method: "POST", path: "/cache/clear",
			query:     url.Values{},
			header:    map[string]string{"Authorization": "Bearer s3cr3t", "Content-Type": "application/json"},
			body:      `{"scope":"products"}`,
			requestID: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", stage: "$default", remoteAddr: "127.0.0.1",
		},
		{
			// REST API: "path" has no stage although requestContext.path does.
			file: "rest-v1.json", method: "GET", path: "/products/42",
			query:     url.Values{"fields": {"name", "price"}, "currency": {"EUR"}},
			header:    map[string]string{"Accept": "application/json", "X-Request-Id": "from-the-client"},
			requestID: "e2b1a9f4-1c7d-4a3b-8e6f-5d4c3b2a1f00", stage: "dev", remoteAddr: "203.0.113.7",
		},
		{
			file: "rest-v1-post-base64.json", method: "POST", path: "/cache/clear",
			query:     url.Values{},
			header:    map[string]string{"Authorization": "Bearer s3cr3t"},
			body:      `{"scope":"products"}`,
			requestID: "0b6d2a1e-5c4f-4e3d-9a8b-7c6d5e4f3a21", stage: "Prod", remoteAddr: "127.0.0.1",
		},
		{
			// HTTP API payload 1.0 with a named stage: "path" starts with it. The
			// nested "version" query parameter must not be taken for the event's.
			file: "httpapi-v1.json", method: "GET", path: "/products/42",
			query:     url.Values{"version": {"2.0"}},
			header:    map[string]string{"Accept": "application/json"},
			requestID: "Zx9ZzYyXxWwVvU=", stage: "dev", remoteAddr: "203.0.113.7",
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var got seen
			l := NewLambda(storeMux(&got), quietOptions())
			out, err := l.Invoke(context.Background(), readEvent(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}

			if got.Method != tt.method || got.Path != tt.path {
				t.Errorf("handler saw %s %s, want %s %s", got.Method, got.Path, tt.method, tt.path)
			}
			if tt.method == "GET" && got.ID == "" {
				t.Errorf("path parameter id not routed")
			}
			if !equalValues(got.Query, tt.query) {
				t.Errorf("query = %v, want %v", got.Query, tt.query)
			}
			for k, v := range tt.header {
				if g := got.Header.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
			if c := strings.Join(got.Header.Values("Cookie"), " "); c != tt.cookies {
				t.Errorf("Cookie = %q, want %q", c, tt.cookies)
			}
			for k := range got.Header {
				if strings.HasPrefix(k, "X-Golambdaproxy") {
					t.Errorf("request carries api-proxy's header %s: the context must travel in the request context", k)
				}
			}
			if got.Body != tt.body {
				t.Errorf("body = %q, want %q", got.Body, tt.body)
			}
			if got.RequestID != tt.requestID {
				t.Errorf("RequestID = %q, want %q", got.RequestID, tt.requestID)
			}
			if got.Stage != tt.stage {
				t.Errorf("API Gateway context stage = %q, want %q", got.Stage, tt.stage)
			}
			if got.RemoteAddr != tt.remoteAddr {
				t.Errorf("RemoteAddr = %q, want %q", got.RemoteAddr, tt.remoteAddr)
			}
			if !got.HasDeadline || got.CtxErr != nil {
				t.Errorf("request context: deadline %v (%v), err %v; want a live context with a deadline", got.Deadline, got.HasDeadline, got.CtxErr)
			}

			var keys map[string]json.RawMessage
			if err := json.Unmarshal(out, &keys); err != nil {
				t.Fatal(err)
			}
			if tt.v2 {
				resp := decodeV2(t, out)
				if resp.StatusCode != http.StatusOK || resp.Headers["Content-Type"] != "application/json" {
					t.Errorf("response %d %v", resp.StatusCode, resp.Headers)
				}
				if _, ok := keys["cookies"]; !ok {
					t.Errorf("payload 2.0 response without cookies member: %s", out)
				}
				if resp.Headers[requestIDHeader] != tt.requestID {
					t.Errorf("X-Request-Id = %q, want %q", resp.Headers[requestIDHeader], tt.requestID)
				}
			} else {
				resp := decodeV1(t, out)
				if resp.StatusCode != http.StatusOK || !slices.Equal(resp.MultiValueHeaders["Content-Type"], []string{"application/json"}) {
					t.Errorf("response %d %v", resp.StatusCode, resp.MultiValueHeaders)
				}
				if _, ok := keys["cookies"]; ok {
					t.Errorf("proxy response has a cookies member: %s", out)
				}
			}
		})
	}
}

func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w := slices.Clone(b[k])
		v = slices.Clone(v)
		slices.Sort(v)
		slices.Sort(w)
		if !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// event returns a minimal event of either shape for method and path.
func event(v2 bool, method, path string) []byte {
	if v2 {
		return []byte(`{"version":"2.0","rawPath":"` + path + `","requestContext":{"stage":"$default","requestId":"req-1","http":{"method":"` + method + `","path":"` + path + `"}}}`)
	}
	return []byte(`{"path":"` + path + `","httpMethod":"` + method + `","requestContext":{"stage":"dev","requestId":"req-1"}}`)
}

func shapeName(v2 bool) string {
	if v2 {
		return "/v2"
	}
	return "/v1"
}

// response is the shape-independent part of a response.
type response struct {
	status  int
	header  http.Header // v2 headers come back comma-joined, one value each
	cookies []string    // v2 only
	body    string
	base64  bool
}

func invokeShape(t *testing.T, l *Lambda, v2 bool, payload []byte) response {
	t.Helper()
	out, err := l.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if v2 {
		r := decodeV2(t, out)
		h := http.Header{}
		for k, v := range r.Headers {
			h[k] = []string{v}
		}
		return response{r.StatusCode, h, r.Cookies, r.Body, r.IsBase64Encoded}
	}
	r := decodeV1(t, out)
	return response{r.StatusCode, http.Header(r.MultiValueHeaders), nil, r.Body, r.IsBase64Encoded}
}

func TestInvokeResponses(t *testing.T) {
	binary := []byte{0x89, 'P', 'N', 'G', 0xff, 0x00, 0xfe}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  int
		header  map[string][2]string // key: {v1 value(s) joined by "|", v2 value}
		cookies []string
		body    string
		base64  bool
	}{
		{
			name: "created with multi-value headers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Add("Vary", "Origin")
				w.Header().Add("Vary", "Accept-Encoding")
				w.Header().Add("Set-Cookie", "a=1")
				w.Header().Add("Set-Cookie", "b=2")
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, `{"ok":true}`)
			},
			status: http.StatusCreated,
			header: map[string][2]string{
				"Content-Type": {"application/json", "application/json"},
				"Vary":         {"Origin|Accept-Encoding", "Origin,Accept-Encoding"},
				"Set-Cookie":   {"a=1|b=2", ""},
			},
			cookies: []string{"a=1", "b=2"},
			body:    `{"ok":true}`,
		},
		{
			name: "not found",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "no such product", http.StatusNotFound)
			},
			status: http.StatusNotFound,
			header: map[string][2]string{"Content-Type": {"text/plain; charset=utf-8", "text/plain; charset=utf-8"}},
			body:   "no such product\n",
		},
		{
			name:    "no content",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
			status:  http.StatusNoContent,
		},
		{
			name:    "nothing written is 200 as in net/http",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			status:  http.StatusOK,
		},
		{
			name: "content type detected",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "<html><body>hi</body></html>")
			},
			status: http.StatusOK,
			header: map[string][2]string{"Content-Type": {"text/html; charset=utf-8", "text/html; charset=utf-8"}},
			body:   "<html><body>hi</body></html>",
		},
		{
			name: "binary body is base64",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "image/png")
				_, _ = w.Write(binary)
			},
			status: http.StatusOK,
			header: map[string][2]string{"Content-Type": {"image/png", "image/png"}},
			body:   base64.StdEncoding.EncodeToString(binary),
			base64: true,
		},
	}
	for _, tt := range tests {
		for _, v2 := range []bool{true, false} {
			t.Run(tt.name+shapeName(v2), func(t *testing.T) {
				l := NewLambda(tt.handler, quietOptions())
				got := invokeShape(t, l, v2, event(v2, "GET", "/x"))
				if got.status != tt.status || got.body != tt.body || got.base64 != tt.base64 {
					t.Errorf("got %d %q base64=%v, want %d %q base64=%v", got.status, got.body, got.base64, tt.status, tt.body, tt.base64)
				}
				for k, want := range tt.header {
					w := want[0]
					g := strings.Join(got.header[k], "|")
					if v2 {
						w = want[1]
						g = got.header.Get(k)
					}
					if g != w {
						t.Errorf("header %s = %q, want %q", k, g, w)
					}
				}
				if got.header.Get(requestIDHeader) != "req-1" {
					t.Errorf("X-Request-Id = %q, want req-1", got.header.Get(requestIDHeader))
				}
				if v2 && !slices.Equal(got.cookies, tt.cookies) && len(got.cookies)+len(tt.cookies) > 0 {
					t.Errorf("cookies = %q, want %q", got.cookies, tt.cookies)
				}
			})
		}
	}
}

func TestInvokePanic(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		panic   string
	}{
		{"before writing", func(w http.ResponseWriter, r *http.Request) { panic("boom") }, "boom"},
		{"after writing", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("X-Cache", "HIT")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "<p>half a page")
			panic(errors.New("broken pipe to the source"))
		}, "broken pipe to the source"},
		{"panic nil", func(w http.ResponseWriter, r *http.Request) { panic(nil) }, "panic called with nil argument"},
	}
	for _, tt := range tests {
		for _, v2 := range []bool{true, false} {
			t.Run(tt.name+shapeName(v2), func(t *testing.T) {
				var logs logbuf.Buffer
				l := NewLambda(tt.handler, Options{Logger: jsonLogger(&logs)})
				ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "aws-req-9"})
				out, err := l.Invoke(ctx, event(v2, "GET", "/products/1"))
				if err != nil {
					t.Fatal(err)
				}
				var status int
				var body, ctype, cache, rid string
				if v2 {
					r := decodeV2(t, out)
					status, body, ctype, cache, rid = r.StatusCode, r.Body, r.Headers["Content-Type"], r.Headers["X-Cache"], r.Headers[requestIDHeader]
				} else {
					r := decodeV1(t, out)
					h := http.Header(r.MultiValueHeaders)
					status, body, ctype, cache, rid = r.StatusCode, r.Body, h.Get("Content-Type"), h.Get("X-Cache"), h.Get(requestIDHeader)
				}
				if status != 500 || body != `{"error":"internal error","code":"internal","requestId":"aws-req-9"}`+"\n" {
					t.Errorf("got %d %s", status, body)
				}
				if ctype != "application/json; charset=utf-8" || cache != "" || rid != "aws-req-9" {
					t.Errorf("headers: Content-Type %q, X-Cache %q, X-Request-Id %q", ctype, cache, rid)
				}
				lines := logLines(t, &logs)
				if len(lines) != 1 {
					t.Fatalf("want one log line, got %d: %s", len(lines), logs.String())
				}
				line := lines[0]
				if line["level"] != "ERROR" || line["msg"] != "panic" || line["requestId"] != "aws-req-9" || line["panic"] != tt.panic {
					t.Errorf("log line %v", line)
				}
				if s, _ := line["stack"].(string); !strings.Contains(s, "TestInvokePanic") {
					t.Errorf("stack does not show the handler: %q", s)
				}
			})
		}
	}
}

func TestInvokeDeadline(t *testing.T) {
	const noDeadline = 7 * time.Second
	lc := &lambdacontext.LambdaContext{AwsRequestID: "aws-req-1"}
	base := lambdacontext.NewContext(context.Background(), lc)
	soon := time.Now().Add(3 * time.Second)
	close := time.Now().Add(100 * time.Millisecond)

	type ctxFunc func() (context.Context, context.CancelFunc)
	tests := []struct {
		name   string
		margin time.Duration
		ctx    ctxFunc
		// want is the exact deadline, or zero for about noDeadline from now.
		want time.Time
	}{
		{"margin applied", 0, func() (context.Context, context.CancelFunc) { return context.WithDeadline(base, soon) }, soon.Add(-defaultDeadlineMargin)},
		{"custom margin", 500 * time.Millisecond, func() (context.Context, context.CancelFunc) { return context.WithDeadline(base, soon) }, soon.Add(-500 * time.Millisecond)},
		{"no margin", -1, func() (context.Context, context.CancelFunc) { return context.WithDeadline(base, soon) }, soon},
		{"less left than the margin", 0, func() (context.Context, context.CancelFunc) { return context.WithDeadline(base, close) }, close},
		{"no deadline", 0, func() (context.Context, context.CancelFunc) { return base, func() {} }, time.Time{}},
		{"deadline at the epoch, already cancelled", 0, func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(base, time.UnixMilli(0))
		}, time.Time{}},
		{"deadline just past", 0, func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(base, time.Now().Add(-time.Millisecond))
		}, time.Time{}},
	}
	for _, tt := range tests {
		for _, v2 := range []bool{true, false} {
			t.Run(tt.name+shapeName(v2), func(t *testing.T) {
				var got seen
				l := NewLambda(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = record(r) }),
					Options{Logger: slog.New(slog.DiscardHandler), DeadlineMargin: tt.margin, NoDeadlineTimeout: noDeadline})
				ctx, cancel := tt.ctx()
				defer cancel()
				before := time.Now()
				if _, err := l.Invoke(ctx, event(v2, "GET", "/")); err != nil {
					t.Fatal(err)
				}
				after := time.Now()
				if !got.HasDeadline || got.CtxErr != nil {
					t.Fatalf("handler saw deadline %v (%v), err %v; want a live context with a deadline", got.Deadline, got.HasDeadline, got.CtxErr)
				}
				if tt.want.IsZero() {
					if got.Deadline.Before(before.Add(noDeadline)) || got.Deadline.After(after.Add(noDeadline)) {
						t.Errorf("deadline %v is not NoDeadlineTimeout (%s) from the call", got.Deadline.Sub(before), noDeadline)
					}
				} else if !got.Deadline.Equal(tt.want) {
					t.Errorf("deadline = %v, want %v", got.Deadline, tt.want)
				}
				if got.RequestID != "aws-req-1" || got.Lambda != lc {
					t.Errorf("request id %q, lambda context %v: the invocation's values must be kept", got.RequestID, got.Lambda)
				}
			})
		}
	}
}

func TestInvokeColdStart(t *testing.T) {
	var got seen
	l := NewLambda(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = record(r) }), quietOptions())
	for i, want := range []bool{true, false, false} {
		if _, err := l.Invoke(context.Background(), event(i%2 == 0, "GET", "/")); err != nil {
			t.Fatal(err)
		}
		if got.Cold != want {
			t.Errorf("request %d: ColdStart = %v, want %v", i, got.Cold, want)
		}
	}
	if ColdStart(context.Background()) || RequestID(context.Background()) != "" {
		t.Error("a context from outside a request has no cold start and no request id")
	}
	lc := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "x"})
	if RequestID(lc) != "x" {
		t.Error("RequestID falls back to the Lambda context")
	}
}

func TestInvokeGeneratesRequestID(t *testing.T) {
	var got seen
	l := NewLambda(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = record(r) }), quietOptions())
	payload := []byte(`{"version":"2.0","rawPath":"/","requestContext":{"http":{"method":"GET"}}}`)
	if _, err := l.Invoke(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	if !validRequestID(got.RequestID) {
		t.Errorf("generated request id %q", got.RequestID)
	}
}

func TestInvokeInvalid(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{"empty", ""},
		{"not json", "hello"},
		{"array", "[1,2,3]"},
		{"null", "null"},
		{"string", `"version"`},
		{"truncated v2", `{"version":"2.0","rawPath":"/x","requestContext":{"http":{"method":"GET"`},
		{"truncated v1", `{"httpMethod":"GET","path":"/x"`},
		{"wrong type v2", `{"version":"2.0","requestContext":5}`},
		{"wrong type v1", `{"httpMethod":7}`},
		{"empty object", `{}`},
		{"scheduled event", `{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`},
		{"v2 without method", `{"version":"2.0","rawPath":"/x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			l := NewLambda(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }), quietOptions())
			out, err := l.Invoke(context.Background(), []byte(tt.payload))
			if err == nil {
				t.Errorf("no error; response %s", out)
			}
			if called {
				t.Error("handler ran")
			}
		})
	}
}

// TestInvokeBadRequestEvent sends events that API Gateway could not send, or that
// api-proxy could not convert, each with a token in its query string and a forged log
// line where a line break fits: each is a 400 with fault's body, the handler does not
// run, one WARN line says why without repeating the event, and nothing reaches stdout
// or the log package (where api-proxy reports what it cannot convert, with the whole
// URL).
func TestInvokeBadRequestEvent(t *testing.T) {
	const (
		token = "tok-5ecret"
		// forged is a request line of our own, as it reads inside a JSON string.
		forged = `{\"level\":\"ERROR\",\"message\":\"request\",\"ServerError\":1000,\"forged\":\"x\"}`
		nl     = `\n` + forged + `\n` // a line break before and after, escaped as well
	)
	v2 := func(method, path, extra string) string {
		return `{"version":"2.0","rawPath":"` + path + `","rawQueryString":"access_token=` + token + `",` + extra +
			`"requestContext":{"requestId":"r","domainName":"id.execute-api.eu-west-1.amazonaws.com","http":{"method":"` + method + `","path":"` + path + `"}}}`
	}
	v1 := func(method, path, extra string) string {
		return `{"path":"` + path + `","httpMethod":"` + method + `","queryStringParameters":{"access_token":"` + token + `"},` + extra +
			`"requestContext":{"requestId":"r","domainName":"id.execute-api.eu-west-1.amazonaws.com"}}`
	}
	tests := []struct {
		name    string
		v2      bool
		payload string
		reason  error
	}{
		{"v2 bad base64", true, v2("POST", "/x", `"body":"%%%","isBase64Encoded":true,`), errEventBody},
		{"v1 bad base64", false, v1("POST", "/x", `"body":"%%%","isBase64Encoded":true,`), errEventBody},
		{"v2 bad escape in path", true, v2("GET", "/products/%zz", ""), errEventURL},
		{"v1 bad escape in path", false, v1("GET", "/products/42%", ""), errEventURL},
		{"v2 bad escape in a fragment", true, v2("GET", "/products/42#%zz", ""), errEventURL},
		{"v1 bad method", false, v1("GE T", "/x", ""), errEventMethod},
		{"v2 method with a line break", true, v2("GET"+nl, "/x", ""), errEventMethod},
		{"v1 method with a line break", false, v1("GET"+nl, "/x", ""), errEventMethod},
		{"v2 non-ASCII method", true, v2("GÉT", "/x", ""), errEventMethod},
		{"v2 path with a line break", true, v2("GET", "/products/42"+nl, ""), errEventPath},
		{"v1 path with a line break", false, v1("GET", "/products/42"+nl, ""), errEventPath},
		{"v2 path with NUL", true, v2("GET", `/products/42\u0000`, ""), errEventPath},
		{"v1 path with CR", false, v1("GET", `/products/42\r`, ""), errEventPath},
		{"v1 path with DEL", false, v1("GET", "/products/42\u007f", ""), errEventPath},
		{"v2 only http.path has a line break", true, `{"version":"2.0","rawPath":"/x","requestContext":{"requestId":"r","http":{"method":"GET","path":"/x` + nl + `"}}}`, errEventPath},
		{"v1 only requestContext.path has a line break", false, `{"path":"/x","httpMethod":"GET","requestContext":{"requestId":"r","path":"/dev/x` + nl + `"}}`, errEventPath},
		{"v2 header value with CRLF", true, v2("GET", "/x", `"headers":{"x-evil":"a\r\nSet-Cookie: pwned=1"},`), errEventHeader},
		{"v2 header value with NUL", true, v2("GET", "/x", `"headers":{"x-evil":"a\u0000"},`), errEventHeader},
		{"v2 header name with a line break", true, v2("GET", "/x", `"headers":{"x`+nl+`":"1"},`), errEventHeader},
		{"v2 header name with a space", true, v2("GET", "/x", `"headers":{"x evil":"1"},`), errEventHeader},
		{"v2 empty header name", true, v2("GET", "/x", `"headers":{"":"1"},`), errEventHeader},
		{"v2 cookie with a line break", true, v2("GET", "/x", `"cookies":["a=1`+nl+`"],`), errEventHeader},
		{"v1 header value with LF", false, v1("GET", "/x", `"headers":{"X-Evil":"a`+nl+`"},`), errEventHeader},
		{"v1 multi-value header value with CR", false, v1("GET", "/x", `"multiValueHeaders":{"X-Evil":["ok","a\r"]},`), errEventHeader},
		{"v1 multi-value header name with a colon", false, v1("GET", "/x", `"multiValueHeaders":{"X-Evil:":["1"]},`), errEventHeader},
		{"v2 query string with a line break", true, `{"version":"2.0","rawPath":"/x","rawQueryString":"access_token=` + token + nl + `","requestContext":{"requestId":"r","http":{"method":"GET"}}}`, errEventURL},
		{"v2 query string with a bad escape in a fragment", true, `{"version":"2.0","rawPath":"/x","rawQueryString":"access_token=` + token + `#%zz","requestContext":{"requestId":"r","http":{"method":"GET"}}}`, errEventURL},
		{"v2 domain name with a line break", true, `{"version":"2.0","rawPath":"/x","rawQueryString":"access_token=` + token + `","requestContext":{"requestId":"r","domainName":"a` + nl + `","http":{"method":"GET"}}}`, errEventURL},
		{"v1 domain name with a space", false, `{"path":"/x","httpMethod":"GET","queryStringParameters":{"access_token":"` + token + `"},"requestContext":{"requestId":"r","domainName":"a b"}}`, errEventURL},
		{"v1 domain name with a bad port", false, `{"path":"/x","httpMethod":"GET","queryStringParameters":{"access_token":"` + token + `"},"requestContext":{"requestId":"r","domainName":"a:b"}}`, errEventURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logbuf.Buffer
			called := false
			l := NewLambda(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }), Options{Logger: jsonLogger(&logs)})
			stdout, stdlog := captureStdout(t), captureLog(t)
			got := invokeShape(t, l, tt.v2, []byte(tt.payload))
			if got.status != http.StatusBadRequest || got.body != `{"error":"bad request","code":"invalid_request","requestId":"r"}`+"\n" {
				t.Errorf("got %d %s", got.status, got.body)
			}
			if called {
				t.Error("handler ran")
			}
			lines := logLines(t, &logs)
			if len(lines) != 1 || lines[0]["requestId"] != "r" || lines[0]["level"] != "WARN" || lines[0]["error"] != tt.reason.Error() {
				t.Errorf("want one WARN line with the request id and %q; log:\n%s", tt.reason, logs.String())
			}
			for _, s := range []string{token, "forged", "pwned"} {
				if strings.Contains(logs.String(), s) {
					t.Errorf("the log repeats the event's %q:\n%s", s, logs.String())
				}
			}
			if out := stdout(); out != "" {
				t.Errorf("written to stdout: %q", out)
			}
			if out := stdlog(); out != "" {
				t.Errorf("written to the log package (by api-proxy): %q", out)
			}
		})
	}
}

// TestInvokeOddButValidEvents checks that the event checks refuse no more than they
// must: what API Gateway can send, or api-proxy can convert, reaches the handler.
func TestInvokeOddButValidEvents(t *testing.T) {
	tests := []struct {
		name     string
		v2       bool
		payload  string
		path     string
		header   string // X-Odd's value as the handler sees it
		hostEnv  string // GO_API_HOST, when set
		wantHost string
	}{
		{name: "v2 tab and UTF-8 in a header value", v2: true, payload: `{"version":"2.0","rawPath":"/products/42","headers":{"x-odd":"a\tb \u00e9"},"requestContext":{"http":{"method":"GET"}}}`, path: "/products/42", header: "a\tb \u00e9"},
		{name: "v1 tab and UTF-8 in a header value", payload: `{"path":"/products/42","httpMethod":"GET","multiValueHeaders":{"X-Odd":["a\tb \u00e9"]}}`, path: "/products/42", header: "a\tb \u00e9"},
		{name: "v2 escapes and UTF-8 in the path", v2: true, payload: `{"version":"2.0","rawPath":"/products/a%20b\u00e9","requestContext":{"http":{"method":"GET"}}}`, path: "/products/a b\u00e9"},
		{name: "v1 decoded space in the path", payload: `{"path":"/products/a b","httpMethod":"GET"}`, path: "/products/a b"},
		{name: "v1 path without a leading slash", payload: `{"path":"products/42","httpMethod":"GET"}`, path: "/products/42"},
		{name: "v2 lower-case custom method", v2: true, payload: `{"version":"2.0","rawPath":"/x","requestContext":{"http":{"method":"purge"}}}`, path: "/x"},
		{name: "v1 query parameters with control characters, which api-proxy escapes", payload: `{"path":"/x","httpMethod":"GET","queryStringParameters":{"a\n":"\u0000"}}`, path: "/x"},
		{name: "v2 query string with a bad escape", v2: true, payload: `{"version":"2.0","rawPath":"/x","rawQueryString":"a=%zz","requestContext":{"http":{"method":"GET"}}}`, path: "/x"},
		{name: "v2 domain name with a port", v2: true, payload: `{"version":"2.0","rawPath":"/x","requestContext":{"domainName":"localhost:3000","http":{"method":"GET"}}}`, path: "/x", wantHost: "localhost:3000"},
		{name: "v1 GO_API_HOST", payload: `{"path":"/x","httpMethod":"GET","requestContext":{"domainName":"a b"}}`, path: "/x", hostEnv: "https://api.example.com", wantHost: "api.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.hostEnv != "" {
				t.Setenv(core.CustomHostVariable, tt.hostEnv)
			}
			var got seen
			called := false
			l := NewLambda(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				got = record(r)
			}), quietOptions())
			stdlog := captureLog(t)
			if r := invokeShape(t, l, tt.v2, []byte(tt.payload)); r.status != http.StatusOK {
				t.Errorf("status %d: %s", r.status, r.body)
			}
			if !called {
				t.Fatal("handler did not run")
			}
			if got.Path != tt.path || got.Header.Get("X-Odd") != tt.header || got.Host != tt.wantHost {
				t.Errorf("handler saw path %q, X-Odd %q, host %q; want %q, %q, %q", got.Path, got.Header.Get("X-Odd"), got.Host, tt.path, tt.header, tt.wantHost)
			}
			if out := stdlog(); out != "" {
				t.Errorf("written to the log package: %q", out)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		payload string
		want    eventKind
	}{
		{`{"version":"2.0"}`, kindHTTPv2},
		{" \n{ \"version\" :\t\"2.0\" , \"rawPath\":\"/\"}", kindHTTPv2},
		{`{"routeKey":"$default","headers":{"version":"1.0"},"version":"2.0"}`, kindHTTPv2},
		{`{"version":"1.0","path":"/dev/x"}`, kindHTTPv1},
		{`{"path":"/x","httpMethod":"GET"}`, kindREST},
		{`{"queryStringParameters":{"version":"2.0"},"httpMethod":"GET"}`, kindREST},
		{`{"multiValueHeaders":{"Version":["2.0"]},"body":"{\"version\":\"2.0\"}"}`, kindREST},
		{`{"body":"a \\\"version\":\"2.0\" b","x":[{"version":"2.0"}]}`, kindREST},
		{`{"a":1,"b":true,"c":null,"d":-1.5e3,"e":[],"version":"2.0"}`, kindHTTPv2},
		{`{"version":2}`, kindREST},
		{`{"Version":"2.0"}`, kindREST},
		{`{}`, kindREST},
		{`{"version":"2.0`, kindREST},
		{`{"a":{"b":"}"},"version":"2.0"}`, kindHTTPv2},
		{``, kindInvalid},
		{`[]`, kindInvalid},
		{`null`, kindInvalid},
		{`"{"`, kindInvalid},
	}
	for _, tt := range tests {
		if got := kindOf([]byte(tt.payload)); got != tt.want {
			t.Errorf("kindOf(%s) = %d, want %d", tt.payload, got, tt.want)
		}
	}
}

func TestStripStage(t *testing.T) {
	tests := []struct{ path, stage, want string }{
		{"/dev/products/1", "dev", "/products/1"},
		{"/dev", "dev", "/"},
		{"/dev/", "dev", "/"},
		{"/products/1", "$default", "/products/1"},
		{"/products/1", "", "/products/1"},
		{"/devices/1", "dev", "/devices/1"},
		{"/products/1", "dev", "/products/1"},
		{"/de", "dev", "/de"},
		{"", "dev", ""},
		{"/prod/dev/x", "dev", "/prod/dev/x"},
	}
	for _, tt := range tests {
		if got := stripStage(tt.path, tt.stage); got != tt.want {
			t.Errorf("stripStage(%q, %q) = %q, want %q", tt.path, tt.stage, got, tt.want)
		}
	}
}

func TestValidRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc-123_X.y":           true,
		strings.Repeat("a", 64): true,
		strings.Repeat("a", 65): false,
		"":                      false,
		"has space":             false,
		"new\nline":             false,
		"semi;colon":            false,
		"ünï":                   false,
	} {
		if got := validRequestID(id); got != want {
			t.Errorf("validRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}

// A codec can replace encoding/json for the envelope and the response.
func TestInvokeCodec(t *testing.T) {
	c := &countingCodec{}
	o := quietOptions()
	o.Codec = c
	l := NewLambda(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), o)
	if _, err := l.Invoke(context.Background(), readEvent(t, "httpapi-v2.json")); err != nil {
		t.Fatal(err)
	}
	if c.marshal != 1 || c.unmarshal != 1 {
		t.Errorf("codec used for %d decodes and %d encodes, want 1 and 1", c.unmarshal, c.marshal)
	}
}

type countingCodec struct{ marshal, unmarshal int }

func (c *countingCodec) Marshal(v any) ([]byte, error) {
	c.marshal++
	return json.Marshal(v)
}

func (c *countingCodec) Unmarshal(data []byte, v any) error {
	c.unmarshal++
	return json.Unmarshal(data, v)
}

// TestPlainURL checks the shortcut of checkURL: every URL that plainURL lets through
// without a parse does parse, as api-proxy will build it.
func TestPlainURL(t *testing.T) {
	domains := []string{"", ".", "-", "a", "id.execute-api.eu-west-1.amazonaws.com", "a:1", "[::1]", "a@b", "a b", "a%41"}
	paths := []string{"", "/", "x", "//", "//x", "/a b", "/a?b", "/a;b", "/a:b", "/é", "/%41", "/%zz", "/#%zz", "/a\\b", "/[x]"}
	queries := []string{"", "a=b", "a=b?c", "a=<b>", "a=%zz", "a#%zz", "a=é", " "}
	for _, d := range domains {
		for _, p := range paths {
			for _, q := range queries {
				if !plainURL(d, p, q) {
					continue
				}
				u := "https://" + d
				if !strings.HasPrefix(p, "/") {
					u += "/"
				}
				u += p
				if q != "" {
					u += "?" + q
				}
				if _, err := url.Parse(u); err != nil {
					t.Errorf("plainURL(%q, %q, %q), but %v", d, p, q, err)
				}
			}
		}
	}
	if plainURL("a b", "/", "") || plainURL("a", "/%zz", "") || plainURL("a", "/", "#%zz") {
		t.Error("plainURL lets through a URL to parse")
	}
}
