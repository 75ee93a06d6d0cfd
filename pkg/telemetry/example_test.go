package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/acmestore/storeapi/pkg/telemetry"
)

func ExampleMiddleware() {
	logger := telemetry.NewLogger(os.Stdout, slog.LevelInfo)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec := telemetry.FromContext(r.Context())
		rec.SetRoute("GET /products/{id}")
		// What the cache reported for this lookup: served from Redis in 0.42 ms.
		rec.SetCache(telemetry.Hit, "store:product:v1:"+r.PathValue("id"), 420*time.Microsecond, 0)
		w.Header().Set("X-Cache", telemetry.Hit)
		_, _ = io.WriteString(w, `{"id":"prod-0001"}`)
	})

	// A clock that moves 1.25 ms per reading makes the line reproducible.
	clock := time.Date(2025, 3, 14, 9, 26, 53, 587_000_000, time.UTC)
	h := telemetry.Middleware(mux, telemetry.Options{
		Logger:    logger,
		Function:  "getProduct",
		Stage:     "prod",
		Namespace: "StoreAPI",
		RequestID: func(context.Context) string { return "c6af9ac6-7b61-11e6-9a41-93e812345678" },
		ColdStart: func(context.Context) bool { return true },
		Now: func() time.Time {
			clock = clock.Add(1250 * time.Microsecond)
			return clock
		},
	})

	req := httptest.NewRequest(http.MethodGet, "/products/prod-0001?utm=newsletter", nil)
	req.Header.Set("Authorization", "Bearer never-logged")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// {"timestamp":"2025-03-14T09:26:53.589Z","level":"INFO","message":"request","requestId":"c6af9ac6-7b61-11e6-9a41-93e812345678","function":"getProduct","stage":"prod","coldStart":true,"method":"GET","route":"GET /products/{id}","status":200,"bytes":18,"cache":"HIT","key":"store:product:v1:prod-0001","CacheHit":1,"CacheMiss":0,"CacheBypass":0,"CacheStale":0,"Latency":1.25,"RedisLatency":0.42,"ServerError":0,"_aws":{"Timestamp":1741944413589,"CloudWatchMetrics":[{"Namespace":"StoreAPI","Dimensions":[["function","stage"]],"Metrics":[{"Name":"CacheHit","Unit":"Count"},{"Name":"CacheMiss","Unit":"Count"},{"Name":"CacheBypass","Unit":"Count"},{"Name":"CacheStale","Unit":"Count"},{"Name":"Latency","Unit":"Milliseconds"},{"Name":"RedisLatency","Unit":"Milliseconds"},{"Name":"ServerError","Unit":"Count"}]}]}}
}
