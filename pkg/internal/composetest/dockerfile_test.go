package composetest

import (
	"context"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/internal/testbin"
	"gopkg.in/yaml.v3"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd   string // upper case: FROM, RUN, ...
	Args  string
	Stage string // the stage it belongs to ("" before the first FROM)
	Line  int
}

func dockerfile(tb testing.TB) []instruction {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(tb), "Dockerfile"))
	if err != nil {
		tb.Fatal(err)
	}
	var out []instruction
	var stage string
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			stage = ""
			if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
				stage = f[len(f)-1]
			}
		}
		in.Stage = stage
		out = append(out, in)
		cur.Reset()
	}
	return out
}

func dockerfileStages(tb testing.TB) []string {
	tb.Helper()
	var stages []string
	for _, in := range dockerfile(tb) {
		if in.Cmd == "FROM" {
			stages = append(stages, in.Stage)
		}
	}
	return stages
}

// fromImage returns the image of a FROM instruction, without --platform.
func fromImage(args string) string {
	for _, f := range strings.Fields(args) {
		if !strings.HasPrefix(f, "--") {
			return f
		}
	}
	return ""
}

// envOf returns the ENV settings of one stage (key=value form).
func envOf(ins []instruction, stage string) map[string]string {
	env := map[string]string{}
	for _, in := range ins {
		if in.Cmd == "ENV" && in.Stage == stage {
			for _, kv := range strings.Fields(in.Args) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = v
				}
			}
		}
	}
	return env
}

func TestDockerfile(t *testing.T) {
	ins := dockerfile(t)
	stages := dockerfileStages(t)
	for _, want := range []string{"build", "app", "openfaas"} {
		if !slices.Contains(stages, want) {
			t.Errorf("no stage %q among %v", want, stages)
		}
	}
	if stages[len(stages)-1] != "openfaas" {
		t.Errorf("the last (default) stage is %q; faas-cli builds the default stage, so it must be openfaas", stages[len(stages)-1])
	}

	for _, in := range ins {
		if in.Cmd != "FROM" {
			continue
		}
		img := fromImage(in.Args)
		if slices.Contains(stages, img) {
			continue // FROM an earlier stage
		}
		_, tag, digest := imageTag(img)
		if !exactVersion.MatchString(tag) && digest == "" {
			t.Errorf("Dockerfile:%d: %s is not pinned to an exact version or digest", in.Line, img)
		}
		switch in.Stage {
		case "build":
			if !strings.HasPrefix(img, "golang:1.26.") {
				t.Errorf("Dockerfile:%d: build stage from %s, want golang:1.26.x", in.Line, img)
			}
		case "app":
			if !strings.HasPrefix(img, "gcr.io/distroless/static") || !strings.Contains(img, ":nonroot@sha256:") {
				t.Errorf("Dockerfile:%d: runtime stage from %s, want distroless static nonroot pinned by digest", in.Line, img)
			}
		}
	}

	var target, build bool
	for _, in := range ins {
		switch {
		case in.Cmd == "ARG" && in.Args == "TARGET=./scripts/localapi":
			target = in.Stage == "build"
		case in.Cmd == "RUN" && strings.Contains(in.Args, "go build"):
			build = true
			for _, part := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "-tags lambda.norpc", "-o /out/app", "${TARGET}"} {
				if !strings.Contains(in.Args, part) {
					t.Errorf("Dockerfile:%d: the go build line lacks %s", in.Line, part)
				}
			}
		case in.Cmd == "USER" && in.Stage == "app":
			if !strings.HasPrefix(in.Args, "nonroot") && !strings.HasPrefix(in.Args, "65532") {
				t.Errorf("Dockerfile:%d: app runs as %s, want nonroot", in.Line, in.Args)
			}
		}
	}
	if !target {
		t.Error("no ARG TARGET=./scripts/localapi in the build stage")
	}
	if !build {
		t.Error("no RUN ... go build line")
	}

	entry := map[string]string{}
	for _, in := range ins {
		if in.Cmd == "ENTRYPOINT" {
			entry[in.Stage] = in.Args
		}
	}
	if entry["app"] != `["/app"]` || entry["openfaas"] != `["/fwatchdog"]` {
		t.Errorf("entrypoints %v; want /app for app and /fwatchdog for openfaas", entry)
	}
}

