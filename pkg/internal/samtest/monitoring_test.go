package samtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/telemetry"
	"github.com/awslabs/goformation/v7/cloudformation/cloudwatch"
)

// monitoringParams are the parameter values the monitoring tests deploy with: none
// of them the default, so that a literal in place of a parameter shows.
var monitoringParams = map[string]any{
	"RedisUrl":             "rediss://master.x.abc123.use1.cache.amazonaws.com:6379",
	"Stage":                "prod",
	"MetricsNamespace":     "Acme/Store",
	"AlarmBypassPercent":   7.0,
	"AlarmHitRatioPercent": 55.0,
	"AlarmLatencyP99Ms":    300.0,
}

// metricRef is one CloudWatch metric as a dashboard or an alarm names it.
type metricRef struct {
	namespace, name string
	dims            map[string]string
	stat            string
}

func (m metricRef) String() string {
	return fmt.Sprintf("%s/%s %v %s", m.namespace, m.name, m.dims, m.stat)
}

// checkMetric fails unless m is a metric the functions emit (telemetry.Metrics), in
// the namespace they write to, with exactly the dimensions they publish it with (a
// query with fewer or other dimensions finds no data: EMF publishes only the
// dimension set it declares), a function the code has, the stage deployed and a
// statistic CloudWatch knows.
func checkMetric(t *testing.T, where string, m metricRef, namespace, stage string) {
	t.Helper()
	var em *telemetry.Metric
	for _, x := range telemetry.Metrics() {
		if x.Name == m.name {
			em = &x
		}
	}
	switch {
	case em == nil:
		t.Errorf("%s: %v: the code emits no metric %q", where, m, m.name)
		return
	case m.namespace != namespace:
		t.Errorf("%s: %v: namespace %q, want the functions' %q", where, m, m.namespace, namespace)
	case !slices.Equal(slices.Sorted(maps.Keys(m.dims)), slices.Sorted(slices.Values(em.Dimensions))):
		t.Errorf("%s: %v: dimensions %v, the code publishes %s with %v", where, m, slices.Sorted(maps.Keys(m.dims)), m.name, em.Dimensions)
	case !slices.Contains([]string{app.GetProduct.Name, app.Health.Name, app.CacheClear.Name}, m.dims["function"]):
		t.Errorf("%s: %v: no function is named %q", where, m, m.dims["function"])
	case m.dims["stage"] != stage:
		t.Errorf("%s: %v: stage %q, want %q", where, m, m.dims["stage"], stage)
	}
	if !regexp.MustCompile(`^(Sum|Average|SampleCount|Minimum|Maximum|p\d{1,2}(\.\d+)?)$`).MatchString(m.stat) {
		t.Errorf("%s: %v: statistic %q", where, m, m.stat)
	}
}

// emfRequest is one request of a synthetic minute of traffic.
type emfRequest struct {
	function, cache string
	status          int
}

// world is what CloudWatch would hold for one period: every metric value of the
// request lines, by namespace, name and dimensions.
type world map[string][]float64

func worldKey(ns, name string, dims map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s", ns, name)
	for _, k := range slices.Sorted(maps.Keys(dims)) {
		fmt.Fprintf(&b, "|%s=%s", k, dims[k])
	}
	return b.String()
}

// emfWorld serves reqs through telemetry.Middleware, as the functions do, and reads
// the metrics out of the EMF documents the lines are: the test's data is what the
// code writes, not what this file believes it writes.
func emfWorld(t *testing.T, namespace, stage string, reqs []emfRequest) world {
	t.Helper()
	w := world{}
	for _, rq := range reqs {
		var b bytes.Buffer
		h := telemetry.Middleware(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if rq.cache != "" {
				telemetry.FromContext(r.Context()).SetCache(rq.cache, "k", time.Millisecond, 0)
			}
			rw.WriteHeader(rq.status)
		}), telemetry.Options{Logger: telemetry.NewLogger(&b, slog.LevelInfo), Function: rq.function, Stage: stage, Namespace: namespace})
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		var line map[string]any
		if err := json.Unmarshal(b.Bytes(), &line); err != nil {
			t.Fatalf("request line: %v: %s", err, b.Bytes())
		}
		for _, d := range list(dig(line, "_aws", "CloudWatchMetrics")) {
			dims := map[string]string{}
			for _, k := range list(list(obj(d)["Dimensions"])[0]) {
				dims[k.(string)] = fmt.Sprint(line[k.(string)])
			}
			for _, m := range list(obj(d)["Metrics"]) {
				name := obj(m)["Name"].(string)
				v, ok := line[name].(float64)
				if !ok {
					t.Fatalf("metric %s has no number at the root: %s", name, b.Bytes())
				}
				key := worldKey(obj(d)["Namespace"].(string), name, dims)
				w[key] = append(w[key], v)
			}
		}
	}
	return w
}

