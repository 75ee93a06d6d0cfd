package telemetry

import "slices"

// Metric describes one metric of the request line, as CloudWatch receives it.
type Metric struct {
	// Name is the metric's name in CloudWatch, e.g. "CacheHit".
	Name string
	// Unit is its CloudWatch unit: "Count" or "Milliseconds".
	Unit string
	// Dimensions are the keys of the line it is published with, in the one dimension
	// set of the line: "function" and "stage".
	Dimensions []string
	// Always is false for a metric that only some lines carry: the cache outcomes
	// (requests with a cache lookup) and RedisLatency and SourceLatency (requests that
	// measured them). A dashboard or alarm on one of them sees no data, not zeros,
	// for the other requests.
	Always bool
}

// metricSpec is a metric and the flags a line needs to declare it.
type metricSpec struct {
	Metric
	needs int
}

var dimensions = []string{keyFunction, keyStage}

// metricSpecs is every metric of the line, in the order the line declares them. The
// EMF directives are built from it, so it is the one list of what the code emits.
var metricSpecs = []metricSpec{
	{Metric{metricHit, "Count", dimensions, false}, withCache},
	{Metric{metricMiss, "Count", dimensions, false}, withCache},
	{Metric{metricBypass, "Count", dimensions, false}, withCache},
	{Metric{metricStale, "Count", dimensions, false}, withCache},
	{Metric{metricLatency, "Milliseconds", dimensions, true}, 0},
	{Metric{metricRedis, "Milliseconds", dimensions, false}, withRedis},
	{Metric{metricSource, "Milliseconds", dimensions, false}, withSource},
	{Metric{metricServerError, "Count", dimensions, true}, 0},
}

// Metrics returns every metric that Middleware's lines can declare, for the
// deployment's dashboards and alarms (and the tests that check them against this
// list). The namespace is the Options' Namespace.
func Metrics() []Metric {
	out := make([]Metric, len(metricSpecs))
	for i, s := range metricSpecs {
		out[i] = s.Metric
		out[i].Dimensions = slices.Clone(s.Dimensions)
	}
	return out
}
