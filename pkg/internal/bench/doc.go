// Package bench holds the hot-path benchmarks of getProduct, all in one place and
// all against the shared Redis in the same run: a raw go-redis GET of the product
// bytes (the baseline), Service.Get, GetOrSet, the getProduct handler via httptest,
// and the full Lambda path (raw API Gateway event bytes in, response bytes out) for
// payload 2.0 and REST v1 events.
//
// Every variant runs the production setup: the App as app.New assembles it in
// Lambda mode (breaker, counters and tally on), wrapped by app.Handler in the
// telemetry middleware whose JSON line goes through the real logger to io.Discard.
//
// Plain ns/op cannot show a wrapper's cost, because the loopback round trip drifts by
// tens of µs between benchmarks; the Paired benchmarks alternate a raw GET and the
// variant inside one loop and report the median per-iteration ratio (p50-ratio),
// with a raw-vs-raw control giving the noise floor. allocs-alone is each variant's
// allocations per call measured on its own.
//
//	go test ./pkg/internal/bench -run '^$' -bench . -benchmem -count 6
//
// Normal `go test` runs only TestPathsOnce, one call of each path.
package bench
