package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/telemetry"
)

// TestPasswordFromFile: the HTTP mode (as OpenFaaS runs it, the secret mounted as a
// file) authenticates to a password-protected Redis with REDIS_PASSWORD_FILE, and a
// file holding the wrong password makes health fail with auth_failed, without
// showing either password.
func TestPasswordFromFile(t *testing.T) {
	const pw = "f1le-s3cret-pw"
	srv := redistest.Start(t, "--requirepass", pw)
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		status  int
		want    string
	}{
		{pw + "\n", http.StatusOK, `"status":"pass"`},
		{"wr0ng-pw\n", http.StatusServiceUnavailable, "auth_failed"},
	} {
		file := filepath.Join(dir, "storeapi-redis-password")
		if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		a := apptest.Build(t, map[string]string{
			"REDIS_URL":           "redis://" + srv.Addr(),
			"REDIS_PASSWORD_FILE": file,
		}, config.ModeHTTP)
		w := httptest.NewRecorder()
		app.Handler(app.Health, a, telemetry.NewLogger(io.Discard, nil)).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health", nil))
		body := w.Body.String()
		if w.Code != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("file %q: health %d %s; want %d with %s", strings.TrimSpace(tc.content), w.Code, body, tc.status, tc.want)
		}
		if strings.Contains(body, pw) || strings.Contains(body, "wr0ng") {
			t.Errorf("health shows a password: %s", body)
		}
	}
}
