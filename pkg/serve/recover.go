package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// requestIDHeader carries the request id on every response, so a client's report
// can be matched with the log.
const requestIDHeader = "X-Request-Id"

// call runs h and returns the value and stack of a panic in it, or nil.
func call(h http.Handler, w http.ResponseWriter, r *http.Request) (p any, stack []byte) {
	defer func() {
		// panic(nil) reaches here as a *runtime.PanicNilError, so it is caught too.
		if v := recover(); v != nil {
			p, stack = v, debug.Stack()
		}
	}()
	h.ServeHTTP(w, r)
	return nil, nil
}

func logPanic(ctx context.Context, log *slog.Logger, requestID string, p any, stack []byte) {
	log.LogAttrs(ctx, slog.LevelError, "panic",
		slog.String("requestId", requestID),
		slog.String("panic", fmt.Sprint(p)),
		slog.String("stack", string(stack)))
}

type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"requestId"`
}

// writeError answers status with a JSON body that names the request id, and
// nothing about the cause.
func writeError(w http.ResponseWriter, status int, msg, requestID string) {
	body, err := json.Marshal(errorBody{Error: msg, RequestID: requestID})
	if err != nil {
		body = []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set(requestIDHeader, requestID)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
