package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// Server timeouts of the HTTP mode. Requests and responses are small JSON documents;
// the handler's own bound is NoDeadlineTimeout, and the write timeout leaves room
// past it to send the answer.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeSlack        = 5 * time.Second
	// idleTimeout exceeds the 60 s keep-alive of common proxies in front (of-watchdog,
	// load balancers), so the proxy, not the server, closes an idle connection and
	// never sends on one the server is closing.
	idleTimeout    = 90 * time.Second
	maxHeaderBytes = 64 << 10
)

// Handler returns h as the HTTP mode serves it: the request's context gets the id
// from a well-formed X-Request-Id header (1 to 64 characters of [A-Za-z0-9._-]) or a
// generated one, echoed in the response's X-Request-Id; the cold-start flag (true for
// the first request this Handler serves); and a deadline NoDeadlineTimeout away. A
// panic in h is logged and answered with a 500 JSON body, or, when h had already
// started its response, ends that response where it stopped; the connection
// survives either way. A panic with http.ErrAbortHandler still aborts the response,
// as net/http defines. Use it to mount a function's handler in a server of one's own.
func Handler(h http.Handler, o Options) http.Handler {
	return &httpHandler{h: h, o: o.withDefaults()}
}

type httpHandler struct {
	h    http.Handler
	o    Options
	warm atomic.Bool
}

func (s *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(requestIDHeader)
	if !validRequestID(id) {
		id = newRequestID()
	}
	in := &info{requestID: id, coldStart: !s.warm.Load() && s.warm.CompareAndSwap(false, true)}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.NoDeadlineTimeout)
	defer cancel()
	ctx = withInfo(ctx, in)

	w.Header().Set(requestIDHeader, id)
	tw := &trackingWriter{ResponseWriter: w}
	p, stack := call(s.h, tw, r.WithContext(ctx))
	if p == nil {
		return
	}
	if p == any(http.ErrAbortHandler) {
		panic(p)
	}
	logPanic(ctx, s.o.Logger, id, p, stack)
	if tw.wrote {
		// The status line is out: ending the response here is all that is left.
		return
	}
	clear(w.Header())
	writeError(w, id, errPanic)
}

// trackingWriter records whether the response has started, so a panic can still be
// answered with a 500 when it has not.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	// Informational answers other than 101 leave the response open.
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush keeps http.Flusher working through the wrapper.
func (w *trackingWriter) Flush() {
	w.wrote = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func runHTTP(ctx context.Context, h http.Handler, o Options) error {
	if o.Listener != nil {
		return serveHTTP(ctx, o.Listener, h, o)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", o.Addr, err)
	}
	return serveHTTP(ctx, ln, h, o)
}

// serveHTTP serves on ln until SIGTERM, SIGINT or the end of ctx, then drains and
// runs OnShutdown.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, o Options) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	// Requests keep ctx's values but not its end: a stop signal must let in-flight
	// requests finish.
	base := context.WithoutCancel(ctx)
	srv := &http.Server{
		Handler:           &httpHandler{h: h, o: o},
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      o.NoDeadlineTimeout + writeSlack,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	o.Logger.LogAttrs(ctx, slog.LevelInfo, "start",
		slog.String("mode", "http"), slog.String("addr", ln.Addr().String()))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var err error
	select {
	case err = <-served:
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		// From here a second signal ends the process the default way.
		stop()
		o.Logger.LogAttrs(base, slog.LevelInfo, "shutdown",
			slog.String("mode", "http"), slog.String("cause", context.Cause(ctx).Error()))
		sctx, cancel := context.WithTimeout(base, o.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		if err != nil {
			// Requests outlived the bound: cut their connections.
			_ = srv.Close()
			err = fmt.Errorf("serve: in-flight requests did not finish within %s: %w", o.ShutdownTimeout, err)
		}
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, fmt.Errorf("serve: %w", serr))
		}
	}
	return errors.Join(err, shutdown(base, o, httpOnShutdownTimeout))
}
