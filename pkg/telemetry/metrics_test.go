package telemetry

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// TestMetricsDescribesTheLine checks Metrics against what lines declare: a request
// that sets every measurement declares them all, with Metrics' units and dimensions
// and a value at the root; one that sets none declares exactly those marked Always.
func TestMetricsDescribesTheLine(t *testing.T) {
	all := Metrics()
	if len(all) == 0 {
		t.Fatal("Metrics() is empty")
	}
	for _, tc := range []struct {
		name string
		set  func(*Record)
		want func(Metric) bool
	}{
		{"every measurement", func(r *Record) { r.SetCache(Hit, "k", time.Millisecond, time.Millisecond) },
			func(Metric) bool { return true }},
		{"no measurement", func(*Record) {}, func(m Metric) bool { return m.Always }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tc.set(FromContext(r.Context()))
			}), Options{Logger: NewLogger(&b, slog.LevelInfo), Function: "f", Stage: "s"})
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
			line := logLines(t, b.String())[0]
			dir := line["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
			var gotDims []string
			for _, d := range dir["Dimensions"].([]any)[0].([]any) {
				gotDims = append(gotDims, d.(string))
			}
			var got, want []string
			for _, m := range dir["Metrics"].([]any) {
				m := m.(map[string]any)
				got = append(got, m["Name"].(string)+"/"+m["Unit"].(string))
				if _, ok := line[m["Name"].(string)]; !ok {
					t.Errorf("%s is declared but has no value at the root", m["Name"])
				}
			}
			for _, m := range all {
				if !slices.Equal(m.Dimensions, gotDims) {
					t.Errorf("%s: Metrics says dimensions %v, the line has %v", m.Name, m.Dimensions, gotDims)
				}
				if tc.want(m) {
					want = append(want, m.Name+"/"+m.Unit)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("declared %v, want %v", got, want)
			}
		})
	}
}
