package samtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/aws/aws-lambda-go/events"
)

// expectation is one entry of events/expected.json.
type expectation struct {
	// Function is the logical id of the function the event is for.
	Function string `json:"function"`
	// Status is the HTTP status the function answers with Redis up and the settings
	// of events/env.json.
	Status int `json:"status"`
	// StatusWithoutRedis is the status when Redis cannot be reached.
	StatusWithoutRedis int `json:"statusWithoutRedis"`
}

// decodeStrict decodes one JSON value, refusing names v has no field for (a misspelt
// event field is silently empty otherwise) and anything after the value. Names must
// match exactly: encoding/json alone would take "rawpath" for "rawPath", which API
// Gateway never sends.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return err
	}
	return exactNames(generic, reflect.TypeOf(v), "")
}

// exactNames checks that every object member name in v is, letter for letter, the JSON
// name of a field of t.
func exactNames(v any, t reflect.Type, at string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch v := v.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Map:
			for k, x := range v {
				if err := exactNames(x, t.Elem(), at+"."+k); err != nil {
					return err
				}
			}
		case reflect.Struct:
			fields := map[string]reflect.Type{}
			for f := range t.Fields() {
				if name := strings.Split(f.Tag.Get("json"), ",")[0]; name != "" && name != "-" {
					fields[name] = f.Type
				}
			}
			for k, x := range v {
				ft, ok := fields[k]
				if !ok {
					where := strings.TrimPrefix(at, ".")
					if where == "" {
						where = "top level"
					}
					return fmt.Errorf("%s: no field %q (names are case-sensitive)", where, k)
				}
				if err := exactNames(x, ft, at+"."+k); err != nil {
					return err
				}
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, x := range v {
				if err := exactNames(x, t.Elem(), fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func loadExpected(tb testing.TB) map[string]expectation {
	tb.Helper()
	var m map[string]expectation
	if err := decodeStrict(readFile(tb, "events/expected.json"), &m); err != nil {
		tb.Fatalf("events/expected.json: %v", err)
	}
	return m
}

func loadEnvJSON(tb testing.TB) map[string]map[string]string {
	tb.Helper()
	var m map[string]map[string]string
	if err := decodeStrict(readFile(tb, "events/env.json"), &m); err != nil {
		tb.Fatalf("events/env.json: %v", err)
	}
	return m
}

// eventFiles lists the event files in events/, by name.
func eventFiles(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(root(tb), "events", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		if n := filepath.Base(p); n != "env.json" && n != "expected.json" {
			names = append(names, n)
		}
	}
	return names
}

func functionByID(id string) (function, bool) {
	for _, f := range functions {
		if f.id == id {
			return f, true
		}
	}
	return function{}, false
}

// request is what an event amounts to as an HTTP request.
type request struct {
	method, path string
	header       http.Header
	body         []byte
}

func TestEvents(t *testing.T) {
	// The routes come from the template, not from the functions table, so an event
	// that matches the table but not the template fails.
	routes := map[string]function{}
	s := parse(t, nil)
	for _, fn := range functions {
		f, ok := s.GetAllServerlessFunctionResources()[fn.id]
		if !ok {
			t.Fatalf("no function %s in the template", fn.id)
		}
		for _, ev := range f.Events {
			if ev.Properties != nil && ev.Properties.HttpApiEvent != nil {
				h := ev.Properties.HttpApiEvent
				routes[fn.id] = function{id: fn.id, dir: fn.dir, method: deref(h.Method), path: deref(h.Path)}
			}
		}
	}
	expected := loadExpected(t)
	token := loadEnvJSON(t)["CacheClearFunction"]["CACHE_CLEAR_TOKEN"]
	kinds := map[string][]string{}
	var base64Bodies int
	files := eventFiles(t)
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			exp, ok := expected[name]
			if !ok {
				t.Fatal("not listed in events/expected.json")
			}
			fn, ok := routes[exp.Function]
			if !ok {
				t.Fatalf("expected.json names function %q, which has no route in the template", exp.Function)
			}
			if !strings.HasPrefix(name, fn.dir+".") && !strings.HasPrefix(name, fn.dir+"-") {
				t.Errorf("the name does not start with %q, the folder of %s", fn.dir, fn.id)
			}
			if http.StatusText(exp.Status) == "" || http.StatusText(exp.StatusWithoutRedis) == "" {
				t.Errorf("expected.json: statuses %d, %d are not HTTP statuses", exp.Status, exp.StatusWithoutRedis)
			}
			data := readFile(t, filepath.Join("events", name))
			var probe struct {
				Version         string `json:"version"`
				IsBase64Encoded bool   `json:"isBase64Encoded"`
			}
			if err := json.Unmarshal(data, &probe); err != nil {
				t.Fatal(err)
			}
			var r request
			kind := "v1"
			if probe.Version == "2.0" {
				kind = "v2"
				r = checkV2(t, data, fn)
			} else {
				r = checkV1(t, data, fn)
			}
			if !strings.HasSuffix(name, "."+kind+".json") {
				t.Errorf("a %s event whose name does not end in .%s.json", kind, kind)
			}
			kinds[fn.id] = append(kinds[fn.id], kind)
			if probe.IsBase64Encoded {
				base64Bodies++
			}
			checkRequest(t, r)

			if fn.id == "CacheClearFunction" {
				auth := r.header.Get("Authorization")
				switch exp.Status {
				case http.StatusUnauthorized:
					if auth == "Bearer "+token {
						t.Error("expects 401 but carries the token of events/env.json")
					}
				case http.StatusOK:
					if auth != "Bearer "+token {
						t.Errorf("expects 200 but its Authorization %q is not Bearer and the token of events/env.json", auth)
					}
				}
			}
		})
	}
	for _, fn := range functions {
		if k := kinds[fn.id]; !slices.Contains(k, "v1") || !slices.Contains(k, "v2") {
			t.Errorf("%s: events %v, want at least one v1 and one v2", fn.id, k)
		}
	}
	if base64Bodies == 0 {
		t.Error("no event with a base64-encoded body, as sam local sends them")
	}
	for name := range expected {
		if !slices.Contains(files, name) {
			t.Errorf("events/expected.json lists %s, which does not exist", name)
		}
	}
}

// apiGatewayTime is the layout of requestContext.time and requestTime.
const apiGatewayTime = "02/Jan/2006:15:04:05 -0700"

func checkTime(t *testing.T, s string, epochMillis int64) {
	t.Helper()
	at, err := time.Parse(apiGatewayTime, s)
	if err != nil {
		t.Errorf("request time %q: %v", s, err)
		return
	}
	if at.Unix() != epochMillis/1000 {
		t.Errorf("request time %q is not the epoch time %d", s, epochMillis)
	}
}

func checkV2(t *testing.T, data []byte, fn function) request {
	t.Helper()
	var e events.APIGatewayV2HTTPRequest
	if err := decodeStrict(data, &e); err != nil {
		t.Fatalf("not an events.APIGatewayV2HTTPRequest: %v", err)
	}
	rc := e.RequestContext
	if want := fn.method + " " + fn.path; e.RouteKey != want || rc.RouteKey != want {
		t.Errorf("routeKey %q, requestContext.routeKey %q, want %q", e.RouteKey, rc.RouteKey, want)
	}
	if rc.HTTP.Method != fn.method {
		t.Errorf("requestContext.http.method %q, want %s", rc.HTTP.Method, fn.method)
	}
	// The API uses the $default stage; another would start rawPath with its name.
	if rc.Stage != "$default" {
		t.Errorf("requestContext.stage %q, want $default", rc.Stage)
	}
	path, err := url.PathUnescape(e.RawPath)
	if err != nil || rc.HTTP.Path != path {
		t.Errorf("requestContext.http.path %q is not rawPath %q decoded", rc.HTTP.Path, e.RawPath)
	}
	checkParams(t, fn.path, e.RawPath, e.PathParameters)
	h := http.Header{}
	for k, v := range e.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header %q: HTTP API events have lower-case header names", k)
		}
		h.Set(k, v)
	}
	checkOrigin(t, h.Get("Host"), rc.DomainName, rc.DomainPrefix, rc.APIID)
	checkTime(t, rc.Time, rc.TimeEpoch)
	if e.RawQueryString != "" || len(e.QueryStringParameters) > 0 {
		t.Error("a query string: the routes take none")
	}
	return request{rc.HTTP.Method, path, h, body(t, e.Body, e.IsBase64Encoded)}
}

