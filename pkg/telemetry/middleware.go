package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// The keys of the request line, besides Lambda's and the metrics'.
const (
	keyFunction  = "function"
	keyStage     = "stage"
	keyColdStart = "coldStart"
	keyMethod    = "method"
	keyRoute     = "route"
	keyStatus    = "status"
	keyBytes     = "bytes"
	keyCache     = "cache"
	keyKey       = "key"
	keyCause     = "cause"
	keyError     = "error"
	keyPanic     = "panic"
	keyAWS       = "_aws"

	requestMessage = "request"
)

// Options configures Middleware. The zero value is usable.
type Options struct {
	// Logger writes the request lines; use one from NewLogger so that they are in
	// Lambda's JSON log format. The line is written whatever the logger's level.
	// Another logger's handler gets the line's attributes as a slog.Record and
	// writes them in its own format.
	// default: slog.Default(), looked up at each request
	Logger *slog.Logger

	// Function is the value of the "function" dimension, e.g. "getProduct".
	// default: AWS_LAMBDA_FUNCTION_NAME, or "unknown" when that is unset
	Function string

	// Stage is the value of the "stage" dimension, e.g. "dev" or "prod".
	// default: "unknown"
	Stage string

	// Namespace is the CloudWatch namespace of the metrics.
	// default: "StoreAPI"
	Namespace string

	// RequestID returns the id of the request a context belongs to (serve.RequestID).
	// default: nil, the line has no requestId
	RequestID func(context.Context) string

	// ColdStart reports whether the request is the first of its execution
	// environment (serve.ColdStart).
	// default: nil, coldStart is always false
	ColdStart func(context.Context) bool

	// Now is the clock, for tests and examples: it stamps the line and times the
	// request.
	// default: time.Now
	Now func() time.Time
}

const (
	defaultNamespace = "StoreAPI"
	unknown          = "unknown"
)

