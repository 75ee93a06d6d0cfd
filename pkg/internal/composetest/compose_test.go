package composetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/acmestore/storeapi/pkg/config"
)

const (
	composeFile = "docker-compose.yml"
	networkName = "storeapi"
	// redisConfInContainer is where the compose file mounts redis/redis.conf.
	redisConfInContainer = "/usr/local/etc/redis/redis.conf"
)

// repoRoot returns the module's root directory, where the compose file lives.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/acmestore/storeapi\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("composetest: go.mod of github.com/acmestore/storeapi not found above the working directory")
		}
		dir = parent
	}
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// stackEnv is the environment compose would read from .env: fresh random secrets for
// each test, which no message ever prints.
func stackEnv(tb testing.TB) map[string]string {
	tb.Helper()
	return map[string]string{
		"REDIS_PASSWORD":    "pw-" + randomHex(tb, 12),
		"RI_ENCRYPTION_KEY": randomHex(tb, 16),
		"POSTGRES_PASSWORD": "pg-" + randomHex(tb, 12),
	}
}

// loadProject parses the compose file as docker compose would, with env as the only
// source of variables and the given profiles active. Neither the process environment
// nor a developer's .env is read, for interpolation or as the app's env_file: a
// service's Environment is what the compose file itself sets.
func loadProject(tb testing.TB, env map[string]string, profiles ...string) (*types.Project, error) {
	tb.Helper()
	root := repoRoot(tb)
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, composeFile)},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(list),
		cli.WithProfiles(profiles),
		cli.WithoutEnvironmentResolution,
	)
	if err != nil {
		return nil, err
	}
	return cli.ProjectFromOptions(context.Background(), opts)
}

func mustLoad(tb testing.TB, env map[string]string, profiles ...string) *types.Project {
	tb.Helper()
	p, err := loadProject(tb, env, profiles...)
	if err != nil {
		tb.Fatalf("load %s: %v", composeFile, err)
	}
	return p
}

func service(tb testing.TB, p *types.Project, name string) types.ServiceConfig {
	tb.Helper()
	s, ok := p.Services[name]
	if !ok {
		tb.Fatalf("%s: no service %q among %v", composeFile, name, p.ServiceNames())
	}
	return s
}