// value returns m's statistic in w, NaN where CloudWatch would have no data point.
func (w world) value(m metricRef) float64 {
	vs := w[worldKey(m.namespace, m.name, m.dims)]
	if len(vs) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, v := range vs {
		sum += v
	}
	switch m.stat {
	case "Sum":
		return sum
	case "SampleCount":
		return float64(len(vs))
	case "Average":
		return sum / float64(len(vs))
	case "Minimum":
		return slices.Min(vs)
	case "Maximum":
		return slices.Max(vs)
	}
	return math.NaN()
}

// eval evaluates a CloudWatch metric math expression of numbers, ids, + - * /,
// parentheses and FILL(x, c): the subset the template uses. An id not in vars is an
// error, as CloudWatch rejects it.
func eval(expr string, vars map[string]float64) (float64, error) {
	toks := regexp.MustCompile(`\s*([A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?|[-+*/(),])`).FindAllStringSubmatch(expr, -1)
	var joined string
	for _, t := range toks {
		joined += t[0]
	}
	if strings.TrimSpace(joined) != strings.TrimSpace(expr) {
		return 0, fmt.Errorf("expression %q: cannot read it", expr)
	}
	p := &exprParser{vars: vars}
	for _, t := range toks {
		p.toks = append(p.toks, t[1])
	}
	v := p.sum()
	if p.err == nil && p.i < len(p.toks) {
		p.err = fmt.Errorf("unexpected %q", p.toks[p.i])
	}
	if p.err != nil {
		return 0, fmt.Errorf("expression %q: %w", expr, p.err)
	}
	return v, nil
}

type exprParser struct {
	toks []string
	i    int
	vars map[string]float64
	err  error
}

func (p *exprParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *exprParser) expect(s string) {
	if p.peek() != s && p.err == nil {
		p.err = fmt.Errorf("want %q, got %q", s, p.peek())
	}
	p.i++
}

func (p *exprParser) sum() float64 {
	v := p.product()
	for p.peek() == "+" || p.peek() == "-" {
		op := p.toks[p.i]
		p.i++
		if r := p.product(); op == "+" {
			v += r
		} else {
			v -= r
		}
	}
	return v
}

func (p *exprParser) product() float64 {
	v := p.factor()
	for p.peek() == "*" || p.peek() == "/" {
		op := p.toks[p.i]
		p.i++
		if r := p.factor(); op == "*" {
			v *= r
		} else {
			v /= r
		}
	}
	return v
}

func (p *exprParser) factor() float64 {
	t := p.peek()
	p.i++
	switch {
	case t == "(":
		v := p.sum()
		p.expect(")")
		return v
	case t == "-":
		return -p.factor()
	case t == "FILL":
		p.expect("(")
		x := p.sum()
		p.expect(",")
		c := p.sum()
		p.expect(")")
		if math.IsNaN(x) {
			return c
		}
		return x
	case t != "" && (t[0] >= '0' && t[0] <= '9'):
		v, _ := strconv.ParseFloat(t, 64)
		return v
	case t != "" && t[0] >= 'a' && t[0] <= 'z':
		v, ok := p.vars[t]
		if !ok && p.err == nil {
			p.err = fmt.Errorf("no metric or expression has id %q", t)
		}
		return v
	}
	if p.err == nil {
		p.err = fmt.Errorf("unexpected %q", t)
	}
	return math.NaN()
}

