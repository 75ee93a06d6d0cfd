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
	metricStale       = "CacheStale"
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
	directives [variants][]byte
}

func newEMFSpec(namespace string) *emfSpec {
	s := &emfSpec{}
	for v := range variants {
		var ms []emfMetric
		for _, m := range metricSpecs {
			if v&m.needs == m.needs {
				ms = append(ms, emfMetric{m.Name, m.Unit})
			}
		}
		// Strings and slices of them always encode: there is no error to handle.
		b, _ := json.Marshal([]emfDirective{{
			Namespace:  namespace,
			Dimensions: [][]string{dimensions},
			Metrics:    ms,
		}})
		s.directives[v] = b
	}
	return s
}

// emfValue is the "_aws" member of a line, the part of the EMF document that is not
// at the root. As a pointer (into the Record) it goes into a slog.Value without an
// allocation; appendLine writes it with appendJSON, a handler of another kind as a
// json.Marshaler.
type emfValue struct {
	timestamp int64  // Unix milliseconds
	directive []byte // from emfSpec, shared: never modified
}

// appendJSON appends the "_aws" object.
func (e *emfValue) appendJSON(b []byte) []byte {
	b = append(b, `{"Timestamp":`...)
	b = strconv.AppendInt(b, e.timestamp, 10)
	b = append(b, `,"CloudWatchMetrics":`...)
	b = append(b, e.directive...)
	return append(b, '}')
}

// MarshalJSON returns the "_aws" object.
func (e *emfValue) MarshalJSON() ([]byte, error) { return e.appendJSON(nil), nil }

// MarshalText makes a text handler print the same JSON.
func (e *emfValue) MarshalText() ([]byte, error) { return e.MarshalJSON() }

// millis returns d in milliseconds, to the microsecond, and 0 for a negative d: the
// value of a latency metric.
func millis(d time.Duration) float64 {
	return float64(max(d, 0).Microseconds()) / 1000
}
