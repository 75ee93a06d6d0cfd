// Package telemetry writes the store API's logs and metrics: JSON lines in AWS
// Lambda's JSON log format, and one line per request that is also the CloudWatch
// Embedded Metric Format (EMF) document carrying that request's metrics. A request
// thus costs at most one write to standard output (a long-lived server can batch the
// lines with a BufferedWriter) and no network call; Lambda ships the line to
// CloudWatch Logs, which extracts the metrics from it.
//
// main builds the logger once, makes it the default and wraps the function's handler:
//
//	logger := telemetry.NewLogger(os.Stdout, cfg.LogLevel)
//	slog.SetDefault(logger)
//	h := telemetry.Middleware(api.GetProduct(), telemetry.Options{
//		Logger:    logger,
//		Function:  "getProduct",
//		Stage:     cfg.Stage,
//		Namespace: "StoreAPI",
//		RequestID: serve.RequestID,
//		ColdStart: serve.ColdStart,
//	})
//	serve.Run(ctx, h, serve.Options{Logger: logger})
//
// Handlers describe their request on the [Record] found with [FromContext]; the
// middleware writes it once the handler has returned.
//
// Lambda's ApplicationLogLevel filters lines by their "level" before CloudWatch reads
// them, metrics included: set above INFO, it lets through only the request lines of
// 5xx responses, and CloudWatch then sees no other requests' metrics.
package telemetry

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// The keys of Lambda's JSON log format that slog names otherwise.
const (
	keyTimestamp = "timestamp"
	keyLevel     = "level"
	keyMessage   = "message"
	keyRequestID = "requestId"
)

// timestampLayout is RFC 3339 with exactly three fractional digits, as Lambda writes
// its own lines. Times are converted to UTC first, so the zone is always "Z".
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

// appendTimestamp appends t in UTC in timestampLayout. It is the only writer of a
// line's timestamp, and costs a fraction of time.Time.AppendFormat, which parses the
// layout on every call.
func appendTimestamp(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timestampLayout)
	}
	hour, minute, second := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, second, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1e6, 3)
	return append(b, 'Z')
}

// appendDigits appends n, which is not negative, as exactly width decimal digits.
func appendDigits(b []byte, n, width int) []byte {
	var d [4]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:width]...)
}

// NewLogger returns a logger that writes one JSON object per line to w in AWS
// Lambda's JSON log format for application logs: "timestamp" (RFC 3339, UTC, with
// milliseconds), "level" (TRACE, DEBUG, INFO, WARN, ERROR or FATAL, the levels Lambda
// filters on), "message", then the line's attributes. A line logged with the context
// of a request that [Middleware] serves gets that request's "requestId" when it does
// not carry one already. Lines below level are dropped (nil means INFO); the request
// line of [Middleware] is written whatever the level, since it carries the metrics.
//
// main should pass the logger to slog.SetDefault: the standard library's log package,
// which aws-lambda-go writes its own lines to, then goes through the same handler at
// level INFO (slog.SetLogLoggerLevel changes that), so every line the process writes
// has the same format and Lambda's ApplicationLogLevel filters them all by their
// "level". go-redis does not use the log package's default logger; package
// redisclient sends its lines to slog.Default instead.
//
// A top-level attribute named "msg", or "time" holding a time, cannot be told from
// slog's own and is renamed too; avoid those keys.
//
// w is written to once per line; the logger serializes the writes, so w need not be
// safe for concurrent use.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	if level == nil {
		level = slog.LevelInfo
	}
	out := &lineWriter{w: w}
	h := slog.NewJSONHandler(out, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: lambdaFormat,
	})
	return slog.New(&requestHandler{inner: h, out: out})
}

// lambdaFormat renames slog's built-in keys to Lambda's and formats their values.
// It sees user attributes with the same keys too, so it only touches values of the
// built-ins' kinds.
func lambdaFormat(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		if a.Value.Kind() == slog.KindTime {
			var buf [len(timestampLayout)]byte
			return slog.String(keyTimestamp, string(appendTimestamp(buf[:0], a.Value.Time())))
		}
	case slog.LevelKey:
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(keyLevel, levelName(l))
		}
	case slog.MessageKey:
		a.Key = keyMessage
	}
	return a
}

// levelName maps a slog level to the nearest of Lambda's level names at or below it,
// so a custom level such as INFO+2 is still filtered as INFO rather than dropped as
// unknown.
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "TRACE"
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARN"
	case l < slog.LevelError+4:
		return "ERROR"
	}
	return "FATAL"
}

// requestHandler adds the request id of the [Record] in the context to lines that lack
// one, so that every line logged while serving a request can be found with it.
type requestHandler struct {
	inner slog.Handler
	// hasID is set when attributes added with WithAttrs already name a request id.
	hasID bool
	// grouped is set after WithGroup: an added attribute would land inside the group,
	// not at the root where Lambda looks for it.
	grouped bool
	// out is the writer under inner, on the handler NewLogger returns; nil on the
	// handlers WithAttrs and WithGroup derive from it, whose lines carry more.
	out *lineWriter
}

func (h *requestHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *requestHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.hasID || h.grouped || ctx == nil {
		return h.inner.Handle(ctx, r)
	}
	rec, _ := ctx.Value(recordKey{}).(*Record)
	if rec == nil || rec.requestID == "" || hasKey(r, keyRequestID) {
		return h.inner.Handle(ctx, r)
	}
	r = r.Clone()
	r.AddAttrs(slog.String(keyRequestID, rec.requestID))
	return h.inner.Handle(ctx, r)
}

func (h *requestHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(attrs)
	c.out = nil
	if !h.grouped {
		for _, a := range attrs {
			if a.Key == keyRequestID {
				c.hasID = true
			}
		}
	}
	return &c
}

func (h *requestHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.inner = h.inner.WithGroup(name)
	c.out = nil
	c.grouped = true
	return &c
}

func hasKey(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
