package telemetry

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Cache outcomes as the request line and the X-Cache header name them.
const (
	Hit    = "HIT"
	Miss   = "MISS"
	Bypass = "BYPASS"
	Stale  = "STALE"
)

type recordKey struct{}

// Record is what a handler says about the request it serves; [Middleware] writes it
// as the request's log line when the handler returns. Get it with [FromContext].
//
// A Record is safe for concurrent use, so a handler may pass it to goroutines it
// starts; calls made after the line is written (a goroutine outliving its request)
// are dropped. Setting a field again replaces its value, and adding an attribute
// replaces one added before under the same key.
type Record struct {
	// discard marks the Record FromContext returns outside a request. It is set once,
	// before any use, and never changes, so it is read without the lock.
	discard bool

	mu sync.Mutex
	// done is set when the line has been written; later calls are dropped.
	done bool

	requestID string
	coldStart bool

	route  string
	cache  string
	key    string
	redis  time.Duration
	source time.Duration
	cause  string
	err    string
	attrs  []slog.Attr

	// The parts of the line that need memory of their own live in the Record, which
	// is allocated anyway: the ResponseWriter given to the handler and the "_aws"
	// value.
	w   responseWriter
	aws emfValue
}

// discard is the Record of requests that Middleware does not serve: every method is a
// no-op on it.
var discard = &Record{discard: true}

// FromContext returns the Record of the request ctx belongs to. Outside a request
// served by [Middleware] (a test calling a handler directly, a background job) it
// returns a Record that ignores every call, never nil.
func FromContext(ctx context.Context) *Record {
	if ctx == nil {
		return discard
	}
	if r, ok := ctx.Value(recordKey{}).(*Record); ok {
		return r
	}
	return discard
}

// lock locks r and reports whether it still takes calls. When it returns true the
// caller must unlock.
func (r *Record) lock() bool {
	if r == nil || r.discard {
		return false
	}
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return false
	}
	return true
}

// SetRoute records the route pattern that matched, e.g. "GET /products/{id}". The
// line logs the route, never the raw path, which could hold anything a client sent.
// Without it, the line falls back to the pattern the http.ServeMux directly inside
// Middleware matched.
func (r *Record) SetRoute(pattern string) {
	if !r.lock() {
		return
	}
	r.route = pattern
	r.mu.Unlock()
}

// SetCache records how the cache served the request: outcome is [Hit], [Miss],
// [Bypass] or [Stale] (any case; another value is logged as given but counted as none of
// them; "" leaves the cache out of the line), key the cache key, redis the time spent
// waiting on Redis and source the time spent fetching from the source of truth. A
// zero duration means not measured: its metric is left out of the line rather than
// reported as 0 ms.
func (r *Record) SetCache(outcome, key string, redis, source time.Duration) {
	if !r.lock() {
		return
	}
	r.cache = normalizeOutcome(outcome)
	r.key = key
	r.redis = redis
	r.source = source
	r.mu.Unlock()
}

// SetCause records the classified cause of a Redis failure, such as "timeout" or
// "connection_refused". The raw error, which may name internal addresses, belongs
// in an attribute added with Add, not here.
func (r *Record) SetCause(cause string) {
	if !r.lock() {
		return
	}
	r.cause = cause
	r.mu.Unlock()
}

// SetError records a short message that is safe to log, such as the error code the
// client got.
func (r *Record) SetError(msg string) {
	if !r.lock() {
		return
	}
	r.err = msg
	r.mu.Unlock()
}

// Add adds attributes to the line. An attribute with the key of one added before
// replaces it, so the line never holds a key twice. An attribute whose key the line
// sets itself (such as "status" or a metric name) is renamed with the prefix
// "attr.", so it can neither hide a field nor corrupt the metrics. Never add request
// headers, bodies or secrets: the line goes to CloudWatch Logs as it is.
func (r *Record) Add(attrs ...slog.Attr) {
	if !r.lock() {
		return
	}
	for _, a := range attrs {
		if reserved(a.Key) {
			a.Key = "attr." + a.Key
		}
		if i := slices.IndexFunc(r.attrs, func(b slog.Attr) bool { return b.Key == a.Key }); i >= 0 {
			r.attrs[i] = a
		} else {
			r.attrs = append(r.attrs, a)
		}
	}
	r.mu.Unlock()
}

func normalizeOutcome(s string) string {
	switch {
	case strings.EqualFold(s, Hit):
		return Hit
	case strings.EqualFold(s, Miss):
		return Miss
	case strings.EqualFold(s, Bypass):
		return Bypass
	case strings.EqualFold(s, Stale):
		return Stale
	}
	return s
}

// reserved reports whether the request line sets key itself.
func reserved(key string) bool {
	switch key {
	case keyTimestamp, keyLevel, keyMessage, keyRequestID,
		keyFunction, keyStage, keyColdStart, keyMethod, keyRoute, keyStatus, keyBytes,
		keyCache, keyKey, keyCause, keyError, keyPanic, keyAWS,
		metricHit, metricMiss, metricBypass, metricStale, metricLatency, metricRedis, metricSource, metricServerError,
		slog.TimeKey, slog.MessageKey:
		return true
	}
	return false
}
