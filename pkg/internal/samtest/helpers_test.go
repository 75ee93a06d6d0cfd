package samtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/awslabs/goformation/v7/cloudformation/cloudwatch"
	"github.com/awslabs/goformation/v7/cloudformation/global"
	"github.com/awslabs/goformation/v7/cloudformation/serverless"
	"github.com/awslabs/goformation/v7/intrinsics"
)

const module = "github.com/acmestore/storeapi"

// function is one function the template must define: its logical id, its folder under
// functions/ (also the prefix of its events/ files) and its one route.
type function struct {
	id, dir, method, path string
}

var functions = []function{
	{"GetProductFunction", "getproduct", "GET", "/products/{id}"},
	{"HealthFunction", "health", "GET", "/health"},
	{"CacheClearFunction", "cacheclear", "POST", "/cache/clear"},
}

// allowedVars is every environment variable the functions read.
func allowedVars() map[string]bool {
	ok := map[string]bool{}
	for _, v := range config.Variables() {
		ok[v] = true
	}
	return ok
}

// secretVars lists the variables that pkg/config holds as a config.Secret.
func secretVars() []string {
	var out []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			tag := strings.Split(f.Tag.Get("env"), ",")[0]
			switch {
			case tag != "" && tag != "-":
				if f.Type == reflect.TypeFor[config.Secret]() {
					out = append(out, tag)
				}
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[config.Config]())
	slices.Sort(out)
	return out
}

var rootOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module "+module+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
})

// root returns the module's root folder, where template.yaml and the Makefile are.
func root(tb testing.TB) string {
	tb.Helper()
	dir, err := rootOnce()
	if err != nil {
		tb.Fatalf("cannot find the root of module %s above the working directory: %v", module, err)
	}
	return dir
}

func readFile(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(root(tb), rel))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// goformationMu serializes goformation: its YAML reader registers its tag handlers in
// a package-level map on every call, which is a data race between parallel tests.
var goformationMu sync.Mutex

