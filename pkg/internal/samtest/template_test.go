package samtest

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/awslabs/goformation/v7/cloudformation/serverless"
)

func functionIDs() []string {
	var ids []string
	for _, f := range functions {
		ids = append(ids, f.id)
	}
	slices.Sort(ids)
	return ids
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func TestFunctionSettings(t *testing.T) {
	fns := parse(t, nil).merged(t)
	if got, want := slices.Sorted(maps.Keys(fns)), functionIDs(); !slices.Equal(got, want) {
		t.Fatalf("template functions = %v, want %v", got, want)
	}
	for _, fn := range functions {
		t.Run(fn.id, func(t *testing.T) {
			f := fns[fn.id]
			if got := deref(f.Runtime); got != "provided.al2023" {
				t.Errorf("Runtime = %q, want provided.al2023", got)
			}
			if !slices.Equal(f.Architectures, []string{"arm64"}) {
				t.Errorf("Architectures = %q, want [arm64]", f.Architectures)
			}
			if got := deref(f.Handler); got != "bootstrap" {
				t.Errorf("Handler = %q, want bootstrap", got)
			}
			if p := deref(f.PackageType); p != "" && p != "Zip" {
				t.Errorf("PackageType = %q, want Zip", p)
			}
			// The makefile builder runs make in a copy of CodeUri: it must be the module
			// root, which holds go.mod and the Makefile.
			if f.CodeUri == nil || deref(f.CodeUri.String) != "." {
				t.Errorf("CodeUri is not the module root %q", ".")
			}
			if got := f.AWSCloudFormationMetadata["BuildMethod"]; got != "makefile" {
				t.Errorf("Metadata.BuildMethod = %v, want makefile", got)
			}
			// Longer than API Gateway's 30 s integration limit would only hide a hang.
			if got := deref(f.Timeout); got < 3 || got > 29 {
				t.Errorf("Timeout = %d s, want 3 to 29", got)
			}
			if got := deref(f.MemorySize); got < 128 {
				t.Errorf("MemorySize = %d MB, want at least 128", got)
			}
		})
	}
}

func TestLoggingConfig(t *testing.T) {
	raw := rawTemplate(t)
	lc := obj(dig(raw, "Globals", "Function", "LoggingConfig"))
	if lc == nil {
		t.Fatal("Globals.Function has no LoggingConfig")
	}
	if lc["LogFormat"] != "JSON" {
		t.Errorf("LoggingConfig.LogFormat = %v, want JSON", lc["LogFormat"])
	}
	// Lambda drops JSON lines below ApplicationLogLevel; the functions write from
	// LOG_LEVEL up. Both come from the same parameter, so they cannot disagree.
	if got := ref(lc["ApplicationLogLevel"]); got != "LogLevel" {
		t.Errorf("LoggingConfig.ApplicationLogLevel = %v, want !Ref LogLevel", lc["ApplicationLogLevel"])
	}
	if got := ref(dig(raw, "Globals", "Function", "Environment", "Variables", "LOG_LEVEL")); got != "LogLevel" {
		t.Errorf("LOG_LEVEL is not !Ref LogLevel")
	}
	for _, fn := range functions {
		if _, ok := obj(dig(raw, "Resources", fn.id, "Properties"))["LoggingConfig"]; ok {
			t.Errorf("%s sets LoggingConfig: keep it in Globals (goformation rejects it on a function)", fn.id)
		}
	}
}

func TestRoutes(t *testing.T) {
	s := parse(t, nil)
	raw := rawTemplate(t)
	apis := slices.Collect(maps.Keys(s.GetAllServerlessHttpApiResources()))
	if len(apis) != 1 {
		t.Fatalf("HttpApi resources = %v, want one", apis)
	}
	api := apis[0]
	if name := deref(s.GetAllServerlessHttpApiResources()[api].StageName); name != "" {
		// A named stage would also put its name at the start of every rawPath.
		t.Errorf("%s.StageName = %q, want none (the $default stage)", api, name)
	}
	routes := map[string]string{}
	for _, fn := range functions {
		f, ok := s.Resources[fn.id].(*serverless.Function)
		if !ok {
			t.Errorf("no function %s", fn.id)
			continue
		}
		if len(f.Events) != 1 {
			t.Errorf("%s has %d events, want 1", fn.id, len(f.Events))
		}
		for name, ev := range f.Events {
			var h *serverless.Function_HttpApiEvent
			if ev.Properties != nil {
				h = ev.Properties.HttpApiEvent
			}
			if ev.Type != "HttpApi" || h == nil {
				t.Errorf("%s event %s: type %q, want an HttpApi event", fn.id, name, ev.Type)
				continue
			}
			route := deref(h.Method) + " " + deref(h.Path)
			if route != fn.method+" "+fn.path {
				t.Errorf("%s event %s: route %q, want %q", fn.id, name, route, fn.method+" "+fn.path)
			}
			if other, dup := routes[route]; dup {
				t.Errorf("route %q goes to both %s and %s", route, other, fn.id)
			}
			routes[route] = fn.id
			if v := deref(h.PayloadFormatVersion); v != "2.0" {
				t.Errorf("%s event %s: PayloadFormatVersion %q, want 2.0", fn.id, name, v)
			}
			apiID := dig(raw, "Resources", fn.id, "Properties", "Events", name, "Properties", "ApiId")
			if ref(apiID) != api {
				t.Errorf("%s event %s: ApiId = %v, want !Ref %s", fn.id, name, apiID, api)
			}
		}
	}
}

func TestCORS(t *testing.T) {
	for id, api := range parse(t, nil).GetAllServerlessHttpApiResources() {
		var c *serverless.HttpApi_CorsConfigurationObject
		if api.CorsConfiguration != nil {
			c = api.CorsConfiguration.CorsConfigurationObject
		}
		if c == nil {
			t.Fatalf("%s has no CorsConfiguration object (or one with unknown keys)", id)
		}
		if len(c.AllowOrigins) == 0 {
			t.Error("AllowOrigins is empty")
		}
		if deref(c.AllowCredentials) && slices.Contains(c.AllowOrigins, "*") {
			t.Error("AllowCredentials with AllowOrigins *")
		}
		for _, m := range []string{"GET", "OPTIONS"} {
			if !slices.Contains(c.AllowMethods, m) {
				t.Errorf("AllowMethods %q lacks %s", c.AllowMethods, m)
			}
		}
		for _, h := range []string{"Content-Type", "Authorization", "If-None-Match"} {
			if !slices.ContainsFunc(c.AllowHeaders, func(s string) bool { return strings.EqualFold(s, h) }) {
				t.Errorf("AllowHeaders %q lacks %s", c.AllowHeaders, h)
			}
		}
		for _, h := range []string{"ETag", "X-Cache"} {
			if !slices.ContainsFunc(c.ExposeHeaders, func(s string) bool { return strings.EqualFold(s, h) }) {
				t.Errorf("ExposeHeaders %q lacks %s", c.ExposeHeaders, h)
			}
		}
		if deref(c.MaxAge) <= 0 {
			t.Error("MaxAge is not set: every browser read would cost a preflight")
		}
	}
}

// deployments are parameter sets a real deployment might use.
var deployments = []struct {
	name   string
	params map[string]any
}{
	{"dev", map[string]any{
		"RedisUrl": "redis://storeapi-dev.abc123.0001.use1.cache.amazonaws.com:6379",
	}},
	{"staging with a secret", map[string]any{
		"Stage":                  "staging",
		"RedisUrl":               "rediss://master.storeapi-staging.abc123.use1.cache.amazonaws.com:6379",
		"RedisPasswordSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:storeapi/redis-AbCdEf",
		"LogLevel":               "DEBUG",
	}},
	{"prod cluster", map[string]any{
		"Stage":             "prod",
		"RedisUrl":          "rediss://clustercfg.storeapi-prod.abc123.use1.cache.amazonaws.com:6379",
		"RedisCluster":      "true",
		"CacheClearEnabled": "true",
		"CacheClearToken":   "0123456789abcdef0123456789abcdef",
		"ProductCacheTtl":   "1h",
		"VpcSubnetIds":      []any{"subnet-0a1b2c3d", "subnet-4e5f6a7b"},
		"VpcSecurityGroupIds": []any{
			"sg-0123456789abcdef0",
		},
	}},
}

func TestEnvironment(t *testing.T) {
	allowed := allowedVars()
	for _, d := range deployments {
		t.Run(d.name, func(t *testing.T) {
			fns := parse(t, d.params).merged(t)
			prefixes := map[string]bool{}
			for _, fn := range functions {
				vars := env(fns[fn.id])
				for _, k := range slices.Sorted(maps.Keys(vars)) {
					if !allowed[k] {
						t.Errorf("%s sets %s, which pkg/config does not read", fn.id, k)
					}
				}
				if vars["REDIS_URL"] == "" {
					t.Errorf("%s: REDIS_URL is not set", fn.id)
				}
				// The functions will read exactly these values: they must pass.
				c, err := config.Parse(vars, config.ModeLambda)
				if err != nil {
					t.Errorf("%s: %v", fn.id, err)
					continue
				}
				if want := d.params["Stage"]; want != nil && string(c.Stage) != want {
					t.Errorf("%s: STAGE = %q, want %q", fn.id, c.Stage, want)
				}
				prefixes[c.Cache.KeyPrefix] = true
			}
			if len(prefixes) > 1 {
				t.Errorf("the functions use different CACHE_KEY_PREFIX values %v: cacheClear would miss keys", slices.Collect(maps.Keys(prefixes)))
			}
		})
	}
}

// TestSecretsFromNoEchoParameters checks that every variable pkg/config treats as a
// secret comes from a NoEcho parameter, never a literal in the template.
func TestSecretsFromNoEchoParameters(t *testing.T) {
	raw := rawTemplate(t)
	params := parse(t, nil).Parameters
	global := obj(dig(raw, "Globals", "Function", "Environment", "Variables"))
	for _, fn := range functions {
		vars := maps.Clone(global)
		maps.Copy(vars, obj(dig(raw, "Resources", fn.id, "Properties", "Environment", "Variables")))
		for _, k := range secretVars() {
			v, ok := vars[k]
			if !ok {
				continue
			}
			name := ref(v)
			if name == "" {
				t.Errorf("%s: %s is %v, want !Ref to a NoEcho parameter", fn.id, k, v)
				continue
			}
			if p, ok := params[name]; !ok || !deref(p.NoEcho) {
				t.Errorf("%s: %s comes from %s, which is not a NoEcho parameter", fn.id, k, name)
			}
		}
	}
}

func TestParameters(t *testing.T) {
	params := parse(t, nil).Parameters
	secretName := regexp.MustCompile(`(?i)password|token|secret`)
	for _, name := range slices.Sorted(maps.Keys(params)) {
		p := params[name]
		if secretName.MatchString(name) && !strings.HasSuffix(name, "Arn") && !deref(p.NoEcho) {
			t.Errorf("%s: looks secret but is not NoEcho", name)
		}
		if deref(p.NoEcho) && p.Default != nil && p.Default != "" {
			t.Errorf("%s: a NoEcho parameter with a default: the secret would be in the template", name)
		}
		if def, ok := p.Default.(string); ok && p.Type == "String" && !satisfies(t, p, def) {
			t.Errorf("%s: default %q is not an allowed value", name, def)
		}
	}

	stage := params["Stage"]
	if got := fmt.Sprint(stage.AllowedValues); got != "[dev staging prod]" || stage.Default != "dev" {
		t.Errorf("Stage: AllowedValues %s default %v, want [dev staging prod] default dev", got, stage.Default)
	}
	for _, name := range []string{"CacheClearEnabled", "RedisCluster"} {
		p := params[name]
		if got := fmt.Sprint(p.AllowedValues); got != "[false true]" || p.Default != "false" {
			t.Errorf("%s: AllowedValues %s default %v, want [false true] default false", name, got, p.Default)
		}
	}
	if d := params["RedisUrl"].Default; d != nil {
		t.Errorf("RedisUrl has default %v: a deployment must name its Redis", d)
	}
	for _, name := range []string{"VpcSubnetIds", "VpcSecurityGroupIds"} {
		if p := params[name]; p.Type != "CommaDelimitedList" || p.Default != "" {
			t.Errorf("%s: type %s default %v, want an optional CommaDelimitedList", name, p.Type, p.Default)
		}
	}

	cases := []struct {
		param, value string
		ok           bool
	}{
		{"RedisUrl", "rediss://master.x.abc123.use1.cache.amazonaws.com:6379", true},
		{"RedisUrl", "redis://redis:6379/0", true},
		{"RedisUrl", "http://redis:6379", false},
		{"RedisUrl", "", false},
		{"RedisPasswordSecretArn", "", true},
		{"RedisPasswordSecretArn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis-AbCdEf", true},
		{"RedisPasswordSecretArn", "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:r-AbCdEf", true},
		{"RedisPasswordSecretArn", "storeapi/redis", false},
		{"ProductCacheTtl", "90s", true},
		{"ProductCacheTtl", "1h30m", true},
		{"ProductCacheTtl", "1.5h", true},
		{"ProductCacheTtl", "600", false},
		{"ProductCacheTtl", "-1m", false},
		{"CacheClearToken", "", true},
		{"CacheClearToken", "0123456789abcdef0123456789abcdef", true},
		{"CacheClearToken", "dev-token", false},
		{"CacheClearToken", "has spaces in it, sixteen+", false},
		{"HealthToken", "", true},
		{"HealthToken", "Zm9vYmFyYmF6cXV4cXV1eA==", true},
		{"LogLevel", "DEBUG", true},
		{"LogLevel", "TRACE", false},
	}
	for _, c := range cases {
		p, ok := params[c.param]
		if !ok {
			t.Errorf("no parameter %s", c.param)
			continue
		}
		if got := satisfies(t, p, c.value); got != c.ok {
			t.Errorf("%s = %q: accepted %v, want %v", c.param, c.value, got, c.ok)
		}
		if c.param == "ProductCacheTtl" && c.ok {
			if _, err := time.ParseDuration(c.value); err != nil {
				t.Errorf("ProductCacheTtl accepts %q, which Go cannot parse: %v", c.value, err)
			}
		}
	}
}

// refs returns the names a template value refers to: Ref targets, Fn::GetAtt
// resources and ${Name} or ${Name.Attr} in Fn::Sub strings.
func refs(v any) []string {
	var out []string
	var walk func(v any)
	sub := regexp.MustCompile(`\$\{([A-Za-z0-9:]+)(\.[A-Za-z0-9.]+)?\}`)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch k {
				case "Ref":
					if s, ok := x.(string); ok {
						out = append(out, s)
					}
				case "Fn::GetAtt":
					if l := list(x); len(l) > 0 {
						if s, ok := l[0].(string); ok {
							out = append(out, s)
						}
					}
				case "Fn::Sub":
					s, _ := x.(string)
					if l := list(x); len(l) > 0 {
						s, _ = l[0].(string)
						walk(l[1:])
					}
					for _, m := range sub.FindAllStringSubmatch(s, -1) {
						out = append(out, m[1])
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return out
}

func TestReferences(t *testing.T) {
	raw := rawTemplate(t)
	params := obj(raw["Parameters"])
	resources := obj(raw["Resources"])
	used := map[string]bool{}
	for _, section := range []string{"Globals", "Resources", "Rules", "Conditions", "Outputs"} {
		for _, name := range refs(raw[section]) {
			used[name] = true
			_, isParam := params[name]
			_, isRes := resources[name]
			if !isParam && !isRes && !strings.HasPrefix(name, "AWS::") {
				t.Errorf("%s refers to %s, which is neither a parameter nor a resource", section, name)
			}
		}
	}
	for name := range params {
		if !used[name] {
			t.Errorf("parameter %s is never used", name)
		}
	}
}

func TestCacheClearCondition(t *testing.T) {
	s := parse(t, nil)
	for id, r := range s.GetAllServerlessFunctionResources() {
		want := ""
		if id == "CacheClearFunction" {
			want = "CreateCacheClear"
		}
		if got := r.AWSCloudFormationCondition; got != want {
			t.Errorf("%s: Condition %q, want %q", id, got, want)
		}
	}
	if got := ref(dig(rawTemplate(t), "Resources", "CacheClearFunction", "Properties", "Environment", "Variables", "CACHE_CLEAR_ENABLED")); got != "CacheClearEnabled" {
		t.Error("CacheClearFunction: CACHE_CLEAR_ENABLED is not !Ref CacheClearEnabled")
	}
	// The template creates cacheClear when the stage is not prod or the flag is set.
	for _, stage := range []string{"dev", "staging", "prod"} {
		for _, enabled := range []string{"false", "true"} {
			c := parse(t, map[string]any{"Stage": stage, "CacheClearEnabled": enabled}).Conditions
			want := stage != "prod" || enabled == "true"
			if c["CreateCacheClear"] != want {
				t.Errorf("Stage=%s CacheClearEnabled=%s: CreateCacheClear = %v, want %v", stage, enabled, c["CreateCacheClear"], want)
			}
			if c["IsProd"] != (stage == "prod") {
				t.Errorf("Stage=%s: IsProd = %v", stage, c["IsProd"])
			}
		}
	}
}

func TestSecretsManagerPolicy(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:storeapi/redis-AbCdEf"
	for _, tc := range []struct {
		name   string
		params map[string]any
		want   []any
	}{
		{"no secret", nil, nil},
		{"secret", map[string]any{"RedisPasswordSecretArn": arn}, []any{map[string]any{
			"Effect":   "Allow",
			"Action":   "secretsmanager:GetSecretValue",
			"Resource": arn,
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := parse(t, tc.params)
			for _, fn := range functions {
				var got []any
				for _, p := range list(dig(s.Resolved, "Resources", fn.id, "Properties", "Policies")) {
					if p == nil {
						continue // AWS::NoValue
					}
					got = append(got, list(obj(p)["Statement"])...)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("%s: policy statements %v, want %v", fn.id, got, tc.want)
				}
			}
		})
	}
}

func TestVpcConfig(t *testing.T) {
	raw := rawTemplate(t)
	v := list(dig(raw, "Globals", "Function", "VpcConfig", "Fn::If"))
	if len(v) != 3 || v[0] != "InVpc" || ref(v[2]) != "AWS::NoValue" {
		t.Errorf("Globals.Function.VpcConfig = %v, want !If [InVpc, {...}, !Ref AWS::NoValue]", dig(raw, "Globals", "Function", "VpcConfig"))
	}
	subnets := []any{"subnet-0a1b2c3d", "subnet-4e5f6a7b"}
	groups := []any{"sg-0123456789abcdef0"}
	for _, tc := range []struct {
		name           string
		params         map[string]any
		subnets, group []string
	}{
		{"none", nil, nil, nil},
		{"both", map[string]any{"VpcSubnetIds": subnets, "VpcSecurityGroupIds": groups},
			[]string{"subnet-0a1b2c3d", "subnet-4e5f6a7b"}, []string{"sg-0123456789abcdef0"}},
		// CloudFormation makes an empty list parameter [""]: Lambda then rejects the
		// deployment, rather than the functions silently running outside the VPC.
		{"subnets only", map[string]any{"VpcSubnetIds": subnets, "VpcSecurityGroupIds": []any{""}},
			[]string{"subnet-0a1b2c3d", "subnet-4e5f6a7b"}, []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for id, f := range parse(t, tc.params).merged(t) {
				if tc.subnets == nil {
					if f.VpcConfig != nil {
						t.Errorf("%s: VpcConfig %+v without VPC parameters", id, *f.VpcConfig)
					}
					continue
				}
				if f.VpcConfig == nil {
					t.Errorf("%s: no VpcConfig", id)
					continue
				}
				if !slices.Equal(f.VpcConfig.SubnetIds, tc.subnets) || !slices.Equal(f.VpcConfig.SecurityGroupIds, tc.group) {
					t.Errorf("%s: VpcConfig %q %q, want %q %q", id, f.VpcConfig.SubnetIds, f.VpcConfig.SecurityGroupIds, tc.subnets, tc.group)
				}
			}
		})
	}
}

func TestOutputs(t *testing.T) {
	raw := rawTemplate(t)
	resources := obj(raw["Resources"])
	var api string
	for id, r := range resources {
		if obj(r)["Type"] == "AWS::Serverless::HttpApi" {
			api = id
		}
	}
	url, _ := dig(raw, "Outputs", "ApiUrl", "Value", "Fn::Sub").(string)
	if want := "https://${" + api + "}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"; url != want {
		t.Errorf("Outputs.ApiUrl = %q, want %q", url, want)
	}
	// An output that names a conditional resource needs the same condition, or the
	// stack fails whenever the resource is left out.
	for name, o := range obj(raw["Outputs"]) {
		for _, r := range refs(o) {
			if c, ok := obj(resources[r])["Condition"]; ok && obj(o)["Condition"] != c {
				t.Errorf("output %s refers to %s but lacks its Condition %v", name, r, c)
			}
		}
	}
}

// ruleFailures returns the AssertDescription of every rule assertion that the
// parameter values break. goformation leaves Rules out of its template type, but
// resolves their intrinsic functions like any other.
func ruleFailures(tb testing.TB, params map[string]any) []string {
	tb.Helper()
	var failed []string
	for name, r := range obj(parse(tb, params).Resolved["Rules"]) {
		for _, a := range list(obj(r)["Assertions"]) {
			switch obj(a)["Assert"] {
			case true:
			case false:
				failed = append(failed, fmt.Sprint(obj(a)["AssertDescription"]))
			default:
				tb.Fatalf("rule %s: an assertion goformation cannot evaluate: %v", name, obj(a)["Assert"])
			}
		}
	}
	return failed
}

func TestRules(t *testing.T) {
	for _, d := range deployments {
		if f := ruleFailures(t, d.params); len(f) > 0 {
			t.Errorf("deployment %q breaks rules: %q", d.name, f)
		}
	}
	// pkg/config refuses REDIS_PASSWORD with REDIS_PASSWORD_SECRET_ARN: the template
	// refuses the pair before the functions exist.
	both := map[string]any{
		"RedisUrl":               "rediss://master.x.abc123.use1.cache.amazonaws.com:6379",
		"RedisPassword":          "hunter2hunter2",
		"RedisPasswordSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:storeapi/redis-AbCdEf",
	}
	if f := ruleFailures(t, both); len(f) != 1 {
		t.Errorf("RedisPassword with RedisPasswordSecretArn: rule failures %q, want one", f)
	}
}
