package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/acmestore/storeapi/pkg/fault"
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

// What a client sees of a panic and of an event that cannot become a request: fixed
// messages, the details go to the log.
var (
	errPanic    = fault.New(fault.Internal, "internal error")
	errBadEvent = fault.New(fault.Invalid, "bad request")
)

// writeError answers err with fault's error body, the one shape of every error
// response, and the request id in its header as on every response.
func writeError(w http.ResponseWriter, requestID string, err *fault.Error) {
	w.Header().Set(requestIDHeader, requestID)
	fault.Write(w, requestID, err)
}
