package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
)

func TestDefaultsByMode(t *testing.T) {
	l, err := config.Parse(map[string]string{}, config.ModeLambda)
	if err != nil {
		t.Fatal(err)
	}
	if l.Redis.PoolSize != 2 || l.Redis.DialTimeout != 500*time.Millisecond || l.Redis.ReadTimeout != 250*time.Millisecond {
		t.Fatalf("lambda defaults: %+v", l.Redis)
	}
	if l.Redis.OpTimeout != time.Second {
		t.Fatalf("OpTimeout = %v, want 2×250ms+500ms", l.Redis.OpTimeout)
	}
	if l.Stage != config.StageDev || l.Cache.KeyPrefix != "store:dev:" || l.Cache.ProductTTL != 10*time.Minute || l.LogLevel != slog.LevelInfo {
		t.Fatalf("defaults: %+v", l)
	}
	h, _ := config.Parse(map[string]string{"REDIS_POOL_SIZE": "5"}, config.ModeHTTP)
	if h.Redis.PoolSize != 5 || h.Redis.ReadTimeout != 500*time.Millisecond || h.Mode != config.ModeHTTP {
		t.Fatalf("http: %+v", h.Redis)
	}
}

func TestBadValuesAreAllNamedWithoutValues(t *testing.T) {
	env := map[string]string{
		"REDIS_URL":           "http://user:hunter2secret@host:1",
		"REDIS_READ_TIMEOUT":  "soon-hunter2secret",
		"REDIS_POOL_SIZE":     "-3",
		"CACHE_KEY_PREFIX":    "store*",
		"CACHE_TTL_JITTER":    "2",
		"LOG_LEVEL":           "loud",
		"CACHE_CLEAR_ENABLED": "maybe",
		"STAGE":               "<b>Prod</b>",
		"PRODUCT_SOURCE_URL":  "ftp://x",
		"LOG_FLUSH_INTERVAL":  "1m",
	}
	_, err := config.Parse(env, config.ModeLambda)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for k := range env {
		if !strings.Contains(msg, k+":") {
			t.Errorf("error does not name %s: %s", k, msg)
		}
	}
	if strings.Contains(msg, "hunter2") || strings.Contains(msg, "<b>") {
		t.Fatalf("error quotes a value: %s", msg)
	}
}

