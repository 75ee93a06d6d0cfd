package samtest

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/pelletier/go-toml/v2"
	"gopkg.in/yaml.v3"
)

// compose is what the tests need of docker-compose.yml.
type compose struct {
	Name     string                    `yaml:"name"`
	Services map[string]any            `yaml:"services"`
	Networks map[string]map[string]any `yaml:"networks"`
}

func loadCompose(tb testing.TB) compose {
	tb.Helper()
	var c compose
	if err := yaml.Unmarshal(readFile(tb, "docker-compose.yml"), &c); err != nil {
		tb.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// networkNames returns the Docker names of the compose networks: the name a network
// sets, else <project>_<key>.
func (c compose) networkNames() []string {
	var names []string
	for key, n := range c.Networks {
		if name, ok := n["name"].(string); ok {
			names = append(names, name)
		} else {
			names = append(names, c.Name+"_"+key)
		}
	}
	return names
}

func TestSamconfig(t *testing.T) {
	var cfg map[string]any
	if err := toml.Unmarshal(readFile(t, "samconfig.toml"), &cfg); err != nil {
		t.Fatalf("samconfig.toml: %v", err)
	}
	if cfg["version"] != 0.1 {
		t.Errorf("version = %v, want 0.1", cfg["version"])
	}
	params := parse(t, nil).Parameters
	networks := loadCompose(t).networkNames()
	for _, envName := range slices.Sorted(maps.Keys(cfg)) {
		if envName == "version" {
			continue
		}
		commands := obj(cfg[envName])
		for _, cmd := range slices.Sorted(maps.Keys(commands)) {
			where := "[" + envName + "." + cmd + ".parameters]"
			p := obj(dig(commands, cmd, "parameters"))
			if p == nil {
				t.Errorf("samconfig.toml: %s.%s has no parameters table", envName, cmd)
				continue
			}
			if f, ok := p["env_vars"].(string); ok {
				if _, err := os.Stat(filepath.Join(root(t), f)); err != nil || f != "events/env.json" {
					t.Errorf("%s env_vars = %q, want events/env.json", where, f)
				}
			}
			if n, ok := p["docker_network"].(string); ok && !slices.Contains(networks, n) {
				t.Errorf("%s docker_network = %q, not a network of docker-compose.yml (%q)", where, n, networks)
			}
			if po, ok := p["parameter_overrides"].(string); ok {
				for _, kv := range strings.Fields(po) {
					k, v, _ := strings.Cut(kv, "=")
					param, ok := params[k]
					switch {
					case !ok:
						t.Errorf("%s parameter_overrides: no parameter %s in template.yaml", where, k)
					case deref(param.NoEcho):
						t.Errorf("%s parameter_overrides sets %s: secrets stay out of samconfig.toml", where, k)
					case !satisfies(t, param, strings.Trim(v, `"'`)):
						t.Errorf("%s parameter_overrides: %s=%s is not allowed", where, k, v)
					}
				}
			}
			if cmd == "deploy" {
				// The template makes IAM roles for the functions.
				if c, _ := p["capabilities"].(string); !strings.Contains(c, "CAPABILITY_IAM") {
					t.Errorf("%s capabilities = %q, want CAPABILITY_IAM", where, c)
				}
				if dig(commands, "global", "parameters", "stack_name") == nil && p["stack_name"] == nil {
					t.Errorf("%s: no stack_name for this environment", where)
				}
			}
		}
	}
}

// TestEnvJSONMatchesCompose checks that events/env.json reaches the Redis of
// docker-compose.yml: its host is a compose service, and its password is the one that
// .env.example gives that Redis.
func TestEnvJSONMatchesCompose(t *testing.T) {
	c := loadCompose(t)
	if _, ok := c.Services["redis"]; !ok {
		t.Fatal("docker-compose.yml has no service redis, the host of REDIS_URL in events/env.json")
	}
	example, err := dotenv.Read(filepath.Join(root(t), ".env.example"))
	if err != nil {
		t.Fatalf(".env.example: %v", err)
	}
	for id, vars := range loadEnvJSON(t) {
		if got, want := vars["REDIS_PASSWORD"], example["REDIS_PASSWORD"]; got != want {
			t.Errorf("%s: REDIS_PASSWORD %q, but .env.example sets %q for the compose Redis", id, got, want)
		}
	}
}
