package serve

import (
	"encoding/json"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/logbuf"

	"github.com/aws/aws-lambda-go/events"
)

// readEvent returns an event from testdata/events.
func readEvent(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "events", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func decodeV2(tb testing.TB, out []byte) events.APIGatewayV2HTTPResponse {
	tb.Helper()
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		tb.Fatalf("response is not a payload 2.0 response: %v\n%s", err, out)
	}
	return resp
}

func decodeV1(tb testing.TB, out []byte) events.APIGatewayProxyResponse {
	tb.Helper()
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		tb.Fatalf("response is not a proxy response: %v\n%s", err, out)
	}
	return resp
}

// logLines decodes the JSON lines written to buf.
func logLines(tb testing.TB, buf *logbuf.Buffer) []map[string]any {
	tb.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			tb.Fatalf("log line is not JSON: %v: %s", err, l)
		}
		lines = append(lines, m)
	}
	return lines
}

func jsonLogger(w *logbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

// waitFor polls cond until it holds or d passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkGoroutines fails the test when goroutines of this package or of net/http
// servers and clients outlive it.
func checkGoroutines(tb testing.TB) {
	tb.Helper()
	tb.Cleanup(func() {
		var leaked []string
		deadline := time.Now().Add(3 * time.Second)
		for {
			leaked = leakedGoroutines()
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(leaked) > 0 {
			tb.Errorf("%d goroutines leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
	})
}

func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	// The first block is the calling goroutine.
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue
		}
		for _, marker := range []string{
			"storeapi/pkg/serve.", "net/http.(*conn)", "net/http.(*Server)",
			"net/http.(*persistConn)", "net/http/httptest.",
		} {
			if strings.Contains(g, marker) {
				leaked = append(leaked, g)
				break
			}
		}
	}
	return leaked
}

// captureStdout points os.Stdout at a file until the test ends or the returned
// function is called, which returns what was written to it. Tests that use it must
// not run in parallel.
func captureStdout(tb testing.TB) func() string {
	tb.Helper()
	f, err := os.CreateTemp(tb.TempDir(), "stdout")
	if err != nil {
		tb.Fatal(err)
	}
	prev := os.Stdout
	os.Stdout = f
	var once sync.Once
	var out string
	stop := func() string {
		once.Do(func() {
			os.Stdout = prev
			_ = f.Close()
			b, _ := os.ReadFile(f.Name())
			out = string(b)
		})
		return out
	}
	tb.Cleanup(func() { stop() })
	return stop
}

// captureLog points the log package's standard logger at a buffer until the test
// ends or the returned function is called, which returns what was written to it.
func captureLog(tb testing.TB) func() string {
	tb.Helper()
	var buf logbuf.Buffer
	prev := log.Writer()
	log.SetOutput(&buf)
	var once sync.Once
	stop := func() string {
		once.Do(func() { log.SetOutput(prev) })
		return buf.String()
	}
	tb.Cleanup(func() { stop() })
	return stop
}
