package composetest

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/template"
	"gopkg.in/yaml.v3"

	"github.com/acmestore/storeapi/pkg/config"
)

// envSetting is what the application reads: an env tag of config.Config.
type envSetting struct {
	def    string
	hasDef bool
}

// configSettings walks config.Config for its env tags, independently of the config
// package's own bookkeeping.
func configSettings() map[string]envSetting {
	out := map[string]envSetting{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			tag := f.Tag.Get("env")
			switch {
			case tag == "-":
			case tag != "":
				def, ok := f.Tag.Lookup("envDefault")
				out[strings.Split(tag, ",")[0]] = envSetting{def, ok}
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[config.Config]())
	return out
}

// composeVariables returns the variables docker-compose.yml interpolates.
func composeVariables(tb testing.TB) map[string]template.Variable {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(tb), composeFile))
	if err != nil {
		tb.Fatal(err)
	}
	var dict map[string]any
	if err := yaml.Unmarshal(b, &dict); err != nil {
		tb.Fatal(err)
	}
	return template.ExtractVariables(dict, template.DefaultPattern)
}

var commented = regexp.MustCompile(`^#\s*([A-Z][A-Z0-9_]*)=(.*)$`)

type envExample struct {
	active    map[string]string // as compose's own .env parser reads them
	commented map[string]string // "# NAME=value" lines: documented defaults
	lines     []string
}

func readEnvExample(tb testing.TB) envExample {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(tb), ".env.example"))
	if err != nil {
		tb.Fatal(err)
	}
	active, err := dotenv.Parse(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf(".env.example: %v", err)
	}
	e := envExample{active: active, commented: map[string]string{}, lines: strings.Split(string(b), "\n")}
	for _, l := range e.lines {
		if m := commented.FindStringSubmatch(l); m != nil {
			e.commented[m[1]] = m[2]
		}
	}
	return e
}

// line returns the index of the line that sets or documents name, or -1.
func (e envExample) line(name string) int {
	return slices.IndexFunc(e.lines, func(l string) bool {
		return strings.HasPrefix(l, name+"=") || commented.FindStringSubmatch(l) != nil && commented.FindStringSubmatch(l)[1] == name
	})
}

func TestEnvExample(t *testing.T) {
	e := readEnvExample(t)
	cfg := configSettings()
	vars := composeVariables(t)

	t.Run("compose variables", func(t *testing.T) {
		for name, v := range vars {
			if _, ok := e.active[name]; !ok {
				t.Errorf("compose reads %s, but .env.example does not set it", name)
			}
			if v.DefaultValue != "" && e.active[name] != v.DefaultValue {
				t.Errorf("%s: .env.example says %q, compose's default is %q", name, e.active[name], v.DefaultValue)
			}
		}
		// A copy of .env.example is all compose needs.
		if _, err := loadProject(t, e.active, "app"); err != nil {
			t.Errorf("compose does not load with .env.example as .env: %v", err)
		}
	})

	t.Run("application variables", func(t *testing.T) {
		for name, s := range cfg {
			v, isCommented := e.commented[name]
			_, isActive := e.active[name]
			if !isCommented && !isActive {
				t.Errorf("the application reads %s, but .env.example does not list it", name)
				continue
			}
			if isCommented && s.hasDef && v != s.def {
				t.Errorf("%s: .env.example shows %q, the default is %q", name, v, s.def)
			}
		}
		// Every documented value, uncommented, is a valid configuration.
		all := map[string]string{}
		for k, v := range e.commented {
			all[k] = v
		}
		for k, v := range e.active {
			all[k] = v
		}
		if _, err := config.Parse(all, config.ModeHTTP); err != nil {
			t.Errorf("the values in .env.example, all uncommented, are not a valid configuration: %v", err)
		}
	})

	t.Run("nothing else", func(t *testing.T) {
		for _, m := range []map[string]string{e.active, e.commented} {
			for name := range m {
				_, app := cfg[name]
				_, compose := vars[name]
				if !app && !compose {
					t.Errorf(".env.example sets %s, which neither compose nor the application reads", name)
				}
			}
		}
	})

	t.Run("comments", func(t *testing.T) {
		names := map[string]bool{}
		for k := range e.active {
			names[k] = true
		}
		for k := range e.commented {
			names[k] = true
		}
		for name := range names {
			i := e.line(name)
			if i < 1 || !strings.HasPrefix(e.lines[i-1], "#") || commented.MatchString(e.lines[i-1]) {
				t.Errorf(".env.example: %s has no comment line of its own above it", name)
			}
		}
	})

	t.Run("no real secrets", func(t *testing.T) {
		secret := regexp.MustCompile(`PASSWORD|TOKEN|SECRET|ENCRYPTION_KEY`)
		for _, m := range []map[string]string{e.active, e.commented} {
			for name, v := range m {
				if secret.MatchString(name) && v != "" && !strings.Contains(v, "change-me") {
					t.Errorf(".env.example: %s has a value that is not a change-me placeholder", name)
				}
			}
		}
	})
}
