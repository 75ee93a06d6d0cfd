package scriptstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/internal/pgtest"
	"github.com/acmestore/storeapi/pkg/internal/testbin"
)

// TestMigrateCommand builds scripts/migrate and runs it twice against a fresh schema:
// the first run applies the schema and seeds the catalog, the second applies nothing,
// seeds nothing and leaves an edit alone.
func TestMigrateCommand(t *testing.T) {
	_, u := pgtest.Schema(t, pgtest.SharedURL(t))
	bin := filepath.Join(t.TempDir(), "migrate")
	if out, _, err := testbin.Build(exec.Command("go", "build", "-o", bin, "../../../scripts/migrate")); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	migrate := func() string {
		t.Helper()
		cmd := exec.Command(bin, "-seed")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+u)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
		return string(out)
	}
	if got := migrate(); !strings.Contains(got, "applied 0001_products.sql") || !strings.Contains(got, "seeded 1000 of the catalog's 1000") {
		t.Errorf("first run said:\n%s", got)
	}
	pgtest.Psql(t, u, `UPDATE products SET name = 'Edited' WHERE id = 'prod-0001'`)
	if got := migrate(); !strings.Contains(got, "schema up to date") || !strings.Contains(got, "seeded 0 of") {
		t.Errorf("second run said:\n%s", got)
	}
	if name := pgtest.Psql(t, u, `SELECT name FROM products WHERE id = 'prod-0001'`); name != "Edited" {
		t.Errorf("seeding again undid an edit: name %q", name)
	}

	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "DATABASE_URL is not set") {
		t.Errorf("without DATABASE_URL: %v\n%s", err, out)
	}
}
