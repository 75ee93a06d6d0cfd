package tracing

import (
	"context"
	"errors"

	"github.com/acmestore/storeapi/pkg/product"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Source returns src with a client span ("product.source") around each lookup made
// inside a traced request: the time a MISS or BYPASS spends at the source of truth.
// A failure other than "not found" sets the span's status to Error.
func (t *Tracer) Source(src product.Source) product.Source {
	return tracedSource{t: t, src: src}
}

type tracedSource struct {
	t   *Tracer
	src product.Source
}

func (s tracedSource) Product(ctx context.Context, id string) (product.Product, error) {
	ctx, span := s.t.child(ctx, "product.source",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("product.id", id)))
	defer span.End()
	p, err := s.src.Product(ctx, id)
	if err != nil && !errors.Is(err, product.ErrNotFound) {
		span.RecordError(err)
		span.SetStatus(codes.Error, "product source failed")
	}
	return p, err
}

// Unwrap returns the source underneath, for code that looks for a concrete source.
func (s tracedSource) Unwrap() product.Source { return s.src }

// Wait is a cache.Options.WaitHook: a span ("cache.lease_wait", or
// "cache.flight_wait" for a wait on a fill in this process) over each wait for a
// fill that another caller runs.
func (t *Tracer) Wait(ctx context.Context, key string, inProcess bool) (end func()) {
	name := "cache.lease_wait"
	if inProcess {
		name = "cache.flight_wait"
	}
	_, span := t.child(ctx, name, trace.WithAttributes(attribute.String("cache.key", key)))
	return func() { span.End() }
}