// TestDockerfileBuildLine runs the Dockerfile's own go build line (its RUN instruction
// without the cache mounts, in sh as RUN would) on this machine, for every program the
// image can be built for that exists yet, and checks the binaries are what the
// distroless static image needs.
//
// It builds with CI set. Elsewhere it checks, with go list and the line's settings,
// that no function links the embedded Redis, and builds nothing: a first build with
// the line's settings (no cgo, -trimpath) compiles the standard library and every
// dependency once more, about 90 s of CPU on the 2-core development VM, which a fresh
// `go test ./...` cannot afford in its two minutes. TestDockerfile checks the line's
// flags everywhere.
func TestDockerfileBuildLine(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	var line string
	for _, in := range dockerfile(t) {
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
			line = in.Args
		}
	}
	if line == "" {
		t.Fatal("no go build line in the Dockerfile")
	}
	f := strings.Fields(line)
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		f = f[1:] // --mount=type=cache,... are BuildKit's, not the shell's
	}
	script := strings.Join(f, " ")
	out := t.TempDir()
	if !strings.Contains(script, "-o /out/app") {
		t.Fatal("the go build line does not write /out/app")
	}
	// One go build for all programs: -o to a directory names each binary after its
	// package directory.
	script = strings.Replace(script, "-o /out/app", "-o "+out+"/", 1)

	targets := []string{}
	if hasGoFiles(filepath.Join(root, "scripts", "localapi")) {
		targets = append(targets, "./scripts/localapi")
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "functions", "*"))
	for _, d := range dirs {
		if hasGoFiles(d) {
			targets = append(targets, "./functions/"+filepath.Base(d))
		}
	}
	if len(targets) == 0 {
		t.Fatal("none of ./scripts/localapi and ./functions/* exists yet: the Dockerfile has nothing to build")
	}

	if !redistest.InCI() {
		t.Log("CI is not set: checking what the functions link, without building them (see the doc)")
		for _, target := range targets {
			if !strings.HasPrefix(target, "./functions/") {
				continue
			}
			cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", "-f", "{{with .Module}}{{.Path}}{{end}}", target)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
			}
			if strings.Contains(string(out), "github.com/alicebob/miniredis") {
				t.Errorf("%s links the embedded Redis, which must never be in a function", target)
			}
		}
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Dir = root
	// What BuildKit gives RUN for a native build; TARGET as docker build --build-arg.
	cmd.Env = append(os.Environ(),
		"TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH,
		"TARGET="+strings.Join(targets, " "))
	// Under testbin's lock: pkg/internal/e2e compiles the functions with the same
	// settings in CI, and whichever builds first compiles for the other.
	began := time.Now()
	b, waited, err := testbin.Build(cmd)
	if err != nil {
		t.Fatalf("the Dockerfile's go build failed for %v: %v\n%s", targets, err, b)
	}
	t.Logf("built %v in %v (of which %v waiting for another build)", targets, time.Since(began).Round(time.Millisecond), waited.Round(time.Millisecond))

	for _, target := range targets {
		bin := filepath.Join(out, filepath.Base(target))
		checkStatic(t, bin)
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Errorf("%s: no build info: %v", target, err)
			continue
		}
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		// Go leaves -ldflags out of the build info under -trimpath; checkStatic looks
		// for its effect instead.
		for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "-tags": "lambda.norpc"} {
			if settings[k] != want {
				t.Errorf("%s: built with %s=%q, want %q", target, k, settings[k], want)
			}
		}
		if strings.HasPrefix(target, "./functions/") {
			for _, d := range info.Deps {
				if strings.HasPrefix(d.Path, "github.com/alicebob/miniredis") {
					t.Errorf("%s links %s: the embedded Redis must never be in a function", target, d.Path)
				}
			}
		}
	}
}

func hasGoFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range m {
		if !strings.HasSuffix(f, "_test.go") {
			return true
		}
	}
	return false
}

// checkStatic fails unless bin is a statically linked ELF executable, which is what
// runs on distroless static (no libc there), stripped of its symbol table (-s) and
// DWARF (-w).
func checkStatic(tb testing.TB, bin string) {
	tb.Helper()
	name := filepath.Base(bin)
	f, err := elf.Open(bin)
	if err != nil {
		tb.Errorf("%s: %v", name, err)
		return
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			tb.Errorf("%s is dynamically linked", name)
		}
	}
	for _, s := range []string{".symtab", ".debug_info", ".zdebug_info"} {
		if f.Section(s) != nil {
			tb.Errorf("%s has a %s section: not built with -ldflags=\"-s -w\"", name, s)
		}
	}
}

