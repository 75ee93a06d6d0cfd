// Package tracing makes the store API's OpenTelemetry spans and sends them to an OTLP
// collector over HTTP: one server span per request (function, route, status, cache
// outcome, cold start), with child spans for each Redis command (go-redis's
// redisotel), each wait for another caller's fill and each fetch from the product
// source. Its parent is the Lambda invocation's X-Ray trace (the runtime's trace
// header), else the caller's X-Amzn-Trace-Id or W3C traceparent header.
//
// It is the only package that imports the OpenTelemetry SDK. Nothing here runs unless
// [New] is called, which the app does only when config.Tracing is enabled: with
// tracing off the request path is the one without it, not a no-op tracer's.
//
// Spans are batched. The HTTP mode sends them in the background (every 5 s, or as
// 512 gather, OTEL_BSP_* tunes it); under Lambda nothing runs once the response is
// back, so [Tracer.Flush] sends each invocation's spans before it returns.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// instrumentation names the spans' instrumentation scope.
const instrumentation = "github.com/acmestore/storeapi/pkg/tracing"

// DefaultFlushTimeout bounds the flush at the end of a Lambda invocation: the
// collector is the layer's extension on localhost, so a flush takes milliseconds;
// one that does not finish in time loses that invocation's spans rather than
// holding the response.
const DefaultFlushTimeout = time.Second

// Tracer makes and sends the spans. It is safe for concurrent use.
type Tracer struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	// flushTimeout bounds Flush.
	flushTimeout time.Duration
}

// New returns a Tracer that sends spans to cfg's OTLP/HTTP endpoint (see
// config.Tracing), or an error when cfg is not enabled. It does no network I/O: the
// first export connects. The exporter reads OTEL_EXPORTER_OTLP_[TRACES_]HEADERS,
// _TIMEOUT and _COMPRESSION (see otlpClient), the sampler OTEL_TRACES_SAMPLER, the
// batch processor OTEL_BSP_*, the resource OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES; service.name defaults to "storeapi".
func New(ctx context.Context, cfg config.Tracing) (*Tracer, error) {
	if !cfg.Enabled() {
		return nil, errors.New("tracing: not enabled: set OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	}
	client, err := newOTLPClient(cfg.TracesURL())
	if err != nil {
		return nil, err
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attrs()...),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv())
	if err != nil {
		// A bad OTEL_RESOURCE_ATTRIBUTES: the rest of the resource is still usable.
		res = resource.NewSchemaless(attrs()...)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracer{
		tp:           tp,
		tracer:       tp.Tracer(instrumentation),
		flushTimeout: DefaultFlushTimeout,
	}, nil
}

// attrs are the resource's attributes known without I/O: the service and, under
// Lambda, the function, its version and region (from the variables Lambda sets).
func attrs() []attribute.KeyValue {
	a := []attribute.KeyValue{attribute.String("service.name", "storeapi")}
	for _, e := range []struct{ key, env string }{
		{"faas.name", "AWS_LAMBDA_FUNCTION_NAME"},
		{"faas.version", "AWS_LAMBDA_FUNCTION_VERSION"},
		{"faas.max_memory", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"},
		{"cloud.region", "AWS_REGION"},
	} {
		if v := os.Getenv(e.env); v != "" {
			a = append(a, attribute.String(e.key, v))
		}
	}
	if os.Getenv("AWS_LAMBDA_FUNCTION_NAME") != "" {
		a = append(a, attribute.String("cloud.provider", "aws"), attribute.String("cloud.platform", "aws_lambda"))
	}
	return a
}

// Provider is the TracerProvider the spans come from, for other instrumentation.
func (t *Tracer) Provider() trace.TracerProvider { return t.tp }

// Flush sends every span ended so far, within ctx and DefaultFlushTimeout. Under
// Lambda it runs at the end of each invocation (serve.Options.AfterInvoke). A failed
// export is reported through OpenTelemetry's error handler (the log), not here:
// tracing never fails a request.
func (t *Tracer) Flush(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, t.flushTimeout)
	defer cancel()
	_ = t.tp.ForceFlush(ctx)
}

// Shutdown sends the spans still pending and stops the exporter, within ctx.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// noop is the span handed out where nothing is traced: ending it does nothing.
var noop = trace.SpanFromContext(context.Background())

// child starts a span under ctx's span, but only when that one is recording: work
// outside a traced request (a background refresh after its request ended, the tally's
// flush) makes no root spans of its own.
func (t *Tracer) child(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noop
	}
	return t.tracer.Start(ctx, name, opts...)
}

// Discard stops t without waiting for an export, for a start-up that failed after New;
// nil does nothing.
func (t *Tracer) Discard() {
	if t == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = t.tp.Shutdown(ctx)
}
