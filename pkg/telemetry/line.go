package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
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
// line is written as the bytes appendLine encodes, or nil when the logger is any
// other: one with attributes or a group added (the line would have to carry them),
// or one with a handler of its own, which then gets the same attributes as a
// slog.Record. appendLine costs a fraction of slog's JSON handler, which sends every
// json.Marshaler value (the metrics) through encoding/json.
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

// appendLine appends the request line as a JSON line in Lambda's log format: the
// timestamp, level and message that a logger from NewLogger writes first, then
// attrs. It is the only encoder of the request line's fields; a logger of another
// kind gets the same attrs through its handler.
//
// The attributes are written as slog's JSON handler writes them (values resolved,
// empty attributes and groups left out, a group with an empty key inlined, errors as
// their message, other values through encoding/json), except where slog's own output
// would not be JSON: a group whose attributes are all empty (left out here), and a
// time whose year is outside 0 to 9999 (written here as slog's error string alone).
func appendLine(b []byte, end time.Time, level slog.Level, attrs []slog.Attr) []byte {
	b = append(b, `{"`+keyTimestamp+`":"`...)
	b = appendTimestamp(b, end)
	b = append(b, `","`+keyLevel+`":"`...)
	b = append(b, levelName(level)...)
	b = append(b, `","`+keyMessage+`":"`+requestMessage+`"`...)
	for i := range attrs {
		a := &attrs[i]
		// The kinds of almost every attribute of the line skip appendAttr's cases
		// for the others.
		switch k := a.Value.Kind(); k {
		case slog.KindString, slog.KindInt64, slog.KindBool, slog.KindFloat64:
			b = append(b, ',')
			b = appendJSONString(b, a.Key)
			b = append(b, ':')
			b = appendValue(b, a.Value, k)
		default:
			b, _ = appendAttr(b, *a, true)
		}
	}
	return append(b, "}\n"...)
}

// appendAttr appends a as a member of a JSON object, after a comma when comma is
// set, and reports whether it appended anything.
func appendAttr(b []byte, a slog.Attr, comma bool) ([]byte, bool) {
	v := a.Value
	k := v.Kind()
	if k == slog.KindLogValuer {
		// Resolve recovers a panic in LogValue, at a cost the common kinds skip.
		v = v.Resolve()
		k = v.Kind()
	}
	if k == slog.KindAny {
		switch x := v.Any().(type) {
		case nil:
			if a.Key == "" {
				return b, false
			}
		case *slog.Source:
			v, k = sourceValue(x), slog.KindGroup
		}
	}
	if k != slog.KindGroup {
		if comma {
			b = append(b, ',')
		}
		b = appendJSONString(b, a.Key)
		b = append(b, ':')
		return appendValue(b, v, k), true
	}
	pos := len(b)
	if a.Key != "" {
		if comma {
			b = append(b, ',')
		}
		b = appendJSONString(b, a.Key)
		b = append(b, ":{"...)
		comma = false
	}
	appended := false
	for _, g := range v.Group() {
		var ok bool
		if b, ok = appendAttr(b, g, comma); ok {
			appended, comma = true, true
		}
	}
	if !appended {
		return b[:pos], false
	}
	if a.Key != "" {
		b = append(b, '}')
	}
	return b, true
}

// sourceValue is the group slog's JSON handler writes for a *slog.Source.
func sourceValue(s *slog.Source) slog.Value {
	var as []slog.Attr
	if s.Function != "" {
		as = append(as, slog.String("function", s.Function))
	}
	if s.File != "" {
		as = append(as, slog.String("file", s.File))
	}
	if s.Line != 0 {
		as = append(as, slog.Int("line", s.Line))
	}
	return slog.GroupValue(as...)
}

// appendValue appends v, of kind k, resolved and not a group, as JSON.
func appendValue(b []byte, v slog.Value, k slog.Kind) []byte {
	switch k {
	case slog.KindString:
		return appendJSONString(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindFloat64:
		return appendJSONFloat(b, v.Float64())
	case slog.KindDuration:
		return strconv.AppendInt(b, int64(v.Duration()), 10)
	case slog.KindTime:
		t := v.Time()
		if y := t.Year(); y < 0 || y >= 10000 {
			return appendJSONString(b, "!ERROR:time.Time year outside of range [0,9999]")
		}
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	switch x := v.Any().(type) {
	case *emfValue:
		return x.appendJSON(b)
	case json.Marshaler:
		return appendMarshal(b, x)
	case error:
		return appendJSONString(b, x.Error())
	default:
		return appendMarshal(b, x)
	}
}

// appendMarshal appends x as encoding/json writes it without escaping HTML, as slog
// does, or the error as a string. It allocates: a request line rarely holds a value
// of a kind slog has no case for.
func appendMarshal(b []byte, x any) []byte {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return appendJSONString(b, fmt.Sprintf("!ERROR:%v", err))
	}
	return append(b, bytes.TrimSuffix(out.Bytes(), []byte("\n"))...)
}

// appendJSONFloat appends f as encoding/json encodes a float64, and NaN and the
// infinities, which JSON has no number for, as the string of slog's error.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return appendJSONString(b, "!ERROR:json: unsupported value: "+strconv.FormatFloat(f, 'g', -1, 64))
	}
	if f >= 0 && f < 1e12 && !math.Signbit(f) {
		// A whole number of thousandths, as every latency metric is, has at most 15
		// significant digits below 1e12, so no shorter decimal comes back to the same
		// float64: the shortest, which strconv would write after a costlier search, is
		// the integer part and the thousandths without trailing zeros.
		if n := math.Round(f * 1000); n/1000 == f {
			u := uint64(n)
			b = strconv.AppendUint(b, u/1000, 10)
			if r := u % 1000; r != 0 {
				b = append(b, '.', byte('0'+r/100))
				if r%100 != 0 {
					b = append(b, byte('0'+r/10%10))
					if r%10 != 0 {
						b = append(b, byte('0'+r%10))
					}
				}
			}
			return b
		}
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Like encoding/json, e-07 becomes e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// plain holds the bytes a JSON string holds as they are: printable ASCII but '"' and
// '\\'. A byte of UTF-8 beyond ASCII is not plain: it has to be checked.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string escaped the way log/slog's JSON handler
// escapes it: '"', '\\' and control characters escaped (\n, \r and \t by name, the
// rest as \u00XX), each byte of invalid UTF-8 replaced by \ufffd, and U+2028 and
// U+2029 escaped; '<', '>' and '&' are left as they are.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
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
