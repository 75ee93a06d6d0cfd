package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestOutageScript checks scripts/load/outage without running an outage (that takes
// half a minute and a redis-server; the README's picture is its output): strict bash,
// shellcheck-clean, and a --help.
func TestOutageScript(t *testing.T) {
	src, err := os.ReadFile("outage")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(src), "#!/usr/bin/env bash\n") || !strings.Contains(string(src), "set -euo pipefail") {
		t.Error("want a bash shebang and set -euo pipefail")
	}
	out, err := exec.Command("./outage", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Usage: scripts/load/outage") {
		t.Errorf("--help: %v\n%s", err, out)
	}
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("shellcheck is not installed (required when CI is set)")
		}
		t.Skip("shellcheck is not installed (apt-get install shellcheck): skipping its check; set CI=1 to make this a failure")
	}
	if out, err := exec.Command(sc, "--severity=style", "outage").CombinedOutput(); err != nil {
		t.Errorf("shellcheck outage: %v\n%s", err, out)
	}
}