// TestKeyPrefixEndsWithStage: the default prefix is store:<STAGE>:, and a configured
// prefix whose last segment is not the stage stops start-up, so an instance's
// "scope: all" never reaches another stage's keys. The error names the variable and
// quotes neither the prefix nor the stage.
func TestKeyPrefixEndsWithStage(t *testing.T) {
	tests := []struct {
		stage, prefix string
		want          string // "" when refused
	}{
		{want: "store:dev:"},
		{stage: "prod", want: "store:prod:"},
		{stage: "staging", want: "store:staging:"},
		{prefix: "store:dev:", want: "store:dev:"},
		{stage: "prod", prefix: "acme:store:prod:", want: "acme:store:prod:"},
		{prefix: "test:0a1b2c:dev:", want: "test:0a1b2c:dev:"},
		// The old default, the parent of every stage's prefix.
		{prefix: "store:"},
		{stage: "prod", prefix: "store:"},
		// Another stage's prefix.
		{prefix: "store:prod:"},
		{stage: "prod", prefix: "store:dev:"},
		{stage: "prod", prefix: "store:prod:x:"},
		// The stage must be a whole segment.
		{prefix: "store:xdev:"},
		{prefix: "dev:"},
		{stage: "qa-eu", prefix: "store:eu:"},
	}
	for _, tt := range tests {
		t.Run(tt.stage+"/"+tt.prefix, func(t *testing.T) {
			env := map[string]string{}
			if tt.stage != "" {
				env["STAGE"] = tt.stage
			}
			if tt.prefix != "" {
				env["CACHE_KEY_PREFIX"] = tt.prefix
			}
			c, err := config.Parse(env, config.ModeLambda)
			if tt.want != "" {
				if err != nil || c.Cache.KeyPrefix != tt.want {
					t.Fatalf("prefix %q, err %v; want %q", c.Cache.KeyPrefix, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("prefix %q accepted with STAGE %q", c.Cache.KeyPrefix, c.Stage)
			}
			// The whole message is fixed text: it names the variable and quotes no value.
			const want = "config: invalid environment: CACHE_KEY_PREFIX: must end with the stage as its last segment (<name>:<STAGE>:, as the default store:<STAGE>: does), so that no stage's prefix contains another's"
			if err.Error() != want {
				t.Fatalf("error %q, want %q", err, want)
			}
		})
	}
	// A bad STAGE is named once, not again through the prefix derived from it.
	_, err := config.Parse(map[string]string{"STAGE": "Prod West"}, config.ModeLambda)
	if err == nil || !strings.Contains(err.Error(), "STAGE: ") || strings.Contains(err.Error(), "CACHE_KEY_PREFIX") {
		t.Fatalf("bad STAGE: %v", err)
	}
}

func TestRedisURL(t *testing.T) {
	tests := []struct {
		url, user, pass, addr string
		db                    int
		tls                   bool
		bad                   bool
	}{
		{url: "redis://localhost", addr: "localhost:6379"},
		{url: "rediss://u:p@h.example:6380/4", user: "u", pass: "p", addr: "h.example:6380", db: 4, tls: true},
		{url: "redis://:onlypass@10.0.0.1:7000", pass: "onlypass", addr: "10.0.0.1:7000"},
		{url: "redis://[::1]:6379", addr: "[::1]:6379"},
		{url: "redis://h/x", bad: true},
		{url: "redis://h:99999", bad: true},
		{url: "redis://", bad: true},
		{url: "tcp://h:1", bad: true},
		{url: "redis://h:1?foo=bar", bad: true},
		{url: "redis://h?protocol=2&client_name=storeapi", addr: "h:6379"},
		{url: "redis://h?db=5", addr: "h:6379", db: 5},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			e, err := config.Redis{URL: config.Secret(tt.url)}.Endpoint()
			if (err != nil) != tt.bad {
				t.Fatalf("err = %v, bad %v", err, tt.bad)
			}
			if tt.bad {
				return
			}
			if e.Addr != tt.addr || e.Username != tt.user || string(e.Password) != tt.pass || e.DB != tt.db || e.TLS != tt.tls {
				t.Fatalf("endpoint = %+v", e)
			}
		})
	}
	r := config.Redis{URL: "redis://u:urlpass@h:1", Username: "envuser", Password: "envpass", TLS: true}
	e, _ := r.Endpoint()
	if e.Username != "envuser" || e.Password != "envpass" || !e.TLS {
		t.Fatalf("overrides: %+v", e)
	}
	if got := r.Redacted(); got != "rediss://h:1/0" {
		t.Fatalf("Redacted = %q", got)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c, err := config.Parse(map[string]string{
		"REDIS_URL": "redis://:s3cr3t-url@h:1", "REDIS_PASSWORD": "s3cr3t-pw", "CACHE_CLEAR_TOKEN": "s3cr3t-tok",
	}, config.ModeLambda)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cfg", "config", c, "pw", c.Redis.Password)
	j, _ := json.Marshal(c)
	outs := []string{
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %q %x", c, c, c, c.Redis.Password, c.Redis.Password, c.Redis.Password),
		string(j), logged.String(), c.Redis.Password.String(),
	}
	for _, o := range outs {
		if strings.Contains(o, "s3cr3t") || strings.Contains(o, "73336372") {
			t.Fatalf("secret printed: %s", o)
		}
	}
	if string(c.Redis.Password) != "s3cr3t-pw" {
		t.Fatal("the value itself is lost")
	}
}

func TestVariablesAreUniqueAndComplete(t *testing.T) {
	vars := config.Variables()
	seen := map[string]bool{}
	for _, v := range vars {
		if seen[v] {
			t.Fatalf("%s twice", v)
		}
		seen[v] = true
	}
	tags := 0
	var count func(reflect.Type)
	count = func(t reflect.Type) {
		for f := range t.Fields() {
			if tag := f.Tag.Get("env"); tag != "" && tag != "-" {
				tags++
			} else if f.Type.Kind() == reflect.Struct {
				count(f.Type)
			}
		}
	}
	count(reflect.TypeFor[config.Config]())
	if tags != len(vars) {
		t.Fatalf("%d env tags but %d variables: two fields share a Go name", tags, len(vars))
	}
	for _, want := range []string{"REDIS_URL", "REDIS_PASSWORD", "CACHE_KEY_PREFIX", "PRODUCT_CACHE_TTL", "CACHE_CLEAR_TOKEN", "STAGE", "LOG_LEVEL", "REDIS_CLUSTER", "REDIS_TLS_CA_FILE"} {
		if !seen[want] {
			t.Errorf("%s missing from Variables", want)
		}
	}
}

func TestProdRefusesInsecureTLS(t *testing.T) {
	_, err := config.Parse(map[string]string{"STAGE": "prod", "REDIS_TLS_INSECURE_SKIP_VERIFY": "true"}, config.ModeLambda)
	if err == nil || !strings.Contains(err.Error(), "REDIS_TLS_INSECURE_SKIP_VERIFY") {
		t.Fatalf("err = %v", err)
	}
}

func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Variables() {
		if !strings.Contains(string(readme), "| `"+v+"` |") {
			t.Errorf("README's configuration table lacks %s", v)
		}
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := config.Parse(map[string]string{
		"REDIS_URL":              "redis://:url-pw@h:1",
		"REDIS_PASSWORD_FILE":    write("pw", "s3cr3t pw\n"),
		"CACHE_CLEAR_TOKEN_FILE": write("tok", "tok3n\r\n"),
		"HEALTH_TOKEN_FILE":      write("health", "h\n\n"),
	}, config.ModeHTTP)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := c.Redis.Endpoint()
	if string(c.Redis.Password) != "s3cr3t pw" || string(e.Password) != "s3cr3t pw" {
		t.Errorf("password %q (endpoint %q): want the file's, without the line break, over the URL's", c.Redis.Password, e.Password)
	}
	if string(c.CacheClearToken) != "tok3n" || string(c.HealthToken) != "h\n" {
		t.Errorf("tokens %q, %q: want one trailing line break dropped", c.CacheClearToken, c.HealthToken)
	}

	big := write("big", strings.Repeat("x", 64<<10+1))
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"REDIS_PASSWORD_FILE": filepath.Join(dir, "missing")}, []string{"REDIS_PASSWORD_FILE: file not readable"}},
		{map[string]string{"REDIS_PASSWORD_FILE": dir}, []string{"REDIS_PASSWORD_FILE: file not readable"}},
		{map[string]string{"HEALTH_TOKEN_FILE": write("empty", "\n")}, []string{"HEALTH_TOKEN_FILE: file is empty"}},
		{map[string]string{"CACHE_CLEAR_TOKEN_FILE": big}, []string{"CACHE_CLEAR_TOKEN_FILE: file larger than 64 KiB"}},
		{map[string]string{"REDIS_PASSWORD_FILE": write("pw2", "hunter2secret"), "REDIS_PASSWORD": "hunter2other"},
			[]string{"REDIS_PASSWORD_FILE: cannot be combined with REDIS_PASSWORD"}},
		{map[string]string{"REDIS_PASSWORD_FILE": write("pw3", "hunter2secret"), "REDIS_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis-AbCdEf"},
			[]string{"REDIS_PASSWORD_FILE: cannot be combined with REDIS_PASSWORD_SECRET_ARN"}},
		{map[string]string{"CACHE_CLEAR_TOKEN_FILE": write("t2", "hunter2secret"), "CACHE_CLEAR_TOKEN": "hunter2tok"},
			[]string{"CACHE_CLEAR_TOKEN_FILE: cannot be combined with CACHE_CLEAR_TOKEN"}},
	} {
		_, err := config.Parse(tc.env, config.ModeHTTP)
		if err == nil {
			t.Errorf("%v: no error", tc.env)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %v; want %q", tc.env, err, w)
			}
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "xxxx") {
			t.Errorf("the error quotes a secret: %v", err)
		}
	}
}