// rawTemplate returns template.yaml as JSON-like values, intrinsic functions unresolved
// and in their long form: !Ref X is {"Ref": "X"}, !If [...] is {"Fn::If": [...]}.
func rawTemplate(tb testing.TB) map[string]any {
	tb.Helper()
	data := readFile(tb, "template.yaml")
	goformationMu.Lock()
	b, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	goformationMu.Unlock()
	if err != nil {
		tb.Fatalf("template.yaml: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("template.yaml: %v", err)
	}
	return m
}

// template is a SAM template read into goformation's types. It stands in for
// goformation's cloudformation.Template, whose package registers every CloudFormation
// resource type and so compiles some 250 packages (about 16 s of CPU on the 2-core
// development VM, the largest part of this package's build), for the two resource
// types and the globals that SAM templates have. Like goformation it rejects a resource
// of a type it cannot decode; add the type's goformation struct to newResource.
type template struct {
	Parameters map[string]parameter
	Conditions map[string]any
	Globals    map[string]any // "Function": *global.Function, and so on
	Resources  map[string]any // *serverless.Function, *serverless.HttpApi
}

// parameter is a template parameter, as cloudformation.Parameter has it.
type parameter struct {
	Type                  string
	Description           *string
	Default               any
	AllowedPattern        *string
	AllowedValues         []any
	ConstraintDescription *string
	MaxLength             *int
	MinLength             *int
	MaxValue              *float64
	MinValue              *float64
	NoEcho                *bool
}

// newResource returns the goformation struct for a resource type, or nil.
func newResource(typ string) any {
	switch typ {
	case "AWS::Serverless::Function":
		return &serverless.Function{}
	case "AWS::Serverless::HttpApi":
		return &serverless.HttpApi{}
	case "AWS::CloudWatch::Dashboard":
		return &cloudwatch.Dashboard{}
	case "AWS::CloudWatch::Alarm":
		return &cloudwatch.Alarm{}
	}
	return nil
}

// newGlobal returns the goformation struct for a section of Globals, or nil.
func newGlobal(name string) any {
	switch name {
	case "Api":
		return &global.Api{}
	case "Function":
		return &global.Function{}
	case "HttpApi":
		return &global.HttpApi{}
	case "SimpleTable":
		return &global.SimpleTable{}
	}
	return nil
}

func (t *template) UnmarshalJSON(b []byte) error {
	var raw struct {
		Parameters map[string]parameter
		Conditions map[string]any
		Globals    map[string]json.RawMessage
		Resources  map[string]json.RawMessage
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	t.Parameters, t.Conditions = raw.Parameters, raw.Conditions
	t.Globals = map[string]any{}
	for name, r := range raw.Globals {
		g := newGlobal(name)
		if g == nil {
			return fmt.Errorf("Globals.%s: not a section of SAM's Globals", name)
		}
		if err := json.Unmarshal(r, g); err != nil {
			return fmt.Errorf("Globals.%s: %w", name, err)
		}
		t.Globals[name] = g
	}
	t.Resources = map[string]any{}
	for id, r := range raw.Resources {
		var typed struct{ Type string }
		if err := json.Unmarshal(r, &typed); err != nil {
			return fmt.Errorf("resource %s: %w", id, err)
		}
		res := newResource(typed.Type)
		if res == nil {
			return fmt.Errorf("resource %s: type %q is not one this package decodes (see newResource)", id, typed.Type)
		}
		if err := json.Unmarshal(r, res); err != nil {
			return fmt.Errorf("resource %s: %w", id, err)
		}
		t.Resources[id] = res
	}
	return nil
}

// GetAllServerlessFunctionResources returns the template's functions by logical id.
func (t *template) GetAllServerlessFunctionResources() map[string]*serverless.Function {
	out := map[string]*serverless.Function{}
	for id, r := range t.Resources {
		if f, ok := r.(*serverless.Function); ok {
			out[id] = f
		}
	}
	return out
}

// GetAllServerlessHttpApiResources returns the template's HTTP APIs by logical id.
func (t *template) GetAllServerlessHttpApiResources() map[string]*serverless.HttpApi {
	out := map[string]*serverless.HttpApi{}
	for id, r := range t.Resources {
		if a, ok := r.(*serverless.HttpApi); ok {
			out[id] = a
		}
	}
	return out
}

// stack is template.yaml as goformation reads it for one set of parameter values.
type stack struct {
	*template
	// Resolved is the template with every intrinsic function goformation can resolve
	// resolved, as JSON-like values.
	Resolved map[string]any
}

// parse reads template.yaml with goformation for the parameters' defaults overlaid
// with params (a CommaDelimitedList value is a []any), conditions evaluated.
//
// goformation resolves Ref to a parameter's value and to fixed values for pseudo
// parameters (AWS::Region is us-east-1); a Ref to a resource or to AWS::URLSuffix
// becomes null, and Fn::Sub drops what it cannot resolve. Fn::If only works with
// conditions evaluated, and its evaluation replaces every object holding a
// "Condition" key by that condition's value, a conditional resource included; so the
// resources' Condition attributes are taken out first and put back after.
func parse(tb testing.TB, params map[string]any) stack {
	tb.Helper()
	raw := rawTemplate(tb)
	conds := map[string]string{}
	for id, r := range obj(raw["Resources"]) {
		res := obj(r)
		if c, ok := res["Condition"].(string); ok {
			conds[id] = c
			delete(res, "Condition")
		}
	}
	b, err := json.Marshal(raw)
	if err != nil {
		tb.Fatal(err)
	}
	goformationMu.Lock()
	b, err = intrinsics.ProcessJSON(b, &intrinsics.ProcessorOptions{
		ParameterOverrides: params,
		EvaluateConditions: true,
	})
	goformationMu.Unlock()
	if err != nil {
		tb.Fatalf("template.yaml: %v", err)
	}
	var s stack
	if err := json.Unmarshal(b, &s.template); err != nil {
		tb.Fatalf("template.yaml: goformation rejects it: %v", err)
	}
	if err := json.Unmarshal(b, &s.Resolved); err != nil {
		tb.Fatal(err)
	}
	for id, c := range conds {
		if f, ok := s.Resources[id].(*serverless.Function); ok {
			f.AWSCloudFormationCondition = c
		}
		obj(obj(s.Resolved["Resources"])[id])["Condition"] = c
	}
	return s
}

// merged returns each function of s with the template's Globals applied as SAM
// applies them (goformation leaves them apart): a value the function sets wins, maps
// are merged key by key (the function's keys win), lists are the global items then
// the function's.
func (s stack) merged(tb testing.TB) map[string]*serverless.Function {
	tb.Helper()
	var g *global.Function
	if r, ok := s.Globals["Function"]; ok {
		g = r.(*global.Function)
	}
	out := map[string]*serverless.Function{}
	for id, f := range s.GetAllServerlessFunctionResources() {
		m := *f
		if g != nil {
			mergeGlobals(tb, g, &m)
		}
		out[id] = &m
	}
	return out
}

func mergeGlobals(tb testing.TB, g *global.Function, f *serverless.Function) {
	tb.Helper()
	gv := reflect.ValueOf(g).Elem()
	fv := reflect.ValueOf(f).Elem()
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		gval := gv.Field(i)
		if gval.IsNil() {
			continue
		}
		fval := fv.FieldByName(name)
		if !fval.IsValid() {
			tb.Fatalf("Globals.Function.%s has no counterpart on a function", name)
		}
		if name == "Environment" {
			vars := maps.Clone(g.Environment.Variables)
			if f.Environment != nil {
				maps.Copy(vars, f.Environment.Variables)
			}
			f.Environment = &serverless.Function_FunctionEnvironment{Variables: vars}
			continue
		}
		elem := gval.Elem()
		switch {
		case elem.Kind() == reflect.Slice && fval.Kind() == reflect.Slice:
			all := reflect.MakeSlice(fval.Type(), 0, elem.Len()+fval.Len())
			fval.Set(reflect.AppendSlice(reflect.AppendSlice(all, elem), fval))
		case elem.Kind() == reflect.Map && fval.Kind() == reflect.Map:
			all := reflect.MakeMap(fval.Type())
			for _, src := range []reflect.Value{elem, fval} {
				for it := src.MapRange(); it.Next(); {
					all.SetMapIndex(it.Key(), it.Value())
				}
			}
			fval.Set(all)
		case !fval.IsZero():
		case gval.Type() == fval.Type():
			fval.Set(gval)
		case elem.Type() == fval.Type():
			fval.Set(elem)
		default:
			tb.Fatalf("Globals.Function.%s: cannot merge %s into %s", name, gval.Type(), fval.Type())
		}
	}
}

// env returns the environment variables the merged template sets for a function.
func env(f *serverless.Function) map[string]string {
	if f.Environment == nil {
		return map[string]string{}
	}
	return f.Environment.Variables
}

// obj returns v as a JSON object, or nil.
func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// list returns v as a JSON array, or nil.
func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// dig walks nested JSON objects by key.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		v = obj(v)[k]
	}
	return v
}

