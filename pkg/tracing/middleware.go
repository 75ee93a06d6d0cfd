package tracing

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/acmestore/storeapi/pkg/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys of the request span besides the semantic conventions' http.* and
// faas.* ones.
const (
	// KeyCache is the cache outcome: HIT, MISS, BYPASS or STALE (the X-Cache header).
	KeyCache = "cache.outcome"
	// KeyCacheTier is the tier that answered a HIT: L1 or L2 (X-Cache-Tier).
	KeyCacheTier = "cache.tier"
	// KeyLogTraceID is the request line's attribute that names the trace.
	KeyLogTraceID = "traceId"
)

// Options configures Middleware.
type Options struct {
	// Function is the function's name: the faas.name attribute.
	Function string
	// RequestID returns the request's id (serve.RequestID): faas.invocation_id.
	// default: nil, left out
	RequestID func(context.Context) string
	// ColdStart reports whether the request is its environment's first
	// (serve.ColdStart): faas.coldstart.
	// default: nil, false
	ColdStart func(context.Context) bool
	// LambdaTraceHeader returns the X-Ray trace header of the Lambda invocation the
	// request came from (serve.TraceHeader), "" outside Lambda. It comes first among
	// the parents: it is the function's own segment in X-Ray.
	// default: nil, none
	LambdaTraceHeader func(context.Context) string
}

// Middleware returns next with a server span around each request. Put it inside
// telemetry.Middleware: the trace id goes into the request line (traceId), and the
// route the mux matched is passed on to it. The span's parent is, first found: the
// Lambda invocation's trace header, the request's X-Amzn-Trace-Id header, its W3C
// traceparent. It is named for the route ("GET /products/{id}") and carries
// faas.name, faas.coldstart, faas.invocation_id, http.request.method, http.route,
// http.response.status_code and cache.outcome (and cache.tier) as the response's
// X-Cache (X-Cache-Tier) header says; a 5xx or a panic sets its status to Error.
func (t *Tracer) Middleware(next http.Handler, o Options) http.Handler {
	return &middleware{t: t, next: next, o: o}
}

type middleware struct {
	t    *Tracer
	next http.Handler
	o    Options
}

var traceContext = propagation.TraceContext{}

func (m *middleware) parent(ctx context.Context, r *http.Request) context.Context {
	if m.o.LambdaTraceHeader != nil {
		if sc, ok := ParseXRay(m.o.LambdaTraceHeader(ctx)); ok {
			return trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	if sc, ok := ParseXRay(r.Header.Get("X-Amzn-Trace-Id")); ok {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		attribute.String("faas.name", m.o.Function),
		attribute.String("http.request.method", r.Method))
	if m.o.ColdStart != nil {
		attrs = append(attrs, attribute.Bool("faas.coldstart", m.o.ColdStart(ctx)))
	}
	if m.o.RequestID != nil {
		if id := m.o.RequestID(ctx); id != "" {
			attrs = append(attrs, attribute.String("faas.invocation_id", id))
		}
	}
	ctx, span := m.t.tracer.Start(m.parent(ctx, r), r.Method,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	rec := telemetry.FromContext(ctx)
	if sc := span.SpanContext(); sc.IsValid() {
		rec.Add(slog.String(KeyLogTraceID, sc.TraceID().String()))
	}

	sw := &statusWriter{ResponseWriter: w}
	r = r.WithContext(ctx)
	panicked := true
	defer func() {
		status := sw.status
		switch {
		case panicked:
			status = http.StatusInternalServerError
		case status == 0:
			status = http.StatusOK
		}
		if r.Pattern != "" {
			// The mux set it on this copy of the request: telemetry's line gets it too.
			rec.SetRoute(r.Pattern)
			span.SetName(r.Pattern)
			span.SetAttributes(attribute.String("http.route", r.Pattern))
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		h := w.Header()
		if v := h.Get("X-Cache"); v != "" {
			span.SetAttributes(attribute.String(KeyCache, v))
		}
		if v := h.Get("X-Cache-Tier"); v != "" {
			span.SetAttributes(attribute.String(KeyCacheTier, v))
		}
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}()
	m.next.ServeHTTP(sw, r)
	panicked = false
}

// statusWriter records the status the handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
