package telemetry

import "net/http"

// responseWriter records the status and the body size of a response. It implements
// http.Flusher whatever it wraps, and Unwrap, so http.ResponseController reaches the
// features of the writer underneath (deadlines, hijacking).
type responseWriter struct {
	rw     http.ResponseWriter
	status int
	bytes  int64
}

func (w *responseWriter) Header() http.Header { return w.rw.Header() }

func (w *responseWriter) WriteHeader(code int) {
	// The first final status is the response's; 1xx other than 101 leave it open.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.rw.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.rw.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends what is buffered, if the writer underneath can.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.rw).Flush()
}

// Unwrap returns the ResponseWriter underneath, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.rw }