func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	for _, must := range []string{".env", ".git"} {
		if !slices.Contains(patterns, must) {
			t.Errorf(".dockerignore does not exclude %s", must)
		}
	}
	for _, keep := range []string{"go.mod", "go.sum", "pkg", "functions", "scripts", "Dockerfile"} {
		for _, p := range patterns {
			if ok, _ := filepath.Match(strings.TrimPrefix(p, "/"), keep); ok && !strings.HasPrefix(p, "!") {
				t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", p, keep)
			}
		}
	}
}

type stackFile struct {
	Provider struct {
		Name string `yaml:"name"`
	} `yaml:"provider"`
	Functions map[string]struct {
		Lang        string            `yaml:"lang"`
		Handler     string            `yaml:"handler"`
		Image       string            `yaml:"image"`
		BuildArgs   map[string]string `yaml:"build_args"`
		Environment map[string]string `yaml:"environment"`
		Secrets     []string          `yaml:"secrets"`
	} `yaml:"functions"`
}

// shellDefault replaces ${VAR:-default} with its default, as faas-cli does when VAR is
// unset.
var shellDefault = regexp.MustCompile(`\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}`)

func TestStackYML(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if rest := shellDefault.ReplaceAllString(string(b), "$1"); strings.Contains(rest, "${") {
		t.Error("stack.yml uses a variable without a default")
	}
	var stack stackFile
	if err := yaml.Unmarshal(shellDefault.ReplaceAll(b, []byte("$1")), &stack); err != nil {
		t.Fatalf("stack.yml: %v", err)
	}
	if stack.Provider.Name != "openfaas" {
		t.Errorf("provider %q, want openfaas", stack.Provider.Name)
	}
	var names []string
	for name := range stack.Functions {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"cacheclear", "getproduct", "health"}; !slices.Equal(names, want) {
		t.Errorf("functions %v, want %v (the names of the folders under functions/)", names, want)
	}

	image := envOf(dockerfile(t), "openfaas")
	for name, fn := range stack.Functions {
		if fn.Lang != "dockerfile" || fn.Handler != "." {
			t.Errorf("%s: lang %q, handler %q; want the repository's Dockerfile (dockerfile, .)", name, fn.Lang, fn.Handler)
		}
		if got := fn.BuildArgs["TARGET"]; got != "./functions/"+name {
			t.Errorf("%s: build arg TARGET %q, want ./functions/%s", name, got, name)
		}
		repo, tag, _ := imageTag(fn.Image)
		if !strings.HasSuffix(repo, "/storeapi-"+name) || tag == "" || tag == "latest" {
			t.Errorf("%s: image %q, want <registry>/storeapi-%s:<version>", name, fn.Image, name)
		}
		env := fn.Environment
		if env["mode"] != "http" || env["fprocess"] != "/app" {
			t.Errorf("%s: mode %q, fprocess %q; want of-watchdog's http mode running /app", name, env["mode"], env["fprocess"])
		}
		if env["upstream_url"] != "http://127.0.0.1:"+env["PORT"] {
			t.Errorf("%s: upstream_url %q does not point at the program's PORT %q", name, env["upstream_url"], env["PORT"])
		}
		if env["PORT"] == "8080" || env["PORT"] == "" {
			t.Errorf("%s: PORT %q: the watchdog itself listens on 8080", name, env["PORT"])
		}
		for _, k := range []string{"mode", "fprocess", "upstream_url", "PORT"} {
			if image[k] != env[k] {
				t.Errorf("%s: %s is %q in stack.yml but %q in the Dockerfile's openfaas stage", name, k, env[k], image[k])
			}
		}
		// Secrets are mounted as files and named by *_FILE settings, never put in
		// the environment themselves.
		known := map[string]bool{}
		for _, v := range config.Variables() {
			known[v] = true
		}
		read := map[string]bool{}
		for k, v := range env {
			if !strings.Contains(k, "PASSWORD") && !strings.Contains(k, "TOKEN") {
				continue
			}
			secret, ok := strings.CutPrefix(v, "/var/openfaas/secrets/")
			if !strings.HasSuffix(k, "_FILE") || !known[k] || !ok {
				t.Errorf("%s: %s=%q: secrets go in secrets: and are read from /var/openfaas/secrets/ through a *_FILE setting of pkg/config", name, k, v)
				continue
			}
			read[secret] = true
		}
		if len(fn.Secrets) == 0 {
			t.Errorf("%s: no secrets", name)
		}
		for _, sec := range fn.Secrets {
			if !read[sec] {
				t.Errorf("%s: secret %s is mounted but no *_FILE setting reads it", name, sec)
			}
		}
		for sec := range read {
			if !slices.Contains(fn.Secrets, sec) {
				t.Errorf("%s: a *_FILE setting reads secret %s, which is not mounted", name, sec)
			}
		}
	}
}