func checkV1(t *testing.T, data []byte, fn function) request {
	t.Helper()
	var e events.APIGatewayProxyRequest
	if err := decodeStrict(data, &e); err != nil {
		t.Fatalf("not an events.APIGatewayProxyRequest: %v", err)
	}
	rc := e.RequestContext
	if e.HTTPMethod != fn.method || rc.HTTPMethod != fn.method {
		t.Errorf("httpMethod %q, requestContext.httpMethod %q, want %s", e.HTTPMethod, rc.HTTPMethod, fn.method)
	}
	if e.Resource != fn.path || rc.ResourcePath != fn.path {
		t.Errorf("resource %q, requestContext.resourcePath %q, want %s", e.Resource, rc.ResourcePath, fn.path)
	}
	// A REST API keeps the stage out of path and puts it in requestContext.path.
	if rc.Stage == "" || rc.Path != "/"+rc.Stage+e.Path {
		t.Errorf("requestContext.path %q is not /<stage %q>%s", rc.Path, rc.Stage, e.Path)
	}
	checkParams(t, fn.path, e.Path, e.PathParameters)
	h := http.Header{}
	for k, v := range e.Headers {
		h.Set(k, v)
		if mv := e.MultiValueHeaders[k]; !slices.Equal(mv, []string{v}) {
			t.Errorf("header %s: multiValueHeaders %q, headers %q", k, mv, v)
		}
	}
	if len(e.MultiValueHeaders) != len(e.Headers) {
		t.Errorf("multiValueHeaders has %d names, headers %d", len(e.MultiValueHeaders), len(e.Headers))
	}
	checkOrigin(t, h.Get("Host"), rc.DomainName, rc.DomainPrefix, rc.APIID)
	checkTime(t, rc.RequestTime, rc.RequestTimeEpoch)
	if len(e.QueryStringParameters) > 0 || len(e.MultiValueQueryStringParameters) > 0 {
		t.Error("a query string: the routes take none")
	}
	return request{e.HTTPMethod, e.Path, h, body(t, e.Body, e.IsBase64Encoded)}
}

