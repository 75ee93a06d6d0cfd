package serve

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"
	"testing"
)

// FuzzInvoke feeds arbitrary payloads to Invoke: it must never panic, and whatever
// it answers is a response in the shape of the event. The seed corpus is in
// testdata/fuzz/FuzzInvoke (events of both shapes, garbage, huge bodies).
func FuzzInvoke(f *testing.F) {
	// api-proxy reports unconvertible events with the standard logger.
	log.SetOutput(io.Discard)
	f.Cleanup(func() { log.SetOutput(os.Stderr) })

	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"id": r.PathValue("id"), "q": r.URL.RawQuery})
	})
	mux.HandleFunc("POST /cache/clear", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Add("Set-Cookie", "a=1")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) { panic("fuzz") })
	l := NewLambda(mux, quietOptions())

	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := l.Invoke(context.Background(), payload)
		if err != nil {
			if out != nil {
				t.Errorf("error %v with a response %q", err, out)
			}
			return
		}
		var resp struct {
			StatusCode        int                 `json:"statusCode"`
			Cookies           *[]string           `json:"cookies"`
			MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("response is not JSON: %v: %q", err, out)
		}
		if resp.StatusCode < 200 || resp.StatusCode > 599 {
			t.Errorf("status %d", resp.StatusCode)
		}
		if v2 := kindOf(payload) == kindHTTPv2; v2 != (resp.Cookies != nil) {
			t.Errorf("payload 2.0 event: %v, but the response has cookies: %v: %s", v2, resp.Cookies != nil, out)
		}
	})
}
