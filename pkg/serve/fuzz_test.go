package serve

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
)

// FuzzInvoke feeds arbitrary payloads to Invoke: it must never panic, whatever it
// answers is a response in the shape of the event, and nothing is written to stdout
// or with the log package: api-proxy writes there only about an event it cannot
// convert (fmt.Printf of the raw method and path, and the whole URL with the log
// package), which the event checks must have refused first. The seed corpus is in
// testdata/fuzz/FuzzInvoke (events of both shapes, garbage, huge bodies, events API
// Gateway could not send).
func FuzzInvoke(f *testing.F) {
	// A file, not a pipe: its size tells at once whether anything was written.
	stdout, err := os.CreateTemp(f.TempDir(), "stdout")
	if err != nil {
		f.Fatal(err)
	}
	prevStdout, prevLog := os.Stdout, log.Writer()
	os.Stdout = stdout
	var logged atomic.Int64
	log.SetOutput(writerFunc(func(p []byte) (int, error) {
		logged.Add(int64(len(p)))
		return len(p), nil
	}))
	f.Cleanup(func() {
		os.Stdout = prevStdout
		log.SetOutput(prevLog)
		_ = stdout.Close()
	})

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
		logs := logged.Swap(0)
		if fi, err := stdout.Stat(); err != nil || fi.Size() != 0 {
			b, _ := os.ReadFile(stdout.Name())
			// Start the next input (the next seed) on an empty file.
			_ = stdout.Truncate(0)
			_, _ = stdout.Seek(0, io.SeekStart)
			t.Fatalf("written to stdout: %.300q (stat: %v)", b, err)
		}
		if logs != 0 {
			t.Fatalf("%d bytes written with the log package (api-proxy could not convert the event)", logs)
		}
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

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
