package scriptstest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/telemetry"
)

// TestLoadToolWithBaseline builds scripts/load and drives a real getProduct server and
// the baseline process the tool starts, each for a fixed count, on the shared Redis,
// and checks the JSON report.
func TestLoadToolWithBaseline(t *testing.T) {
	addr := redistest.SharedAddr(t)
	prefix := redistest.Prefix(t)
	a := apptest.Build(t, map[string]string{"REDIS_URL": "redis://" + addr, "CACHE_KEY_PREFIX": prefix}, config.ModeHTTP)
	t.Cleanup(func() {
		ctx := context.Background()
		rdb := a.Redis.Client()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		_ = rdb.Del(ctx, append(keys, api.TallyKey(prefix))...).Err()
	})
	srv := httptest.NewServer(app.Handler(app.All, a, telemetry.NewLogger(io.Discard, nil)))
	defer srv.Close()

	bin := filepath.Join(t.TempDir(), "load")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../scripts/load").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-mode", "http", "-url", srv.URL, "-c", "4", "-n", "200", "-baseline", "-rounds", "1", "-json")
	cmd.Env = append(os.Environ(), "REDIS_URL=redis://"+addr, "CACHE_KEY_PREFIX="+prefix)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("load: %v\n%s", err, stderr.String())
	}
	var rep struct {
		Results []struct {
			Name     string  `json:"name"`
			Requests int64   `json:"requests"`
			Ops      float64 `json:"opsPerSec"`
			Hits     int64   `json:"hits"`
			Errors   int64   `json:"errors"`
		} `json:"results"`
		Ratio float64 `json:"targetVsBaseline"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	if len(rep.Results) != 2 || !strings.HasPrefix(rep.Results[0].Name, "http ") || rep.Results[1].Name != "baseline" {
		t.Fatalf("want the server's and the baseline's results: %+v", rep.Results)
	}
	for _, r := range rep.Results {
		// The tool warms every key first, so every request is a hit.
		if r.Requests != 200 || r.Hits != 200 || r.Errors != 0 || r.Ops <= 0 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	if rep.Ratio <= 0 {
		t.Errorf("targetVsBaseline = %v", rep.Ratio)
	}
}