// ref returns the name in {"Ref": name}, or "".
func ref(v any) string {
	m := obj(v)
	if len(m) != 1 {
		return ""
	}
	s, _ := m["Ref"].(string)
	return s
}

// routeParams matches a path against an API Gateway route path such as /products/{id}
// and returns the path parameters.
func routeParams(route, path string) (map[string]string, bool) {
	rs := strings.Split(route, "/")
	ps := strings.Split(path, "/")
	if len(rs) != len(ps) {
		return nil, false
	}
	params := map[string]string{}
	for i, r := range rs {
		if strings.HasPrefix(r, "{") && strings.HasSuffix(r, "}") {
			if ps[i] == "" {
				return nil, false
			}
			params[r[1:len(r)-1]] = ps[i]
			continue
		}
		if r != ps[i] {
			return nil, false
		}
	}
	return params, true
}

// satisfies reports whether a parameter value meets the parameter's AllowedValues and
// AllowedPattern. CloudFormation matches the pattern against the whole value with Java
// regular expressions; the patterns here use only what RE2 reads the same way.
func satisfies(tb testing.TB, p parameter, value string) bool {
	tb.Helper()
	if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, any(value)) {
		return false
	}
	if p.AllowedPattern != nil {
		re, err := regexp.Compile(`^(?:` + *p.AllowedPattern + `)$`)
		if err != nil {
			tb.Fatalf("AllowedPattern %q: %v", *p.AllowedPattern, err)
		}
		return re.MatchString(value)
	}
	return true
}