// Middleware returns a handler that serves next and then writes exactly one line for
// the request: a JSON object in Lambda's log format that is also a CloudWatch
// Embedded Metric Format document. During next, the request's context holds the
// [Record] ([FromContext]) on which the handler sets the cache outcome, timings and
// errors.
//
// The line holds timestamp, level (ERROR for a 5xx status, INFO otherwise), message
// "request", requestId, function, stage, coldStart, method (one of the standard
// methods, or OTHER), route (the pattern, never the raw path), status, bytes (of the
// body), the Record's cache, key, cause and error when set, the attributes added to
// the Record, the metrics and "_aws". Request headers, the path and the query are
// never logged.
//
// Metrics, in the Options' Namespace with the dimensions function and stage:
// CacheHit, CacheMiss, CacheBypass and CacheStale (Count, 0 or 1; only on requests with a cache
// outcome, so their averages are ratios among cache lookups), Latency (Milliseconds,
// from Middleware's start to next's return), RedisLatency and SourceLatency
// (Milliseconds, only when the handler measured them) and ServerError (Count, 1 for a
// 5xx status).
//
// Put Middleware inside the runtime adapter (serve), which recovers panics, and
// outside the mux. If next panics (or calls runtime.Goexit), the panic is not
// recovered here: the line is written with status 500, level ERROR, ServerError 1
// and "panic": true, and the panic goes on to the adapter, which answers 500 and logs
// the panic and its stack on a line of its own. A recovering middleware placed
// inside this one turns the panic into a plain 500 line instead.
//
// For the route, Middleware uses the pattern given to [Record.SetRoute] or, failing
// that, the Pattern that an http.ServeMux directly inside it set on the request it
// was given (a middleware in between that copies the request hides it; SetRoute
// does not depend on that).
//
// The returned handler is safe for concurrent requests.
func Middleware(next http.Handler, o Options) http.Handler {
	if o.Function == "" {
		o.Function = os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	}
	if o.Function == "" {
		o.Function = unknown
	}
	if o.Stage == "" {
		o.Stage = unknown
	}
	if o.Namespace == "" {
		o.Namespace = defaultNamespace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &middleware{next: next, o: o, emf: newEMFSpec(o.Namespace)}
}

type middleware struct {
	next http.Handler
	o    Options
	emf  *emfSpec
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := m.o.Now()
	ctx := r.Context()
	rec := &Record{}
	rec.w.rw = w
	if m.o.RequestID != nil {
		rec.requestID = m.o.RequestID(ctx)
	}
	if m.o.ColdStart != nil {
		rec.coldStart = m.o.ColdStart(ctx)
	}
	r = r.WithContext(context.WithValue(ctx, recordKey{}, rec))

	// The line is written in a deferred call so that a panic in next still gets it.
	panicked := true
	defer func() { m.write(r, rec, start, panicked) }()
	m.next.ServeHTTP(&rec.w, r)
	panicked = false
}

// maxAttrs is the length of the stack array the line's attributes are gathered in:
// the fixed ones (21 at most) and a few added by the handler. More spill to the heap.
const maxAttrs = 24

// write writes rec as the line of request r. It is the one place that says what the
// line holds: it gathers the attributes once, and both ways of writing them (bytes
// encoded by appendLine, or a slog.Record for a logger of another kind) take them as
// they are.
func (m *middleware) write(r *http.Request, rec *Record, start time.Time, panicked bool) {
	end := m.o.Now()
	// After done is set no call changes rec, so the fields are read without the lock.
	rec.mu.Lock()
	rec.done = true
	rec.mu.Unlock()

	status := rec.w.status
	switch {
	case panicked:
		status = http.StatusInternalServerError
	case status == 0:
		// net/http and the Lambda adapter answer 200 when the handler wrote nothing.
		status = http.StatusOK
	}
	level, serverError := slog.LevelInfo, int64(0)
	if status >= 500 {
		level, serverError = slog.LevelError, 1
	}
	route := rec.route
	if route == "" {
		route = r.Pattern
	}

	var buf [maxAttrs]slog.Attr
	a := buf[:0]
	if rec.requestID != "" {
		a = append(a, slog.String(keyRequestID, rec.requestID))
	}
	a = append(a,
		slog.String(keyFunction, m.o.Function),
		slog.String(keyStage, m.o.Stage),
		slog.Bool(keyColdStart, rec.coldStart),
		slog.String(keyMethod, methodName(r.Method)))
	if route != "" {
		a = append(a, slog.String(keyRoute, route))
	}
	a = append(a, slog.Int(keyStatus, status), slog.Int64(keyBytes, rec.w.bytes))
	if rec.cache != "" {
		a = append(a, slog.String(keyCache, rec.cache))
	}
	if rec.key != "" {
		a = append(a, slog.String(keyKey, rec.key))
	}
	if rec.cause != "" {
		a = append(a, slog.String(keyCause, rec.cause))
	}
	if rec.err != "" {
		a = append(a, slog.String(keyError, rec.err))
	}
	if panicked {
		a = append(a, slog.Bool(keyPanic, true))
	}
	a = append(a, rec.attrs...)

	variant := 0
	if rec.cache == Hit || rec.cache == Miss || rec.cache == Bypass || rec.cache == Stale {
		variant |= withCache
		a = append(a,
			slog.Int64(metricHit, count(rec.cache == Hit)),
			slog.Int64(metricMiss, count(rec.cache == Miss)),
			slog.Int64(metricBypass, count(rec.cache == Bypass)),
			slog.Int64(metricStale, count(rec.cache == Stale)))
	}
	a = append(a, slog.Float64(metricLatency, millis(end.Sub(start))))
	if rec.redis > 0 {
		variant |= withRedis
		a = append(a, slog.Float64(metricRedis, millis(rec.redis)))
	}
	if rec.source > 0 {
		variant |= withSource
		a = append(a, slog.Float64(metricSource, millis(rec.source)))
	}
	a = append(a, slog.Int64(metricServerError, serverError))
	rec.aws = emfValue{timestamp: end.UnixMilli(), directive: m.emf.directives[variant]}
	a = append(a, slog.Any(keyAWS, &rec.aws))

	logger := m.o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if out := directWriter(logger); out != nil {
		bp := linePool.Get().(*[]byte)
		*bp = appendLine((*bp)[:0], end, level, a)
		_, _ = out.Write(*bp)
		if cap(*bp) <= maxPooledLine {
			linePool.Put(bp)
		}
		return
	}

	// Any other logger gets the same attributes through its handler, which writes the
	// timestamp, level and message in its own format. The Handler is called directly,
	// not through Logger.LogAttrs: the line carries the metrics, so the logger's level
	// must not drop it, and its time must be the one in "_aws".
	sr := slog.NewRecord(end, level, requestMessage, 0)
	sr.AddAttrs(a...)
	_ = logger.Handler().Handle(r.Context(), sr)
}

func count(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// methodName returns m when it is a standard method and "OTHER" otherwise, so that a
// made-up method cannot put arbitrary text in the line.
func methodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	case "":
		return http.MethodGet
	}
	return "OTHER"
}
