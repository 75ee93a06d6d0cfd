package telemetry

import (
	"encoding/json"
	"strconv"
	"time"
)

// The metrics of the request line, as named in CloudWatch.
const (
	metricHit         = "CacheHit"
	metricMiss        = "CacheMiss"
	metricBypass      = "CacheBypass"
	metricLatency     = "Latency"
	metricRedis       = "RedisLatency"
	metricSource      = "SourceLatency"
	metricServerError = "ServerError"
)

// The flags that pick which metrics a line declares. EMF requires every declared
// metric to have a value at the root, and a metric that was not measured must not
// be reported as 0, so each combination declares only what the line holds.
const (
	withCache = 1 << iota
	withRedis
	withSource

	variants = withSource << 1
)

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

// emfSpec holds the static part of the "_aws" member of every line, encoded once per
// Middleware: for each combination of flags, the CloudWatchMetrics array.
type emfSpec struct {
	directives [variants]*staticJSON
}

func newEMFSpec(namespace string) *emfSpec {
	s := &emfSpec{}
	for v := range variants {
		var ms []emfMetric
		if v&withCache != 0 {
			ms = append(ms,
				emfMetric{metricHit, "Count"},
				emfMetric{metricMiss, "Count"},
				emfMetric{metricBypass, "Count"})
		}
		ms = append(ms, emfMetric{metricLatency, "Milliseconds"})
		if v&withRedis != 0 {
			ms = append(ms, emfMetric{metricRedis, "Milliseconds"})
		}
		if v&withSource != 0 {
			ms = append(ms, emfMetric{metricSource, "Milliseconds"})
		}
		ms = append(ms, emfMetric{metricServerError, "Count"})
		// Strings and slices of them always encode: there is no error to handle.
		b, _ := json.Marshal([]emfDirective{{
			Namespace:  namespace,
			Dimensions: [][]string{{keyFunction, keyStage}},
			Metrics:    ms,
		}})
		s.directives[v] = &staticJSON{b}
	}
	return s
}

// staticJSON is JSON encoded once and never changed, so it is safe to share. As a
// pointer it goes into a slog.Value without an allocation, and slog's JSON handler
// (which sends json.Marshalers through a pooled json.Encoder) writes it without one.
type staticJSON struct{ b []byte }

// MarshalJSON returns the JSON. The caller must not modify it.
func (s *staticJSON) MarshalJSON() ([]byte, error) { return s.b, nil }

// MarshalText makes a text handler print the same JSON.
func (s *staticJSON) MarshalText() ([]byte, error) { return s.b, nil }

// millis is a duration written as a JSON number of milliseconds, to the microsecond.
// slog's JSON handler boxes a float64 value (an allocation) to encode it; a pointer
// to a millis in the Record costs nothing.
type millis struct {
	d   time.Duration
	buf [24]byte
}

// MarshalJSON returns the number, valid until the next call.
func (m *millis) MarshalJSON() ([]byte, error) { return m.appendJSON(m.buf[:0]), nil }

// appendJSON appends the number to b.
func (m *millis) appendJSON(b []byte) []byte {
	d := max(m.d, 0)
	return strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', -1, 64)
}

// MarshalText makes a text handler print the same number.
func (m *millis) MarshalText() ([]byte, error) { return m.MarshalJSON() }