// TestRedisURLErrors checks that REDIS_URL is refused with a fixed sentence that says
// what is wrong and never quotes the URL or any part of it: go-redis's own errors may,
// so they are never passed on.
func TestRedisURLErrors(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"not a URL", "redis://hunter2:hunter2pw@h:1/%zz", "not a valid URL"},
		{"bad scheme", "http://user:hunter2pw@h:1", "want a redis:// or rediss:// URL"},
		{"unix socket", "unix:///tmp/redis.sock?hunter2pw", "want a redis:// or rediss:// URL"},
		{"no scheme", "hunter2pw@h", "want a redis:// or rediss:// URL"},
		{"no host", "redis://user:hunter2pw@:6379", "no host"},
		{"opaque", "redis:hunter2pw", "no host"},
		{"port too big", "redis://user:hunter2pw@h:99999", "bad port"},
		{"port zero", "redis://user:hunter2pw@h:0", "bad port"},
		{"port not a number", "redis://user:hunter2pw@h:port", "not a valid URL"},
		{"db not a number", "redis://user:hunter2pw@h:1/hunter2db", "the path must be a database number"},
		{"db overflows int", "redis://user:hunter2pw@h:1/99999999999999999999", "the path must be a database number"},
		{"two path segments", "redis://user:hunter2pw@h:1/1/2", "the path must be a database number"},
		{"db negative", "redis://user:hunter2pw@h:1/-1", "database number out of range"},
		{"db over 2^31-1", "redis://user:hunter2pw@h:1/2147483648", "database number out of range"},
		{"db option negative", "redis://user:hunter2pw@h:1?db=-2", "database number out of range"},
		{"db option not a number", "redis://user:hunter2pw@h:1?db=hunter2", "the db and protocol options must be whole numbers"},
		{"protocol not a number", "redis://user:hunter2pw@h:1?protocol=resp3", "the db and protocol options must be whole numbers"},
		{"protocol 4", "redis://user:hunter2pw@h:1?protocol=4", "the protocol option must be 2 or 3"},
		{"go-redis option with a variable", "redis://user:hunter2pw@h:1?pool_size=100", "the pool_size option is not supported; set REDIS_POOL_SIZE instead"},
		{"timeout option", "redis://user:hunter2pw@h:1?dial_timeout=5s", "the dial_timeout option is not supported; set REDIS_DIAL_TIMEOUT instead"},
		{"skip_verify escapes the prod guard", "rediss://user:hunter2pw@h:1?skip_verify=true", "the skip_verify option is not supported; set REDIS_TLS_INSECURE_SKIP_VERIFY instead"},
		{"go-redis option without one", "redis://user:hunter2pw@h:1?pool_fifo=true", "unsupported query option"},
		{"unknown option is not named", "redis://h:1?hunter2pw=1", "unsupported query option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Redis{URL: config.Secret(tt.url)}.Endpoint()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), tt.url) {
				t.Fatalf("the error quotes the URL: %v", err)
			}
			_, err = config.Parse(map[string]string{"REDIS_URL": tt.url}, config.ModeLambda)
			if err == nil || !strings.Contains(err.Error(), "REDIS_URL: "+tt.want) {
				t.Fatalf("Parse: %v, want REDIS_URL named", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("Parse's error quotes the URL: %v", err)
			}
		})
	}
}

