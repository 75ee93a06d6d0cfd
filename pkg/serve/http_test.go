package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/logbuf"
)

// newClient returns a client whose connections end with the test.
func newClient(tb testing.TB) *http.Client {
	tb.Helper()
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func get(tb testing.TB, c *http.Client, url string, header map[string]string) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("reading the body: %v", err)
	}
	return resp, string(body)
}

func TestHandlerRequestID(t *testing.T) {
	checkGoroutines(t)
	var got seen
	srv := httptest.NewServer(Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = record(r) }), quietOptions()))
	defer srv.Close()
	c := newClient(t)

	tests := []struct {
		name, header string
		keep         bool
	}{
		{"well-formed", "req-01.ABC_z", true},
		{"64 characters", strings.Repeat("x", 64), true},
		{"none", "", false},
		{"too long", strings.Repeat("x", 65), false},
		{"bad characters", "id with spaces", false},
		{"log injection", `a","level":"ERROR`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.header != "" {
				h[requestIDHeader] = tt.header
			}
			resp, _ := get(t, c, srv.URL, h)
			if tt.keep && got.RequestID != tt.header {
				t.Errorf("RequestID = %q, want the caller's %q", got.RequestID, tt.header)
			}
			if !tt.keep && (got.RequestID == tt.header || !validRequestID(got.RequestID)) {
				t.Errorf("RequestID = %q, want a generated one", got.RequestID)
			}
			if resp.Header.Get(requestIDHeader) != got.RequestID {
				t.Errorf("response X-Request-Id = %q, want %q", resp.Header.Get(requestIDHeader), got.RequestID)
			}
		})
	}
}

func TestHandlerContext(t *testing.T) {
	checkGoroutines(t)
	var got seen
	o := quietOptions()
	o.NoDeadlineTimeout = 3 * time.Second
	srv := httptest.NewServer(Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = record(r) }), o))
	defer srv.Close()
	c := newClient(t)
	for i, want := range []bool{true, false, false} {
		before := time.Now()
		get(t, c, srv.URL, nil)
		if got.Cold != want {
			t.Errorf("request %d: ColdStart = %v, want %v", i, got.Cold, want)
		}
		if !got.HasDeadline || got.Deadline.Before(before.Add(3*time.Second)) || got.Deadline.After(time.Now().Add(3*time.Second)) {
			t.Errorf("request %d: deadline %v (%v), want NoDeadlineTimeout from now", i, got.Deadline, got.HasDeadline)
		}
	}
}

func TestHandlerPanic(t *testing.T) {
	checkGoroutines(t)
	var logs logbuf.Buffer
	mux := http.NewServeMux()
	mux.HandleFunc("/before", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Cache", "HIT")
		w.Header().Set("Content-Type", "text/html")
		panic("boom")
	})
	mux.HandleFunc("/after", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("late boom")
	})
	mux.HandleFunc("/abort", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) })
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := httptest.NewUnstartedServer(Handler(mux, Options{Logger: jsonLogger(&logs)}))
	srv.Config.ErrorLog = nil
	srv.Start()
	defer srv.Close()
	c := newClient(t)

	resp, body := get(t, c, srv.URL+"/before", map[string]string{requestIDHeader: "rid-1"})
	if resp.StatusCode != 500 || body != `{"error":"internal error","code":"internal","requestId":"rid-1"}`+"\n" {
		t.Errorf("got %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/json; charset=utf-8" || resp.Header.Get("X-Cache") != "" || resp.Header.Get(requestIDHeader) != "rid-1" {
		t.Errorf("headers %v: the handler's must be gone, the error's set", resp.Header)
	}

	// The response had started: it ends where the handler stopped, without
	// dropping the connection.
	resp, body = get(t, c, srv.URL+"/after", map[string]string{requestIDHeader: "rid-2"})
	if resp.StatusCode != 200 || body != "partial" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if _, body := get(t, c, srv.URL+"/ok", nil); body != "ok" {
		t.Errorf("server unwell after panics: %q", body)
	}

	lines := logLines(t, &logs)
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines, got %s", logs.String())
	}
	for i, want := range []struct{ id, panic string }{{"rid-1", "boom"}, {"rid-2", "late boom"}} {
		l := lines[i]
		if l["msg"] != "panic" || l["requestId"] != want.id || l["panic"] != want.panic || !strings.Contains(l["stack"].(string), "TestHandlerPanic") {
			t.Errorf("log line %d: %v", i, l)
		}
	}

	// http.ErrAbortHandler keeps its meaning: the response is aborted, unlogged.
	if _, err := c.Get(srv.URL + "/abort"); err == nil {
		t.Error("abort: the response was not aborted")
	}
	if n := len(logLines(t, &logs)); n != 2 {
		t.Errorf("abort logged: %s", logs.String())
	}
}