// subValues are the values of Fn::Sub's variables for params over the defaults.
func subValues(t *testing.T, params map[string]any) map[string]string {
	t.Helper()
	vals := map[string]string{"AWS::Region": "us-east-1", "AWS::StackName": "storeapi", "AWS::AccountId": "123456789012"}
	for name, p := range parse(t, nil).Parameters {
		if p.Default != nil {
			vals[name] = fmt.Sprint(p.Default)
		}
	}
	for name, v := range params {
		vals[name] = fmt.Sprint(v)
	}
	return vals
}

// substitute resolves ${Name} in s as Fn::Sub does, failing for a name it does not
// know (goformation drops those silently) and turning ${!Literal} into ${Literal}.
func substitute(t *testing.T, s string, vals map[string]string) string {
	t.Helper()
	return regexp.MustCompile(`\$\{([^}]*)\}`).ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		v, ok := vals[name]
		if !ok {
			t.Errorf("Fn::Sub refers to ${%s}, which is no parameter or pseudo parameter", name)
		}
		return v
	})
}

// dashRow is one row of a metric widget's "metrics": a metric or an expression.
type dashRow struct {
	metricRef
	expr, id string
	visible  bool
}

type widget struct {
	title string
	rows  []dashRow
}

// dashboard returns the metric widgets of the Dashboard resource's body, its Fn::Sub
// resolved for params.
func dashboard(t *testing.T, params map[string]any) []widget {
	t.Helper()
	sub := dig(rawTemplate(t), "Resources", "Dashboard", "Properties", "DashboardBody", "Fn::Sub")
	s, ok := sub.(string)
	if !ok {
		t.Fatalf("Dashboard.DashboardBody is %v, want a Fn::Sub of a string", sub)
	}
	vals := subValues(t, params)
	// The dashboard body structure's top level and widget fields, as CloudWatch
	// documents them: a misspelt one is an error here.
	var body struct {
		Start, End, PeriodOverride string
		Widgets                    []struct {
			Type                string
			X, Y, Width, Height int
			Properties          map[string]any
		}
	}
	dec := json.NewDecoder(strings.NewReader(substitute(t, s, vals)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("DashboardBody is not the JSON of a dashboard: %v", err)
	}
	var out []widget
	for i, w := range body.Widgets {
		if w.Type != "metric" {
			continue
		}
		p := w.Properties
		wd := widget{title: fmt.Sprint(p["title"])}
		if p["region"] != vals["AWS::Region"] {
			t.Errorf("widget %q: region %v, want the stack's", wd.title, p["region"])
		}
		var prev []string
		for j, r := range list(p["metrics"]) {
			var strs []string
			var opts map[string]any
			for _, x := range list(r) {
				switch x := x.(type) {
				case string:
					if x == "." && len(strs) < len(prev) {
						x = prev[len(strs)]
					}
					strs = append(strs, x)
				case map[string]any:
					opts = x
				}
			}
			row := dashRow{visible: opts["visible"] != false}
			row.id, _ = opts["id"].(string)
			switch {
			case len(strs) == 0:
				row.expr, _ = opts["expression"].(string)
				if row.expr == "" {
					t.Errorf("widget %d (%q) row %d: neither a metric nor an expression", i, wd.title, j)
				}
			case len(strs) < 2 || len(strs)%2 != 0:
				t.Errorf("widget %d (%q) row %d: %v is not namespace, name and dimension pairs", i, wd.title, j, strs)
				continue
			default:
				prev = strs
				row.namespace, row.name = strs[0], strs[1]
				row.dims = map[string]string{}
				for k := 2; k < len(strs); k += 2 {
					row.dims[strs[k]] = strs[k+1]
				}
				row.stat = "Average"
				for _, st := range []any{p["stat"], opts["stat"]} {
					if st, ok := st.(string); ok {
						row.stat = st
					}
				}
			}
			wd.rows = append(wd.rows, row)
		}
		out = append(out, wd)
	}
	return out
}

// TestDashboardMetricsAreEmitted checks that every metric the dashboard names is one
// the functions write, in their namespace and with their dimensions, and that the
// functions are configured to write to the namespace the dashboard reads.
func TestDashboardMetricsAreEmitted(t *testing.T) {
	ns, stage := monitoringParams["MetricsNamespace"].(string), monitoringParams["Stage"].(string)
	for id, f := range parse(t, monitoringParams).merged(t) {
		c, err := config.Parse(env(f), config.ModeLambda)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if c.HTTP.MetricsNamespace != ns {
			t.Errorf("%s writes its metrics to %q, the dashboard and alarms read %q", id, c.HTTP.MetricsNamespace, ns)
		}
	}
	ws := dashboard(t, monitoringParams)
	if len(ws) == 0 {
		t.Fatal("the dashboard has no metric widget")
	}
	for _, w := range ws {
		for _, r := range w.rows {
			if r.expr == "" {
				checkMetric(t, "dashboard widget "+w.title, r.metricRef, ns, stage)
			}
		}
	}
}

// TestDashboardShows checks what the dashboard shows: for each function its requests,
// p50 and p99 latency and 5xx; and, computed from a minute of getProduct lines that the
// telemetry middleware wrote (6 HIT, 2 STALE, 1 MISS, 1 BYPASS), the hit ratio
// (HIT+STALE)/lookups = 80%, the BYPASS rate 10% and the STALE rate 20%.
func TestDashboardShows(t *testing.T) {
	ns, stage := monitoringParams["MetricsNamespace"].(string), monitoringParams["Stage"].(string)
	var reqs []emfRequest
	for outcome, n := range map[string]int{telemetry.Hit: 6, telemetry.Stale: 2, telemetry.Miss: 1, telemetry.Bypass: 1} {
		for range n {
			reqs = append(reqs, emfRequest{app.GetProduct.Name, outcome, 200})
		}
	}
	w := emfWorld(t, ns, stage, reqs)

	shown := map[string]bool{}
	var results []float64
	for _, wd := range dashboard(t, monitoringParams) {
		vars := map[string]float64{}
		for _, r := range wd.rows {
			if r.expr == "" && r.id != "" {
				vars[r.id] = w.value(r.metricRef)
			}
		}
		for _, r := range wd.rows {
			switch {
			case !r.visible:
			case r.expr == "":
				shown[r.name+" "+r.dims["function"]+" "+r.stat] = true
			default:
				v, err := eval(r.expr, vars)
				if err != nil {
					t.Errorf("widget %q: %v", wd.title, err)
				}
				results = append(results, v)
			}
		}
	}
	for _, fn := range []string{app.GetProduct.Name, app.Health.Name, app.CacheClear.Name} {
		for _, want := range []string{"Latency " + fn + " SampleCount", "Latency " + fn + " p50", "Latency " + fn + " p99", "ServerError " + fn + " Sum"} {
			if !shown[want] {
				t.Errorf("the dashboard does not show %s", want)
			}
		}
	}
	for name, want := range map[string]float64{"hit ratio %": 80, "BYPASS %": 10, "STALE %": 20} {
		if !slices.ContainsFunc(results, func(v float64) bool { return math.Abs(v-want) < 1e-9 }) {
			t.Errorf("no expression on the dashboard computes the %s (%v) of that minute; the expressions give %v", name, want, results)
		}
	}
}

func alarms(t *testing.T, params map[string]any) map[string]*cloudwatch.Alarm {
	t.Helper()
	out := map[string]*cloudwatch.Alarm{}
	for id, r := range parse(t, params).Resources {
		if a, ok := r.(*cloudwatch.Alarm); ok {
			out[id] = a
		}
	}
	return out
}

// alarmValue evaluates the alarm's metric (or its one returned expression) in w.
func alarmValue(t *testing.T, id string, a *cloudwatch.Alarm, w world) float64 {
	t.Helper()
	if len(a.Metrics) == 0 {
		return w.value(metricRef{deref(a.Namespace), deref(a.MetricName), alarmDims(a.Dimensions), deref(a.Statistic) + deref(a.ExtendedStatistic)})
	}
	vars := map[string]float64{}
	var ret []string
	for _, q := range a.Metrics {
		if q.MetricStat != nil {
			vars[q.Id] = w.value(queryRef(q))
		}
		if q.ReturnData == nil || *q.ReturnData {
			ret = append(ret, q.Id)
		}
	}
	if len(ret) != 1 {
		t.Fatalf("%s: queries %v return data, want exactly one", id, ret)
	}
	for _, q := range a.Metrics {
		if q.Id == ret[0] && q.Expression != nil {
			v, err := eval(*q.Expression, vars)
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			return v
		}
	}
	return vars[ret[0]]
}

func alarmDims(ds []cloudwatch.Alarm_Dimension) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		m[d.Name] = d.Value
	}
	return m
}