func envValue(s types.ServiceConfig, key string) (string, bool) {
	v, ok := s.Environment[key]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

var exactVersion = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+(-[a-z0-9][a-z0-9.]*)?$`)

// exactPostgresVersion is an exact release of PostgreSQL 10 or later, major.minor.
var exactPostgresVersion = regexp.MustCompile(`^[1-9][0-9]\.[0-9]+(-[a-z0-9][a-z0-9.]*)?$`)

// imageTag splits an image reference into repository, tag and digest.
func imageTag(ref string) (repo, tag, digest string) {
	repo, digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

func TestComposeImagesArePinned(t *testing.T) {
	p := mustLoad(t, stackEnv(t), "app")
	want := map[string]string{"redis": "redis", "redisinsight": "redis/redisinsight", "postgres": "postgres"}
	for name, s := range p.Services {
		if s.Build != nil && s.Image == "" {
			continue // built here from the Dockerfile, whose images TestDockerfile checks
		}
		repo, tag, digest := imageTag(s.Image)
		exact := exactVersion.MatchString(tag)
		if repo == "postgres" {
			// Since PostgreSQL 10 a release is major.minor: 15.20 is one exact release.
			exact = exactPostgresVersion.MatchString(tag)
		}
		if !exact && digest == "" {
			t.Errorf("service %s: image %q is not pinned to an exact version (want e.g. 7.4.6-alpine, never latest or a bare major)", name, s.Image)
		}
		if w, ok := want[name]; ok && repo != w {
			t.Errorf("service %s: image %q, want the official %s image", name, s.Image, w)
		}
	}
	_, tag, _ := imageTag(service(t, p, "redisinsight").Image)
	var major, minor int
	if parts := strings.SplitN(tag, ".", 3); len(parts) == 3 {
		major, _ = strconv.Atoi(parts[0])
		minor, _ = strconv.Atoi(parts[1])
	}
	if major < 2 || (major == 2 && minor < 68) {
		t.Errorf("redisinsight: tag %q, want 2.68 or later (environment-configured connection, RI_ variables)", tag)
	}
}

func TestComposePortsOnLoopbackOnly(t *testing.T) {
	p := mustLoad(t, stackEnv(t), "app")
	for _, name := range []string{"redis", "redisinsight", "app", "postgres"} {
		s := service(t, p, name)
		if len(s.Ports) == 0 {
			t.Errorf("service %s publishes no port", name)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("service %s: port %d published on %q, want 127.0.0.1 only", name, port.Target, port.HostIP)
			}
			if port.Published == "" {
				t.Errorf("service %s: port %d has no fixed host port", name, port.Target)
			}
		}
	}
	defaults := map[string]string{"redis": "6379", "redisinsight": "5540", "app": "8080", "postgres": "5432"}
	for name, want := range defaults {
		if got := service(t, p, name).Ports[0].Published; got != want {
			t.Errorf("service %s: host port %s by default, want %s", name, got, want)
		}
	}
}

func TestComposeNetworkHasAFixedName(t *testing.T) {
	p := mustLoad(t, stackEnv(t), "app")
	n, ok := p.Networks[networkName]
	if !ok {
		t.Fatalf("no network %q (sam local start-api --docker-network %s needs it)", networkName, networkName)
	}
	if n.Name != networkName {
		t.Errorf("network %q is created as %q, want the fixed name %q", networkName, n.Name, networkName)
	}
	if n.External {
		t.Errorf("network %q is external: compose must create it", networkName)
	}
	for name, s := range p.Services {
		if _, ok := s.Networks[networkName]; !ok {
			t.Errorf("service %s is not on the %s network", name, networkName)
		}
	}
}

func TestComposeRedis(t *testing.T) {
	env := stackEnv(t)
	p := mustLoad(t, env)
	s := service(t, p, "redis")

	var data *types.ServiceVolumeConfig
	for i, v := range s.Volumes {
		if v.Target == "/data" {
			data = &s.Volumes[i]
		}
	}
	switch {
	case data == nil:
		t.Error("redis: nothing mounted at /data")
	case data.Type != types.VolumeTypeVolume:
		t.Errorf("redis: /data is a %s mount, want a named volume", data.Type)
	default:
		if _, ok := p.Volumes[data.Source]; !ok {
			t.Errorf("redis: volume %q at /data is not declared at the top level", data.Source)
		}
	}

	if i := slices.Index(s.Command, "--dir"); i < 0 || i+1 >= len(s.Command) || s.Command[i+1] != "/data" {
		t.Error("redis: the command does not put the data (--dir) in /data, the volume")
	}
	conf := redisConf(t, p)
	if got := confValue(conf, "dir"); got != "" {
		t.Errorf("redis.conf sets dir %q; the command line sets it, to the volume", got)
	}
	for _, want := range [][2]string{
		{"appendonly", "yes"}, {"appendfsync", "everysec"},
		{"maxmemory", "256mb"}, {"maxmemory-policy", "allkeys-lru"},
		{"port", "6379"},
	} {
		if got := confValue(conf, want[0]); got != want[1] {
			t.Errorf("redis.conf: %s %q, want %q", want[0], got, want[1])
		}
	}
	if len(confValues(conf, "save")) == 0 {
		t.Error("redis.conf: no save lines: RDB snapshots are off")
	}
	if confValue(conf, "requirepass") != "" {
		t.Error("redis.conf holds a password: it belongs in .env")
	}

	if i := slices.Index(s.Command, "--requirepass"); i < 0 || i+1 >= len(s.Command) || s.Command[i+1] != env["REDIS_PASSWORD"] {
		t.Error("redis: the command does not set requirepass to REDIS_PASSWORD")
	}
	if v, _ := envValue(s, "REDISCLI_AUTH"); v != env["REDIS_PASSWORD"] {
		t.Error("redis: REDISCLI_AUTH is not REDIS_PASSWORD, so redis-cli (the healthcheck) cannot authenticate")
	}

	hc := s.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) < 2 {
		t.Fatal("redis: no healthcheck")
	}
	if hc.Test[0] != "CMD-SHELL" {
		t.Errorf("redis: healthcheck is %s, want CMD-SHELL (it pipes into grep)", hc.Test[0])
	}
	cmd := strings.Join(hc.Test[1:], " ")
	if !strings.Contains(cmd, "PONG") {
		t.Error("redis: the healthcheck does not look for PONG; redis-cli ping exits 0 on NOAUTH too")
	}
	for _, flag := range []string{"-a", "--pass", "--user", "--askpass", "-u"} {
		if slices.Contains(strings.Fields(cmd), flag) {
			t.Errorf("redis: the healthcheck passes %s to redis-cli; credentials belong in REDISCLI_AUTH", flag)
		}
	}
	if strings.Contains(cmd, env["REDIS_PASSWORD"]) {
		t.Error("redis: the healthcheck's command line contains the password")
	}
	if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
		t.Error("redis: healthcheck without interval, timeout or retries")
	}
}

func TestComposeRedisInsight(t *testing.T) {
	env := stackEnv(t)
	p := mustLoad(t, env)
	s := service(t, p, "redisinsight")
	redis := service(t, p, "redis")

	host, _ := envValue(s, "RI_REDIS_HOST")
	if _, ok := p.Services[host]; !ok || host != "redis" {
		t.Errorf("redisinsight: RI_REDIS_HOST %q, want the redis service's name", host)
	}
	port, _ := envValue(s, "RI_REDIS_PORT")
	if len(redis.Ports) == 0 || port != strconv.Itoa(int(redis.Ports[0].Target)) {
		t.Errorf("redisinsight: RI_REDIS_PORT %q, want the redis container's port", port)
	}
	if port != confValue(redisConf(t, p), "port") {
		t.Errorf("redisinsight: RI_REDIS_PORT %q is not the port in redis.conf", port)
	}
	if v, _ := envValue(s, "RI_REDIS_PASSWORD"); v != env["REDIS_PASSWORD"] {
		t.Error("redisinsight: RI_REDIS_PASSWORD is not REDIS_PASSWORD")
	}
	if v, _ := envValue(s, "RI_ENCRYPTION_KEY"); v != env["RI_ENCRYPTION_KEY"] {
		t.Error("redisinsight: RI_ENCRYPTION_KEY does not come from the environment")
	}
	if v, _ := envValue(s, "RI_REDIS_ALIAS"); v == "" {
		t.Error("redisinsight: no RI_REDIS_ALIAS")
	}
	checkDependsOnHealthyRedis(t, s)
	var vol bool
	for _, v := range s.Volumes {
		vol = vol || (v.Type == types.VolumeTypeVolume && v.Target == "/data" && v.Source != "redis-data")
	}
	if !vol {
		t.Error("redisinsight: no named volume of its own at /data")
	}
	if len(s.Ports) != 1 || s.Ports[0].Target != 5540 {
		t.Errorf("redisinsight: ports %+v, want 5540 only", s.Ports)
	}
}

func checkDependsOnHealthyRedis(tb testing.TB, s types.ServiceConfig) {
	tb.Helper()
	d, ok := s.DependsOn["redis"]
	if !ok || d.Condition != types.ServiceConditionHealthy {
		tb.Errorf("%s: does not wait for redis to be healthy (depends_on condition %q)", s.Name, d.Condition)
	}
}

func TestComposeApp(t *testing.T) {
	env := stackEnv(t)

	p := mustLoad(t, env)
	if _, ok := p.Services["app"]; ok {
		t.Error("app runs without --profile app; a plain docker compose up must start only Redis and RedisInsight")
	}
	if _, ok := p.DisabledServices["app"]; !ok {
		t.Error("no app service behind a profile")
	}

	p = mustLoad(t, env, "app")
	s := service(t, p, "app")
	if !slices.Equal(s.Profiles, []string{"app"}) {
		t.Errorf("app: profiles %v, want [app]", s.Profiles)
	}
	checkDependsOnHealthyRedis(t, s)
	if s.Build == nil {
		t.Fatal("app: not built from the Dockerfile")
	}
	root := repoRoot(t)
	if s.Build.Context != root || s.Build.Dockerfile != "Dockerfile" {
		t.Errorf("app: build context %q, Dockerfile %q; want the repository root and its Dockerfile", s.Build.Context, s.Build.Dockerfile)
	}
	if !slices.Contains(dockerfileStages(t), s.Build.Target) {
		t.Errorf("app: build target %q is not a stage of the Dockerfile", s.Build.Target)
	}
	if v := s.Build.Args["TARGET"]; v == nil || *v != "./scripts/localapi" {
		t.Error("app: build arg TARGET is not ./scripts/localapi (the program that serves all three routes)")
	}
	if len(s.EnvFiles) != 1 || filepath.Base(s.EnvFiles[0].Path) != ".env" || bool(s.EnvFiles[0].Required) {
		t.Errorf("app: env_file %+v, want the optional .env (the application's settings)", s.EnvFiles)
	}
	if !slices.Contains(s.Command, "-embedded=false") {
		t.Errorf("app: command %v does not pass -embedded=false", s.Command)
	}

	u, err := url.Parse(derefEnv(s, "REDIS_URL"))
	redis := service(t, p, "redis")
	if err != nil || u.Scheme != "redis" || u.Hostname() != redis.Name || u.Port() != strconv.Itoa(int(redis.Ports[0].Target)) || u.User != nil {
		t.Errorf("app: REDIS_URL %q, want redis://redis:6379 without credentials", derefEnv(s, "REDIS_URL"))
	}
	if derefEnv(s, "REDIS_PASSWORD") != env["REDIS_PASSWORD"] {
		t.Error("app: REDIS_PASSWORD is not the stack's REDIS_PASSWORD")
	}
	if derefEnv(s, "STAGE") != "dev" {
		t.Errorf("app: STAGE %q, want dev", derefEnv(s, "STAGE"))
	}
	if len(s.Ports) != 1 || derefEnv(s, "PORT") != strconv.Itoa(int(s.Ports[0].Target)) {
		t.Errorf("app: PORT %q is not the published container port", derefEnv(s, "PORT"))
	}

	// What compose hands the program must be a valid configuration for it.
	environ := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			environ[k] = *v
		}
	}
	if _, err := config.Parse(environ, config.ModeHTTP); err != nil {
		t.Errorf("app: the environment compose gives it is not a valid configuration: %v", err)
	}
}

func derefEnv(s types.ServiceConfig, key string) string {
	v, _ := envValue(s, key)
	return v
}

func TestComposeRefusesToStartWithoutSecrets(t *testing.T) {
	for _, missing := range []string{"REDIS_PASSWORD", "RI_ENCRYPTION_KEY", "POSTGRES_PASSWORD"} {
		t.Run(missing, func(t *testing.T) {
			env := stackEnv(t)
			delete(env, missing)
			_, err := loadProject(t, env)
			if err == nil {
				t.Fatalf("loaded without %s; compose must refuse to start (${%s:?...})", missing, missing)
			}
			if !strings.Contains(err.Error(), missing) {
				t.Errorf("the error does not name %s", missing)
			}
			for k, v := range env {
				if strings.Contains(err.Error(), v) {
					t.Errorf("the error shows the value of %s", k)
				}
			}
		})
	}
}

// TestSAMUsesTheComposeNetwork checks the other end of the network contract: the SAM
// CLI defaults in samconfig.toml attach the function containers to the compose network,
// and events/env.json points them at the redis service.
func TestSAMUsesTheComposeNetwork(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "samconfig.toml"))
	if errors.Is(err, os.ErrNotExist) {
		t.Log("no samconfig.toml: sam local needs --docker-network " + networkName)
		return
	} else if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*docker_network\s*=\s*"([^"]*)"`).FindAllStringSubmatch(string(b), -1) {
		if m[1] != networkName {
			t.Errorf("samconfig.toml: docker_network = %q, but the compose network is named %q", m[1], networkName)
		}
	}

	b, err = os.ReadFile(filepath.Join(root, "events", "env.json"))
	if errors.Is(err, os.ErrNotExist) {
		return
	} else if err != nil {
		t.Fatal(err)
	}
	var fns map[string]map[string]string
	if err := json.Unmarshal(b, &fns); err != nil {
		t.Fatalf("events/env.json: %v", err)
	}
	for fn, env := range fns {
		if u, ok := env["REDIS_URL"]; ok && u != "redis://redis:6379" {
			t.Errorf("events/env.json: %s has REDIS_URL %q; from SAM's containers the compose Redis is redis://redis:6379", fn, u)
		}
	}
}