// inflight is a handler that blocks in /slow until released.
type inflight struct {
	entered, release chan struct{}
	mu               sync.Mutex
	events           []string
}

func newInflight() *inflight {
	return &inflight{entered: make(chan struct{}), release: make(chan struct{})}
}

func (f *inflight) note(e string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *inflight) notes() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.events, ",")
}

func (f *inflight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/slow" {
		_, _ = io.WriteString(w, "fast")
		return
	}
	close(f.entered)
	select {
	case <-f.release:
		f.note("handler done")
		_, _ = io.WriteString(w, "done")
	case <-r.Context().Done():
		f.note("handler cancelled")
	}
}

func (f *inflight) onShutdown(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		f.note("onshutdown without deadline")
	}
	f.note("onshutdown")
	return nil
}

func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln := listen(tb)
	defer ln.Close()
	return ln.Addr().String()
}

// Cancelling Run's context, as a signal does, stops accepting, lets the request in
// flight finish, then runs OnShutdown.
func TestRunHTTPGracefulShutdown(t *testing.T) {
	checkGoroutines(t)
	var logs logbuf.Buffer
	f := newInflight()
	addr := freeAddr(t)
	o := Options{Addr: addr, Logger: jsonLogger(&logs), OnShutdown: f.onShutdown, ShutdownTimeout: 5 * time.Second}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, f, o) }()

	c := newClient(t)
	waitFor(t, 5*time.Second, "the server to answer", func() bool {
		resp, err := c.Get("http://" + addr + "/fast")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := c.Get("http://" + addr + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{string(b), err}
	}()
	<-f.entered

	// Cancelling the context is what a signal does.
	cancel()
	waitFor(t, 2*time.Second, "the listener to close", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	if strings.Contains(f.notes(), "onshutdown") {
		t.Fatal("OnShutdown ran before the in-flight request finished")
	}

	close(f.release)
	if r := <-slow; r.err != nil || r.body != "done" {
		t.Errorf("in-flight request: %q, %v", r.body, r.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if got := f.notes(); got != "handler done,onshutdown" {
		t.Errorf("order of events: %s", got)
	}
	var msgs []string
	for _, l := range logLines(t, &logs) {
		msgs = append(msgs, l["msg"].(string))
	}
	if strings.Join(msgs, ",") != "start,shutdown" {
		t.Errorf("log: %s", logs.String())
	}
}

func TestServeHTTPShutdownTimeout(t *testing.T) {
	checkGoroutines(t)
	f := newInflight()
	ln := listen(t)
	o := Options{Logger: quietOptions().Logger, OnShutdown: f.onShutdown, ShutdownTimeout: 100 * time.Millisecond}.withDefaults()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, ln, f, o) }()

	c := newClient(t)
	slow := make(chan error, 1)
	go func() {
		resp, err := c.Get("http://" + ln.Addr().String() + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		slow <- err
	}()
	<-f.entered
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("serveHTTP = %v, want the drain's deadline error", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("shutdown took %s with a 100ms bound", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serveHTTP did not return")
	}
	if err := <-slow; err == nil {
		t.Error("the stuck request was answered; want its connection cut")
	}
	waitFor(t, 2*time.Second, "the stuck handler to see its context end", func() bool {
		return strings.Contains(f.notes(), "handler cancelled")
	})
	if !strings.Contains(f.notes(), "onshutdown") || strings.Contains(f.notes(), "without deadline") {
		t.Errorf("events: %s", f.notes())
	}
}

func TestRunHTTP(t *testing.T) {
	checkGoroutines(t)
	addr := freeAddr(t)

	calls := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	o := quietOptions()
	o.Addr = addr
	o.OnShutdown = func(context.Context) error { calls++; return nil }
	go func() {
		done <- Run(ctx, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, RequestID(r.Context()))
		}), o)
	}()

	c := newClient(t)
	var body string
	waitFor(t, 5*time.Second, "the server to answer", func() bool {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return true
	})
	if !validRequestID(body) {
		t.Errorf("request id %q", body)
	}
	c.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if calls != 1 {
		t.Errorf("OnShutdown ran %d times", calls)
	}
}

func TestRunHTTPListenError(t *testing.T) {
	ln := listen(t)
	defer ln.Close()
	o := quietOptions()
	o.Addr = ln.Addr().String()
	err := Run(context.Background(), http.NotFoundHandler(), o)
	if err == nil || !strings.Contains(err.Error(), "listen on "+o.Addr) {
		t.Errorf("Run on a taken port = %v", err)
	}
}
