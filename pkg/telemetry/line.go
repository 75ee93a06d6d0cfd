package telemetry

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// lineWriter is the writer under a logger from NewLogger. It serializes whole-line
// writes, so the middleware can write its request line to it directly, beside the
// lines slog's handler writes there.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// directWriter returns the writer of a logger built by NewLogger, to which the request
// line may be written as bytes encoded here, or nil when the logger is any other: one
// with attributes or a group added (the line would have to carry them), or one with a
// handler of its own. The bytes are the ones slog's JSON handler writes for the same
// line (TestDirectLineMatchesSlog proves it); encoding them here costs a fraction of
// going through slog, which sends every json.Marshaler value through encoding/json.
func directWriter(l *slog.Logger) *lineWriter {
	if h, ok := l.Handler().(*requestHandler); ok {
		return h.out
	}
	return nil
}

// linePool holds the buffers request lines are encoded in.
var linePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// maxPooledLine is the largest buffer put back in linePool: a rare huge line is not
// kept alive.
const maxPooledLine = 16 << 10

// line is one request line's values, in the order they are written.
type line struct {
	end         time.Time
	level       slog.Level
	attrs       []slog.Attr // requestId to the Record's attributes and the metrics
	serverError int64
	latency     *millis
	redisMS     *millis // nil when not measured
	sourceMS    *millis // nil when not measured
	directive   *staticJSON
}

// directAttrs reports whether every attribute is of a kind appendLine encodes. The
// others (groups, times, floats, any value, a LogValuer, an empty key) are left to
// slog.
func directAttrs(attrs []slog.Attr) bool {
	for _, a := range attrs {
		if a.Key == "" {
			return false
		}
		switch a.Value.Kind() {
		case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindBool:
		default:
			return false
		}
	}
	return true
}

// appendLine appends l as a JSON line in Lambda's log format, byte for byte what a
// logger from NewLogger writes for the same record.
func appendLine(b []byte, l *line) []byte {
	b = append(b, `{"timestamp":"`...)
	b = appendTimestamp(b, l.end)
	b = append(b, `","level":"`...)
	b = append(b, levelName(l.level)...)
	b = append(b, `","message":"`+requestMessage+`"`...)
	for _, a := range l.attrs {
		b = append(b, ',')
		b = appendJSONString(b, a.Key)
		b = append(b, ':')
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			b = appendJSONString(b, v.String())
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindUint64:
			b = strconv.AppendUint(b, v.Uint64(), 10)
		case slog.KindBool:
			b = strconv.AppendBool(b, v.Bool())
		}
	}
	b = append(b, `,"`+metricLatency+`":`...)
	b = l.latency.appendJSON(b)
	if l.redisMS != nil {
		b = append(b, `,"`+metricRedis+`":`...)
		b = l.redisMS.appendJSON(b)
	}
	if l.sourceMS != nil {
		b = append(b, `,"`+metricSource+`":`...)
		b = l.sourceMS.appendJSON(b)
	}
	b = append(b, `,"`+metricServerError+`":`...)
	b = strconv.AppendInt(b, l.serverError, 10)
	b = append(b, `,"`+keyAWS+`":{"Timestamp":`...)
	b = strconv.AppendInt(b, l.end.UnixMilli(), 10)
	b = append(b, `,"CloudWatchMetrics":`...)
	b = append(b, l.directive.b...)
	return append(b, "}}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string escaped the way log/slog's JSON handler
// escapes it: '"', '\\' and control characters escaped (\n, \r and \t by name, the
// rest as \u00XX), each byte of invalid UTF-8 replaced by \ufffd, and U+2028 and
// U+2029 escaped; '<', '>' and '&' are left as they are.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
