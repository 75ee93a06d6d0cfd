package samtest

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
)

// TestCfnLint runs cfn-lint, which expands the template with the real SAM translator
// and checks the result against CloudFormation's resource schemas: what goformation
// cannot know (valid property values, what SAM generates). The development and CI
// machines have it; a machine with only Go checks the rest without it.
func TestCfnLint(t *testing.T) {
	lint, err := exec.LookPath("cfn-lint")
	if err != nil {
		if redistest.InCI() {
			t.Fatal("cfn-lint is not installed; CI needs it to check template.yaml after the SAM transform")
		}
		t.Log("cfn-lint is not installed: template.yaml is checked with goformation only")
		return
	}
	cmd := exec.Command(lint, "--format", "parseable", filepath.Join(root(t), "template.yaml"))
	// The SAM translator wants a region; none is used.
	cmd.Env = append(cmd.Environ(), "AWS_DEFAULT_REGION=us-east-1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("cfn-lint template.yaml: %v\n%s", err, b)
	}
}