// TestRedisURLOptions checks the query options that REDIS_URL honours, and that the
// environment still overrides the URL's credentials and turns on TLS.
func TestRedisURLOptions(t *testing.T) {
	tests := []struct {
		name string
		r    config.Redis
		want config.Endpoint
	}{
		{"protocol and client_name", config.Redis{URL: "redis://h:1/3?protocol=2&client_name=storeapi-getproduct"},
			config.Endpoint{Addr: "h:1", Host: "h", DB: 3, Protocol: 2, ClientName: "storeapi-getproduct"}},
		{"protocol 3", config.Redis{URL: "rediss://h?protocol=3"},
			config.Endpoint{Addr: "h:6379", Host: "h", TLS: true, Protocol: 3}},
		{"db option over the path, as go-redis does", config.Redis{URL: "redis://h/1?db=2"},
			config.Endpoint{Addr: "h:6379", Host: "h", DB: 2}},
		{"IPv6 host", config.Redis{URL: "rediss://[fd00::1]:6380/0"},
			config.Endpoint{Addr: "[fd00::1]:6380", Host: "fd00::1", TLS: true}},
		{"escaped password", config.Redis{URL: "redis://app:p%40ss%2Fw0rd@h:1"},
			config.Endpoint{Addr: "h:1", Host: "h", Username: "app", Password: "p@ss/w0rd"}},
		{"REDIS_PASSWORD over the URL's", config.Redis{URL: "rediss://app:urlpass@h:1", Password: "envpass"},
			config.Endpoint{Addr: "h:1", Host: "h", Username: "app", Password: "envpass", TLS: true}},
		{"REDIS_USERNAME and REDIS_TLS", config.Redis{URL: "redis://app@h:1", Username: "envuser", TLS: true},
			config.Endpoint{Addr: "h:1", Host: "h", Username: "envuser", TLS: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.Endpoint()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Endpoint = %+v (password %q), want %+v (password %q)", got, string(got.Password), tt.want, string(tt.want.Password))
			}
		})
	}
}
