package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/logbuf"
)

// helperEnv tells the test binary, started again by a test below, to run Run as a
// function's main would.
const helperEnv = "SERVE_TEST_HELPER"

// TestHelperProcess is the child's main; it does nothing in a normal test run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("runs only as the child of the process tests")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		d, ok := r.Context().Deadline()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": r.PathValue("id"), "requestId": RequestID(r.Context()), "cold": ColdStart(r.Context()),
			"live": r.Context().Err() == nil, "hasDeadline": ok, "deadlineInMs": time.Until(d).Milliseconds(),
		})
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("child boom") })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "in-flight")
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, "slow done")
	})
	err := Run(context.Background(), mux, Options{
		Name:   "helper",
		Addr:   os.Getenv("SERVE_TEST_ADDR"),
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, nil)),
		OnShutdown: func(ctx context.Context) error {
			fmt.Fprintln(os.Stderr, "onshutdown-called")
			return nil
		},
	})
	fmt.Fprintf(os.Stderr, "run-returned err=%v\n", err)
}

// child is the test binary started again to run TestHelperProcess.
type child struct {
	cmd    *exec.Cmd
	out    *logbuf.Buffer
	exited chan struct{} // closed when the child has exited; err is set then
	err    error
}

// startHelper starts a child; the test ends it by its process id.
func startHelper(tb testing.TB, env ...string) *child {
	tb.Helper()
	c := &child{
		cmd:    exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1"),
		out:    &logbuf.Buffer{},
		exited: make(chan struct{}),
	}
	c.cmd.Env = append(os.Environ(), append([]string{helperEnv + "=1"}, env...)...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	tb.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		if tb.Failed() {
			tb.Logf("child output:\n%s", c.out.String())
		}
	})
	return c
}

// fakeRuntime is enough of the Lambda runtime and extensions APIs for
// aws-lambda-go: it hands out queued invocations, records the answers, and holds
// /next open once the queue is empty, as Lambda does between invocations.
type fakeRuntime struct {
	srv     *httptest.Server
	invokes chan fakeInvoke
	answers chan fakeAnswer
}

type fakeInvoke struct {
	id         string
	deadlineMs string
	payload    []byte
}

type fakeAnswer struct {
	id, kind string // kind: response or error
	body     []byte
}

func newFakeRuntime(tb testing.TB, invokes ...fakeInvoke) *fakeRuntime {
	tb.Helper()
	f := &fakeRuntime{invokes: make(chan fakeInvoke, len(invokes)), answers: make(chan fakeAnswer, len(invokes))}
	for _, in := range invokes {
		f.invokes <- in
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2020-01-01/extension/register", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Lambda-Extension-Identifier", "ext-1")
		_, _ = io.WriteString(w, `{}`)
	})
	mux.HandleFunc("GET /2020-01-01/extension/event/next", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case in := <-f.invokes:
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", in.id)
			h.Set("Lambda-Runtime-Deadline-Ms", in.deadlineMs)
			h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:helper")
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-66a1b2c3-0123456789abcdef01234567")
			_, _ = w.Write(in.payload)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/{kind}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.answers <- fakeAnswer{r.PathValue("id"), r.PathValue("kind"), body}
		w.WriteHeader(http.StatusAccepted)
	})
	f.srv = httptest.NewServer(mux)
	tb.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRuntime) answer(tb testing.TB) fakeAnswer {
	tb.Helper()
	select {
	case a := <-f.answers:
		return a
	case <-time.After(10 * time.Second):
		tb.Fatal("no answer from the function")
	}
	return fakeAnswer{}
}

