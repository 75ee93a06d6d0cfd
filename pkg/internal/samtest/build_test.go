package samtest

import (
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/internal/testbin"
)

// makePath returns the make program, or "" where there is none. Outside CI a machine
// with only Go may lack make: the tests then run the targets' go build command
// themselves. CI must have make, so that the Makefile itself is proved.
func makePath(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("make")
	if err != nil {
		if redistest.InCI() {
			tb.Fatal("make is not installed; CI needs it to prove the Makefile that sam build runs")
		}
		tb.Log("make is not installed: checking the Makefile's text and building with go build directly")
		return ""
	}
	return p
}

// lambdaBuild is the command of the Makefile's build-<LogicalId> targets, for machines
// without make. TestMakefileTargets checks that the Makefile runs the same.
func lambdaBuild(out, dir string) *exec.Cmd {
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w",
		"-o", filepath.Join(out, "bootstrap"), "./functions/"+dir)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	return cmd
}

// withoutEnv returns the process environment without the named variable.
func withoutEnv(name string) []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, name+"=")
	})
}

func TestMakefileTargets(t *testing.T) {
	makefile := string(readFile(t, "Makefile"))
	mk := makePath(t)
	for _, fn := range functions {
		target := "build-" + fn.id
		t.Run(target, func(t *testing.T) {
			if !regexp.MustCompile(`(?m)^` + target + `:`).MatchString(makefile) {
				t.Fatalf("the Makefile has no %s target, which sam build runs for BuildMethod makefile", target)
			}
			if mk == "" {
				return
			}
			out := t.TempDir()
			cmd := exec.Command(mk, "--no-print-directory", "-n", target, "ARTIFACTS_DIR="+out)
			cmd.Dir = root(t)
			cmd.Env = withoutEnv("ARTIFACTS_DIR")
			b, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n %s: %v\n%s", target, err, b)
			}
			got := string(b)
			for _, want := range []string{
				"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", " build ",
				"-tags lambda.norpc", "-trimpath", "-ldflags='-s -w'",
				"-o " + filepath.Join(out, "bootstrap"), " ./functions/" + fn.dir + "\n",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("make %s runs\n%s\nwhich lacks %q", target, got, want)
				}
			}

			// Without ARTIFACTS_DIR the binary would land in /bootstrap.
			cmd = exec.Command(mk, "-n", target)
			cmd.Dir = root(t)
			cmd.Env = withoutEnv("ARTIFACTS_DIR")
			if b, err := cmd.CombinedOutput(); err == nil {
				t.Errorf("make %s without ARTIFACTS_DIR does not fail; it runs\n%s", target, b)
			}
		})
	}
}

// TestFunctionsBuild builds every function as sam build does and checks the binary:
// a static linux/arm64 executable, built with the flags the Makefile promises, without
// the embedded Redis. It fails, and does not skip, while a function's folder is
// missing.
//
// The builds run with CI set. Elsewhere the test checks what each bootstrap links,
// with go list and the Makefile's settings, and builds nothing: a first build with
// those settings compiles the standard library and every dependency for linux/arm64
// without cgo, about 80 s of CPU on the 2-core development VM, which a fresh `go test
// ./...` cannot afford in its two minutes. TestMakefileTargets checks the targets'
// commands everywhere, and pkg/internal/e2e runs the functions' code as bootstraps.
func TestFunctionsBuild(t *testing.T) {
	if !redistest.InCI() {
		t.Log("CI is not set: checking what the bootstraps link, without building them (see the doc)")
		for _, fn := range functions {
			t.Run(fn.id, func(t *testing.T) {
				t.Parallel()
				checkDeps(t, fn.dir)
			})
		}
		return
	}
	mk := makePath(t)
	for _, fn := range functions {
		t.Run(fn.id, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(root(t), "functions", fn.dir)
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				t.Fatalf("functions/%s does not exist, so %s cannot be built", fn.dir, fn.id)
			}
			out := t.TempDir()
			var cmd *exec.Cmd
			if mk != "" {
				cmd = exec.Command(mk, "--no-print-directory", "build-"+fn.id, "ARTIFACTS_DIR="+out)
			} else {
				cmd = lambdaBuild(out, fn.dir)
			}
			cmd.Dir = root(t)
			// Under testbin's lock the three targets compile once and link three times;
			// started together, each go build would compile everything itself.
			if b, _, err := testbin.Build(cmd); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
			}
			bin := filepath.Join(out, "bootstrap")
			checkELF(t, bin)
			checkBuildInfo(t, bin, fn.dir)
		})
	}
}

func checkELF(t *testing.T, bin string) {
	t.Helper()
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("no bootstrap: %v", err)
	}
	if st.Mode()&0o111 == 0 {
		t.Errorf("bootstrap is not executable: %v", st.Mode())
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("bootstrap is not an ELF binary: %v", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
		t.Errorf("bootstrap is for %v %v, want arm64 (EM_AARCH64, 64-bit)", f.Machine, f.Class)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("bootstrap is dynamically linked: provided.al2023 needs CGO_ENABLED=0")
		}
	}
	// -trimpath keeps -ldflags out of the build information, so look for its effect:
	// -s drops the symbol table, -w the DWARF sections.
	var debug []string
	for _, s := range f.Sections {
		if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			debug = append(debug, s.Name)
		}
	}
	if len(debug) > 0 {
		t.Errorf("bootstrap has sections %s: not built with -ldflags='-s -w'", strings.Join(debug, " "))
	}
}

func checkBuildInfo(t *testing.T, bin, dir string) {
	t.Helper()
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("no Go build information in bootstrap: %v", err)
	}
	if want := module + "/functions/" + dir; info.Path != want {
		t.Errorf("bootstrap is %s, want %s", info.Path, want)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for key, want := range map[string]string{
		"GOOS":        "linux",
		"GOARCH":      "arm64",
		"CGO_ENABLED": "0",
		"-tags":       "lambda.norpc",
		"-trimpath":   "true",
	} {
		if got := settings[key]; got != want {
			t.Errorf("built with %s=%q, want %q", key, got, want)
		}
	}
	var deps []string
	for _, d := range info.Deps {
		deps = append(deps, d.Path)
	}
	checkModules(t, deps)
}

// checkDeps checks the modules that functions/<dir> links when built with the
// Makefile's settings, as go list reports them.
func checkDeps(t *testing.T, dir string) {
	t.Helper()
	if st, err := os.Stat(filepath.Join(root(t), "functions", dir)); err != nil || !st.IsDir() {
		t.Fatalf("functions/%s does not exist", dir)
	}
	cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", "-f", "{{with .Module}}{{.Path}}{{end}}", "./functions/"+dir)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	checkModules(t, strings.Fields(string(out)))
}

// checkModules checks the modules a bootstrap links.
func checkModules(t *testing.T, deps []string) {
	t.Helper()
	if slices.Contains(deps, "github.com/alicebob/miniredis/v2") {
		t.Error("bootstrap links github.com/alicebob/miniredis/v2: the embedded Redis is for tests and local runs only")
	}
	if !slices.Contains(deps, "github.com/aws/aws-lambda-go") {
		t.Error("bootstrap does not link github.com/aws/aws-lambda-go: it cannot run under Lambda")
	}
}
