package tracing

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Transport returns base (http.DefaultTransport when nil) with a client span around
// each request made inside a traced request, and the W3C traceparent header on the
// request, so the service called (the HTTP product source) continues the trace. The
// span names the method, host and status, never the path or query (which may carry
// a token); a transport error or a 5xx sets its status to Error.
func (t *Tracer) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{t: t, base: base}
}

type transport struct {
	t    *Tracer
	base http.RoundTripper
}

var traceparent = propagation.TraceContext{}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, span := tr.t.child(req.Context(), "HTTP "+req.Method,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", req.Method),
			attribute.String("server.address", req.URL.Hostname())))
	if !span.IsRecording() {
		return tr.base.RoundTrip(req)
	}
	defer span.End()
	// A RoundTripper must not change the caller's request: headers go on a copy.
	req = req.Clone(ctx)
	traceparent.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := tr.base.RoundTrip(req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "request failed")
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	return resp, nil
}