// TestLambdaProcess runs Run under aws-lambda-go against a fake runtime API: the
// invocations are answered, a panic does not end the environment, a deadline at the
// epoch (old `sam local`) does not cancel the request, and SIGTERM runs OnShutdown.
func TestLambdaProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	future := strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10)
	v2 := readEvent(t, "httpapi-v2.json")
	panicEvent := event(true, "GET", "/panic")
	rt := newFakeRuntime(t,
		fakeInvoke{"inv-1", future, panicEvent},
		fakeInvoke{"inv-2", "0", v2},
		fakeInvoke{"inv-3", future, readEvent(t, "rest-v1.json")},
	)
	c := startHelper(t, "AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(rt.srv.URL, "http://"))
	cmd, out := c.cmd, c.out

	a := rt.answer(t)
	if a.id != "inv-1" || a.kind != "response" {
		t.Fatalf("answer %s %s: %s", a.id, a.kind, a.body)
	}
	if r := decodeV2(t, a.body); r.StatusCode != 500 || r.Body != `{"error":"internal error","code":"internal","requestId":"inv-1"}`+"\n" {
		t.Errorf("panic answered %d %s", r.StatusCode, r.Body)
	}

	type product struct {
		ID, RequestID           string
		Cold, Live, HasDeadline bool
		DeadlineInMs            int64
	}
	a = rt.answer(t)
	if a.id != "inv-2" || a.kind != "response" {
		t.Fatalf("answer %s %s: %s", a.id, a.kind, a.body)
	}
	var p product
	if err := json.Unmarshal([]byte(decodeV2(t, a.body).Body), &p); err != nil {
		t.Fatal(err)
	}
	if p.ID != "42" || p.RequestID != "inv-2" || p.Cold || !p.Live || !p.HasDeadline || p.DeadlineInMs < 29_000 {
		t.Errorf("after a deadline at the epoch the handler saw %+v; want a live context ~30s from its end", p)
	}

	a = rt.answer(t)
	if a.id != "inv-3" || a.kind != "response" {
		t.Fatalf("answer %s %s: %s", a.id, a.kind, a.body)
	}
	r := decodeV1(t, a.body)
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != 200 || p.RequestID != "inv-3" || p.DeadlineInMs > 59_800 || p.DeadlineInMs < 50_000 {
		t.Errorf("REST answer %d %+v; want the deadline less 200ms", r.StatusCode, p)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "OnShutdown after SIGTERM", func() bool {
		return strings.Contains(out.String(), "onshutdown-called")
	})
	select {
	case <-c.exited:
		t.Errorf("the runtime exited (%v) before Lambda's SIGKILL", c.err)
	default:
	}
	var panics, shutdowns int
	for _, line := range strings.Split(out.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch m["msg"] {
		case "panic":
			panics++
			if m["requestId"] != "inv-1" || m["function"] != "helper" {
				t.Errorf("panic line %v", m)
			}
		case "shutdown":
			shutdowns++
		}
	}
	if panics != 1 || shutdowns != 1 {
		t.Errorf("%d panic and %d shutdown lines", panics, shutdowns)
	}
}

// TestHTTPProcessSIGTERM sends a real SIGTERM to a child serving HTTP with a request
// in flight: the request is answered, then OnShutdown runs and Run returns nil.
func TestHTTPProcessSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	addr := freeAddr(t)
	ch := startHelper(t, "SERVE_TEST_ADDR="+addr)
	cmd, out := ch.cmd, ch.out

	c := newClient(t)
	waitFor(t, 10*time.Second, "the child to listen", func() bool {
		return strings.Contains(out.String(), `"msg":"start"`)
	})
	slow := make(chan string, 1)
	go func() {
		resp, err := c.Get("http://" + addr + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slow <- string(b)
	}()
	waitFor(t, 5*time.Second, "the request to be in flight", func() bool {
		return strings.Contains(out.String(), "in-flight")
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := <-slow; got != "slow done" {
		t.Errorf("in-flight request got %q", got)
	}
	select {
	case <-ch.exited:
		if ch.err != nil {
			t.Errorf("child: %v", ch.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("child did not exit after SIGTERM")
	}
	s := out.String()
	i, j, k := strings.Index(s, `"msg":"shutdown"`), strings.Index(s, "onshutdown-called"), strings.Index(s, "run-returned err=<nil>")
	if i < 0 || j < i || k < j {
		t.Errorf("want shutdown, OnShutdown, Run returning nil, in that order:\n%s", s)
	}
}
