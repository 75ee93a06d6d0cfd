package testbin

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestRequire(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing on it
	tool := Tool{"redis-server", "apt-get install redis-server"}
	var out strings.Builder
	code, ok := require(&out, "pkg/x", false, tool)
	// go test reads this line to add "[no tests to run]" to the package's summary line:
	// it must be the testing package's own, on a line of its own.
	if ok || code != 0 || !strings.Contains("\n"+out.String(), "\ntesting: warning: no tests to run\n") ||
		!strings.Contains(out.String(), "redis-server: apt-get install redis-server") {
		t.Errorf("outside CI: %d %v %q", code, ok, out.String())
	}
	out.Reset()
	code, ok = require(&out, "pkg/x", true, tool)
	if ok || code != 1 || strings.Contains(out.String(), "no tests to run") {
		t.Errorf("in CI: %d %v %q", code, ok, out.String())
	}
	out.Reset()
	if code, ok = require(&out, "pkg/x", true); !ok || code != 0 || out.Len() != 0 {
		t.Errorf("nothing required: %d %v %q", code, ok, out.String())
	}
}

// TestBuildWaitsForAnother holds the lock with one build and checks that a second
// waits for it.
func TestBuildWaitsForAnother(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no sleep program (required when CI is set)")
		}
		t.Skip("no sleep program")
	}
	const hold = 600 * time.Millisecond
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		unlock, err := lock(os.Environ())
		if err != nil {
			done <- err
			close(started)
			return
		}
		close(started)
		time.Sleep(hold)
		unlock()
		done <- nil
	}()
	<-started
	began := time.Now()
	_, waited, err := Build(exec.Command("true"))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if waited < hold/2 || time.Since(began) < hold/2 {
		t.Errorf("the second build waited %v, want about %v", waited, hold)
	}
}

func TestEmulator(t *testing.T) {
	p, err := Emulator()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&0o111 == 0 || !strings.HasSuffix(p, "aws-lambda-rie") {
		t.Errorf("go tool -n aws-lambda-rie gave %q, mode %v", p, st.Mode())
	}
}
