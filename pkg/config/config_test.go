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
	if l.Stage != config.StageDev || l.Cache.KeyPrefix != "store:" || l.Cache.ProductTTL != 10*time.Minute || l.LogLevel != slog.LevelInfo {
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
