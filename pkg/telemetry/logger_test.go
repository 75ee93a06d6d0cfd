package telemetry

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/logbuf"
)

// restoreDefault puts back the default slog logger and the log package's output and
// flags, which slog.SetDefault changes.
func restoreDefault(old *slog.Logger) func() {
	w, flags := log.Writer(), log.Flags()
	return func() {
		slog.SetDefault(old)
		log.SetOutput(w)
		log.SetFlags(flags)
	}
}

func TestNewLoggerFormat(t *testing.T) {
	out := &logbuf.Buffer{}
	l := NewLogger(out, slog.Level(-8))
	l.Log(context.Background(), slog.Level(-8), "trace")
	l.Debug("debug")
	l.Info("info", "n", 1)
	l.Log(context.Background(), slog.LevelInfo+2, "info+2")
	l.Warn("warn")
	l.Error("error", "err", "bad")
	l.Log(context.Background(), slog.LevelError+4, "fatal")
	l.WithGroup("g").Info("grouped", "time", "a user value named time")
	want := []string{"TRACE", "DEBUG", "INFO", "INFO", "WARN", "ERROR", "FATAL", "INFO"}
	lines := logLines(t, out.String())
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, line := range lines {
		ts := checkLambdaFormat(t, line, false)
		if d := time.Since(ts); d < -time.Millisecond || d > time.Second {
			t.Errorf("timestamp %v is not now", ts)
		}
		if line["level"] != want[i] {
			t.Errorf("line %d: level = %v, want %s", i, line["level"], want[i])
		}
	}
	if g, _ := lines[7]["g"].(map[string]any); g["time"] != "a user value named time" {
		t.Errorf("an attribute inside a group was renamed: %v", lines[7])
	}
}

func TestNewLoggerLevel(t *testing.T) {
	out := &logbuf.Buffer{}
	var lv slog.LevelVar
	lv.Set(slog.LevelWarn)
	l := NewLogger(out, &lv)
	l.Info("dropped")
	lv.Set(slog.LevelInfo)
	l.Info("kept")
	if line := oneLine(t, out.String()); line["message"] != "kept" {
		t.Errorf("got %v", line)
	}
}

// TestStdLogGoesThroughHandler is the path of aws-lambda-go's own log lines once main
// has called slog.SetDefault.
func TestStdLogGoesThroughHandler(t *testing.T) {
	out := &logbuf.Buffer{}
	defer restoreDefault(slog.Default())()
	slog.SetDefault(NewLogger(out, slog.LevelInfo))

	log.Printf("expected AWS Lambda environment variables %v are not defined", []string{"_LAMBDA_SERVER_PORT"})
	line := oneLine(t, out.String())
	checkLambdaFormat(t, line, false)
	if line["level"] != "INFO" || line["message"] != "expected AWS Lambda environment variables [_LAMBDA_SERVER_PORT] are not defined" {
		t.Errorf("got %v", line)
	}
}

// TestRequestIDOnOtherLines: a line logged with a request's context gets its id,
// once.
func TestRequestIDOnOtherLines(t *testing.T) {
	out := &logbuf.Buffer{}
	o := testOptions(out)
	l := o.Logger
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		l.InfoContext(ctx, "inside")
		l.InfoContext(ctx, "own id", "requestId", "mine")
		l.With("requestId", "with").InfoContext(ctx, "with id")
		l.WithGroup("g").InfoContext(ctx, "grouped")
		l.Info("no context")
	}), o)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	lines := logLines(t, out.String())
	want := []struct{ msg, id string }{
		{"inside", "req-1"}, {"own id", "mine"}, {"with id", "with"}, {"grouped", ""}, {"no context", ""}, {"request", "req-1"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		id, _ := lines[i]["requestId"].(string)
		if lines[i]["message"] != w.msg || id != w.id {
			t.Errorf("line %d = %v, want message %q with requestId %q", i, lines[i], w.msg, w.id)
		}
	}
}

// TestAppendTimestamp holds the hand-written timestamp against time's own layout.
func TestAppendTimestamp(t *testing.T) {
	times := []time.Time{
		{}, time.Date(2026, 11, 25, 21, 4, 5, 123456789, time.FixedZone("CET", 3600)), time.Unix(0, 0), time.Unix(1<<40, 999999999),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 29, 1, 30, 0, 1e6, time.FixedZone("-0930", -9*3600-1800)),
	}
	for i := range 1000 {
		times = append(times, time.Unix(0, int64(i)*7919*1e12+int64(i)*1e6+123))
	}
	for _, tm := range times {
		if got, want := string(appendTimestamp(nil, tm)), tm.UTC().Format(timestampLayout); got != want {
			t.Errorf("%v: %s, want %s", tm, got, want)
		}
	}
}
