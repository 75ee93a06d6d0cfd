package app_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/otlptest"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/telemetry"
)

// BenchmarkTracingLambdaHit is a getProduct HIT through the Lambda entry, with
// tracing off and on (every invocation sampled, its spans exported to a receiver on
// loopback before Invoke returns), on the shared Redis: what tracing costs a hit.
func BenchmarkTracingLambdaHit(b *testing.B) {
	addr := redistest.SharedAddr(b)
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			env := map[string]string{"REDIS_URL": "redis://" + addr, "CACHE_KEY_PREFIX": redistest.Prefix(b), "CACHE_L1": "off"}
			if on {
				env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlptest.Start(b).URL
			}
			a := newApp(b, env, config.ModeLambda)
			l := a.Lambda(app.GetProduct, telemetry.NewLogger(io.Discard, slog.LevelInfo))
			payload := v2Event(b, "prod-0001", "req-bench")
			if _, err := l.Invoke(context.Background(), payload); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := l.Invoke(context.Background(), payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