func queryRef(q cloudwatch.Alarm_MetricDataQuery) metricRef {
	m := q.MetricStat.Metric
	if m == nil {
		return metricRef{stat: q.MetricStat.Stat}
	}
	return metricRef{deref(m.Namespace), deref(m.MetricName), alarmDims(m.Dimensions), q.MetricStat.Stat}
}

// fires reports whether v breaches a's threshold. No data does not breach: the
// alarms treat missing data as not breaching.
func fires(a *cloudwatch.Alarm, v float64) bool {
	th := deref(a.Threshold)
	switch a.ComparisonOperator {
	case "GreaterThanThreshold":
		return v > th
	case "GreaterThanOrEqualToThreshold":
		return v >= th
	case "LessThanThreshold":
		return v < th
	case "LessThanOrEqualToThreshold":
		return v <= th
	}
	return false
}

// TestAlarms checks the four alarms: their metrics are emitted ones, their thresholds
// the parameters', and, evaluated on minutes of request lines that the telemetry
// middleware wrote, each fires in the situation it is for and not in the others.
func TestAlarms(t *testing.T) {
	ns, stage := monitoringParams["MetricsNamespace"].(string), monitoringParams["Stage"].(string)
	gp, health, clear := app.GetProduct.Name, app.Health.Name, app.CacheClear.Name
	many := func(n int, r emfRequest) []emfRequest { return slices.Repeat([]emfRequest{r}, n) }
	worlds := map[string]world{
		"healthy": emfWorld(t, ns, stage, slices.Concat(
			many(9, emfRequest{gp, telemetry.Hit, 200}), many(1, emfRequest{gp, telemetry.Miss, 200}),
			many(2, emfRequest{health, "", 200}))),
		// Redis down: getProduct fails open (BYPASS, 200), health answers 503.
		"redis down": emfWorld(t, ns, stage, slices.Concat(
			many(10, emfRequest{gp, telemetry.Bypass, 200}), many(3, emfRequest{health, "", 503}))),
		"server errors": emfWorld(t, ns, stage, slices.Concat(
			many(9, emfRequest{gp, telemetry.Hit, 200}), many(1, emfRequest{gp, telemetry.Miss, 500}),
			many(1, emfRequest{clear, "", 200}))),
	}
	tests := []struct {
		id        string
		operator  string
		threshold any // a parameter's name, or the number
		firesIn   []string
	}{
		{"BypassRateAlarm", "GreaterThanThreshold", "AlarmBypassPercent", []string{"redis down"}},
		{"HitRatioAlarm", "LessThanThreshold", "AlarmHitRatioPercent", []string{"redis down"}},
		{"ServerErrorAlarm", "GreaterThanOrEqualToThreshold", 1.0, []string{"server errors"}},
		{"LatencyAlarm", "GreaterThanThreshold", "AlarmLatencyP99Ms", nil},
	}
	all := alarms(t, monitoringParams)
	if got, want := slices.Sorted(maps.Keys(all)), []string{"BypassRateAlarm", "HitRatioAlarm", "LatencyAlarm", "ServerErrorAlarm"}; !slices.Equal(got, want) {
		t.Errorf("alarms %v, want %v", got, want)
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			a := all[tc.id]
			if a == nil {
				t.Fatalf("no alarm %s", tc.id)
			}
			want, ok := tc.threshold.(float64)
			if !ok {
				want = monitoringParams[tc.threshold.(string)].(float64)
			}
			if a.ComparisonOperator != tc.operator || a.Threshold == nil || *a.Threshold != want {
				t.Errorf("%s %v, want %s %v", a.ComparisonOperator, deref(a.Threshold), tc.operator, want)
			}
			if got := deref(a.TreatMissingData); got != "notBreaching" {
				t.Errorf("TreatMissingData %q, want notBreaching: no traffic is no fault", got)
			}
			if len(a.Metrics) == 0 {
				checkMetric(t, tc.id, metricRef{deref(a.Namespace), deref(a.MetricName), alarmDims(a.Dimensions), deref(a.Statistic) + deref(a.ExtendedStatistic)}, ns, stage)
			}
			for _, q := range a.Metrics {
				if q.MetricStat != nil {
					checkMetric(t, tc.id+" query "+q.Id, queryRef(q), ns, stage)
				}
			}
			if tc.id == "LatencyAlarm" {
				if deref(a.ExtendedStatistic) != "p99" || deref(a.MetricName) != "Latency" || alarmDims(a.Dimensions)["function"] != gp {
					t.Errorf("watches %s %s of %v, want getProduct's Latency p99", deref(a.MetricName), deref(a.ExtendedStatistic), a.Dimensions)
				}
				return
			}
			for _, name := range slices.Sorted(maps.Keys(worlds)) {
				v := alarmValue(t, tc.id, a, worlds[name])
				if got, want := fires(a, v), slices.Contains(tc.firesIn, name); got != want {
					t.Errorf("%s: value %v against %s %v: fires %v, want %v", name, v, a.ComparisonOperator, deref(a.Threshold), got, want)
				}
			}
		})
	}
}

