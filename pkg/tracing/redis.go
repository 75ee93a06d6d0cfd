package tracing

import (
	"context"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// InstrumentRedis adds go-redis's OpenTelemetry hook (redisotel) to c: a client span
// for each command, pipeline and dial made inside a traced request, with db.system
// and the server's address. The command's arguments are left out (db.statement):
// they hold cached product bodies and leases, and would hold a password if AUTH ever
// went through the hook. Commands outside a traced request make no span. Use it as
// redisclient.Lazy's OnBuild hook.
func (t *Tracer) InstrumentRedis(c redis.UniversalClient) {
	// Only the client types redisotel does not know fail; go-redis makes none other.
	_ = redisotel.InstrumentTracing(c,
		redisotel.WithTracerProvider(childOnly{tp: t.tp}),
		redisotel.WithDBStatement(false),
		// It walks the stack for every command to name the caller.
		redisotel.WithCallerEnabled(false))
}

// childOnly hands out tracers that start a span only under a recording one.
type childOnly struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childTracer{t: p.tp.Tracer(name, opts...)}
}

type childTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (t childTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noop
	}
	return t.t.Start(ctx, name, opts...)
}