func checkParams(t *testing.T, route, rawPath string, got map[string]string) {
	t.Helper()
	want, ok := routeParams(route, rawPath)
	if !ok {
		t.Errorf("path %q does not match the route %s", rawPath, route)
		return
	}
	for k, v := range want {
		if want[k], _ = url.PathUnescape(v); want[k] == "" {
			t.Errorf("path parameter %s: %q does not decode", k, v)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("pathParameters %v, want %v from the path", got, want)
	}
}

func checkOrigin(t *testing.T, host, domain, prefix, apiID string) {
	t.Helper()
	if host != domain || prefix != apiID || !strings.HasPrefix(domain, apiID+".execute-api.") {
		t.Errorf("Host %q, domainName %q, domainPrefix %q, apiId %q do not agree", host, domain, prefix, apiID)
	}
}

func body(t *testing.T, s string, b64 bool) []byte {
	t.Helper()
	if !b64 {
		return []byte(s)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Errorf("isBase64Encoded, but the body is not base64: %v", err)
	}
	return b
}

func checkRequest(t *testing.T, r request) {
	t.Helper()
	if r.method == http.MethodGet && len(r.body) > 0 {
		t.Error("a GET with a body")
	}
	if len(r.body) > 0 {
		if !json.Valid(r.body) {
			t.Errorf("the body %q is not JSON", r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q for a JSON body", ct)
		}
	}
	if cl := r.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(r.body)) {
		t.Errorf("Content-Length %s, but the body has %d bytes", cl, len(r.body))
	}
}

// TestEnvJSON checks events/env.json, the --env-vars file of sam local.
func TestEnvJSON(t *testing.T) {
	envs := loadEnvJSON(t)
	if got, want := slices.Sorted(maps.Keys(envs)), functionIDs(); !slices.Equal(got, want) {
		t.Errorf("env.json keys %v, want the functions' logical ids %v", got, want)
	}
	fns := parse(t, nil).merged(t)
	allowed := allowedVars()
	prefixes := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(envs)) {
		vars := envs[id]
		f, ok := fns[id]
		if !ok {
			continue
		}
		declared := env(f)
		for _, k := range slices.Sorted(maps.Keys(vars)) {
			if !allowed[k] {
				t.Errorf("%s: %s is not read by pkg/config", id, k)
			}
			// sam local sets only what the template declares for the function.
			if _, ok := declared[k]; !ok {
				t.Errorf("%s: %s is not declared for it in template.yaml, so sam local would drop it", id, k)
			}
		}
		// Inside SAM's containers Redis is the compose service, not localhost.
		if got := vars["REDIS_URL"]; got != "redis://redis:6379" {
			t.Errorf("%s: REDIS_URL %q, want redis://redis:6379", id, got)
		}
		full := maps.Clone(declared)
		maps.Copy(full, vars)
		c, err := config.Parse(full, config.ModeLambda)
		if err != nil {
			t.Errorf("%s: the environment of a sam local run is invalid: %v", id, err)
			continue
		}
		prefixes[c.Cache.KeyPrefix] = true
		if id == "CacheClearFunction" && c.CacheClearToken == "" {
			t.Error("CacheClearFunction: no CACHE_CLEAR_TOKEN: under Lambda it would refuse every call")
		}
	}
	if len(prefixes) > 1 {
		t.Errorf("the functions use different CACHE_KEY_PREFIX values %v", slices.Collect(maps.Keys(prefixes)))
	}
}

// TestEventsReadme checks that the table in events/README.md says what expected.json
// says.
func TestEventsReadme(t *testing.T) {
	expected := loadExpected(t)
	row := regexp.MustCompile(`(?m)^\| ([\w.-]+\.json) \| (\w+) \| (\d+) \| (\d+) \|`)
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(readFile(t, "events/README.md")), -1) {
		name := m[1]
		seen[name] = true
		e, ok := expected[name]
		if !ok {
			t.Errorf("README row %s: not in expected.json", name)
			continue
		}
		got := m[2] + " " + m[3] + " " + m[4]
		if want := e.Function + " " + strconv.Itoa(e.Status) + " " + strconv.Itoa(e.StatusWithoutRedis); got != want {
			t.Errorf("README row %s says %s, expected.json %s", name, got, want)
		}
	}
	for name := range expected {
		if !seen[name] {
			t.Errorf("events/README.md has no row for %s", name)
		}
	}
}