// TestAlarmActions checks that the alarms notify the topic when one is given, on
// ALARM and on OK, and have no action without one.
func TestAlarmActions(t *testing.T) {
	const topic = "arn:aws:sns:eu-west-1:123456789012:storeapi-alarms"
	for _, tc := range []struct {
		name  string
		topic string
		want  []string
	}{
		{"no topic", "", nil},
		{"topic", topic, []string{topic}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := maps.Clone(monitoringParams)
			params["AlarmTopicArn"] = tc.topic
			as := alarms(t, params)
			if len(as) == 0 {
				t.Fatal("no alarms")
			}
			for id, a := range as {
				if !slices.Equal(a.AlarmActions, tc.want) || !slices.Equal(a.OKActions, tc.want) {
					t.Errorf("%s: AlarmActions %q OKActions %q, want %q", id, a.AlarmActions, a.OKActions, tc.want)
				}
				if len(a.InsufficientDataActions) > 0 || (a.ActionsEnabled != nil && !*a.ActionsEnabled) {
					t.Errorf("%s: InsufficientDataActions %v ActionsEnabled %v", id, a.InsufficientDataActions, deref(a.ActionsEnabled))
				}
			}
		})
	}
	p := parse(t, nil).Parameters["AlarmTopicArn"]
	for v, ok := range map[string]bool{"": true, topic: true, "arn:aws:sns:eu-west-1:123456789012:alarms.fifo": true, "storeapi-alarms": false, "arn:aws:sqs:eu-west-1:123456789012:q": false} {
		if satisfies(t, p, v) != ok {
			t.Errorf("AlarmTopicArn %q: accepted %v, want %v", v, !ok, ok)
		}
	}
}

// TestTracingParameter checks that Tracing sets the functions' X-Ray mode.
func TestTracingParameter(t *testing.T) {
	for _, mode := range []string{"PassThrough", "Active"} {
		params := maps.Clone(monitoringParams)
		params["Tracing"] = mode
		for id, f := range parse(t, params).merged(t) {
			if got := deref(f.Tracing); got != mode {
				t.Errorf("Tracing=%s: %s has Tracing %q", mode, id, got)
			}
		}
	}
	if got := fmt.Sprint(parse(t, nil).Parameters["Tracing"].AllowedValues); got != "[PassThrough Active]" {
		t.Errorf("Tracing AllowedValues %s", got)
	}
}
