package telemetry

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// logLines splits the output into lines, checks that each is one JSON object with
// no repeated key at its root, and decodes them.
func logLines(tb testing.TB, out string) []map[string]any {
	tb.Helper()
	var lines []map[string]any
	for l := range strings.Lines(out) {
		l = strings.TrimSuffix(l, "\n")
		if l == "" {
			tb.Fatalf("empty log line in %q", out)
		}
		checkUniqueKeys(tb, l)
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(l))
		if err := d.Decode(&m); err != nil {
			tb.Fatalf("log line is not a JSON object: %v: %s", err, l)
		}
		if d.More() {
			tb.Fatalf("log line holds more than one JSON value: %s", l)
		}
		lines = append(lines, m)
	}
	return lines
}

// checkUniqueKeys fails when the root object of line repeats a key: encoding/json
// would keep the last one silently, CloudWatch may not.
func checkUniqueKeys(tb testing.TB, line string) {
	tb.Helper()
	d := json.NewDecoder(strings.NewReader(line))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		tb.Fatalf("log line does not start with an object: %s", line)
	}
	seen := map[string]bool{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			tb.Fatalf("log line: %v: %s", err, line)
		}
		k := t.(string)
		if seen[k] {
			tb.Fatalf("key %q appears twice: %s", k, line)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			tb.Fatalf("log line: %v: %s", err, line)
		}
	}
}

// oneLine returns the single line in out.
func oneLine(tb testing.TB, out string) map[string]any {
	tb.Helper()
	lines := logLines(tb, out)
	if len(lines) != 1 {
		tb.Fatalf("got %d log lines, want 1:\n%s", len(lines), out)
	}
	return lines[0]
}

var lambdaTimestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// checkLambdaFormat checks a line against Lambda's JSON log format for application
// logs: timestamp (RFC 3339, UTC, milliseconds), an upper-case level Lambda knows,
// message, and requestId when wantID is set.
func checkLambdaFormat(tb testing.TB, line map[string]any, wantID bool) time.Time {
	tb.Helper()
	ts, ok := line["timestamp"].(string)
	if !ok {
		tb.Fatalf("timestamp = %#v, want a string", line["timestamp"])
	}
	if !lambdaTimestamp.MatchString(ts) {
		tb.Errorf("timestamp %q is not RFC 3339 UTC with milliseconds", ts)
	}
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		tb.Errorf("timestamp: %v", err)
	}
	lvl, _ := line["level"].(string)
	if !slices.Contains([]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}, lvl) {
		tb.Errorf("level = %#v, want one of Lambda's upper-case levels", line["level"])
	}
	if _, ok := line["message"].(string); !ok {
		tb.Errorf("message = %#v, want a string", line["message"])
	}
	for _, k := range []string{"time", "msg"} {
		if _, ok := line[k]; ok {
			tb.Errorf("slog's key %q is left in the line", k)
		}
	}
	if id, ok := line["requestId"].(string); wantID && (!ok || id == "") {
		tb.Errorf("requestId = %#v, want a non-empty string", line["requestId"])
	}
	return t
}

// checkEMF checks a line against the CloudWatch Embedded Metric Format: "_aws" with
// a Timestamp in Unix milliseconds near now, one directive with a namespace,
// dimension sets whose keys are strings at the root, and metrics whose values are
// numbers at the root. It returns the declared metric names, and fails when a metric
// of the request line's is at the root without being declared.
func checkEMF(tb testing.TB, line map[string]any, now time.Time) []string {
	tb.Helper()
	aws, ok := line["_aws"].(map[string]any)
	if !ok {
		tb.Fatalf("_aws = %#v, want an object", line["_aws"])
	}
	ts, ok := aws["Timestamp"].(float64)
	if !ok {
		tb.Fatalf("_aws.Timestamp = %#v, want a number", aws["Timestamp"])
	}
	if d := time.UnixMilli(int64(ts)).Sub(now); d < -time.Second || d > time.Second {
		tb.Errorf("_aws.Timestamp is %v away from now", d)
	}
	if ts != float64(int64(ts)) {
		tb.Errorf("_aws.Timestamp = %v, want whole milliseconds", ts)
	}
	cwm, ok := aws["CloudWatchMetrics"].([]any)
	if !ok || len(cwm) != 1 {
		tb.Fatalf("_aws.CloudWatchMetrics = %#v, want one directive", aws["CloudWatchMetrics"])
	}
	dir, ok := cwm[0].(map[string]any)
	if !ok {
		tb.Fatalf("directive = %#v, want an object", cwm[0])
	}
	if ns, _ := dir["Namespace"].(string); ns == "" {
		tb.Errorf("Namespace = %#v, want a non-empty string", dir["Namespace"])
	}
	dims, ok := dir["Dimensions"].([]any)
	if !ok || len(dims) == 0 {
		tb.Fatalf("Dimensions = %#v, want an array of dimension sets", dir["Dimensions"])
	}
	for _, set := range dims {
		keys, ok := set.([]any)
		if !ok || len(keys) == 0 || len(keys) > 30 {
			tb.Fatalf("dimension set = %#v, want 1 to 30 keys", set)
		}
		for _, k := range keys {
			name, ok := k.(string)
			if !ok {
				tb.Fatalf("dimension key = %#v, want a string", k)
			}
			if v, ok := line[name].(string); !ok || v == "" {
				tb.Errorf("dimension %q = %#v at the root, want a non-empty string", name, line[name])
			}
		}
	}
	metrics, ok := dir["Metrics"].([]any)
	if !ok || len(metrics) == 0 || len(metrics) > 100 {
		tb.Fatalf("Metrics = %#v, want 1 to 100 metrics", dir["Metrics"])
	}
	var names []string
	for _, m := range metrics {
		def, ok := m.(map[string]any)
		if !ok {
			tb.Fatalf("metric = %#v, want an object", m)
		}
		name, ok := def["Name"].(string)
		if !ok || name == "" {
			tb.Fatalf("metric Name = %#v, want a string", def["Name"])
		}
		if u, ok := def["Unit"]; ok {
			if _, ok := u.(string); !ok {
				tb.Errorf("metric %s Unit = %#v, want a string", name, u)
			}
		}
		if _, ok := line[name].(float64); !ok {
			tb.Errorf("metric %s = %#v at the root, want a number", name, line[name])
		}
		names = append(names, name)
	}
	for _, name := range allMetrics {
		if _, ok := line[name]; ok && !slices.Contains(names, name) {
			tb.Errorf("metric %s is at the root but not declared", name)
		}
	}
	return names
}

var allMetrics = []string{metricHit, metricMiss, metricBypass, metricStale, metricLatency, metricRedis, metricSource, metricServerError}

// nopWriter is a ResponseWriter that keeps nothing, for benchmarks.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}
