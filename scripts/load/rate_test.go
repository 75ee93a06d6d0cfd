package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestRateCountsTheWaitOfLateRequests: with -rate, a request the server held up
// makes the requests due behind it late, and their latency counts from when each
// was due; the closed loop, over the same server, sees one slow request only. The
// server stalls its first timed request (the 1,001st: the warm-up reads the 1,000
// ids) for 300 ms; at 100 requests/s from one worker, about 30 requests fall due
// during the stall.
func TestRateCountsTheWaitOfLateRequests(t *testing.T) {
	sharedRedis(t)
	run1 := func(t *testing.T, args ...string) result {
		t.Helper()
		var n atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1001 {
				time.Sleep(300 * time.Millisecond)
			}
			w.Header().Set("X-Cache", "HIT")
			_, _ = w.Write([]byte(`{}`))
		}))
		defer srv.Close()
		var out bytes.Buffer
		if err := run(append([]string{"-mode", "http", "-url", srv.URL, "-c", "1", "-d", "1500ms", "-json"}, args...), &out); err != nil {
			t.Fatal(err)
		}
		var got struct{ Results []result }
		if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Results) != 1 {
			t.Fatalf("%v: %s", err, out.Bytes())
		}
		return got.Results[0]
	}
	open := run1(t, "-rate", "100")
	t.Logf("open loop: %d requests, p95 %.0fµs, max %.0fµs", open.Requests, open.P95us, open.MaxUs)
	// Paced: about 150 in 1.5 s, not the thousands a closed loop sends.
	if open.Requests < 50 || open.Requests > 170 {
		t.Errorf("open loop at 100/s for 1.5 s: %d requests", open.Requests)
	}
	if open.Rate != 100 {
		t.Errorf("rate %v in the results, want 100", open.Rate)
	}
	// Over 5% of the requests were due during the stall: p95 holds its wait.
	if open.P95us < 100e3 {
		t.Errorf("open loop p95 %.0fµs: the requests due during the 300 ms stall did not count their wait", open.P95us)
	}
	closed := run1(t)
	t.Logf("closed loop: %d requests, p95 %.0fµs, max %.0fµs", closed.Requests, closed.P95us, closed.MaxUs)
	if closed.MaxUs < 300e3 || closed.P95us >= 100e3 {
		t.Errorf("closed loop: max %.0fµs, p95 %.0fµs, want the one stalled request only", closed.MaxUs, closed.P95us)
	}
}
