package composetest

import (
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/acmestore/storeapi/pkg/internal/pgtest"
)

// TestComposePostgres checks the product database of the app profile: a pinned
// PostgreSQL of the major version the tests use, its data on a volume, its password
// from .env, a healthcheck, the migrate service that seeds it before the app starts,
// and the app's DATABASE_URL pointing at it.
func TestComposePostgres(t *testing.T) {
	env := stackEnv(t)
	if p := mustLoad(t, env); p.Services["postgres"].Name != "" || p.Services["migrate"].Name != "" {
		t.Error("postgres or migrate runs without a profile; a plain docker compose up starts only Redis and RedisInsight")
	}
	for _, profile := range []string{"app", "db"} {
		p := mustLoad(t, env, profile)
		service(t, p, "postgres")
		service(t, p, "migrate")
	}
	p := mustLoad(t, env, "app")
	pg := service(t, p, "postgres")

	_, tag, _ := imageTag(pg.Image)
	major, _, _ := strings.Cut(tag, ".")
	out, err := exec.Command(filepath.Join(pgtest.BinDir(t), "postgres"), "--version").Output()
	if err != nil {
		t.Fatalf("postgres --version: %v", err)
	}
	if !strings.Contains(string(out), " "+major+".") {
		t.Errorf("postgres: image %s, but the tests run PostgreSQL %s", pg.Image, strings.TrimSpace(string(out)))
	}

	var data bool
	for _, v := range pg.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data" {
			_, declared := p.Volumes[v.Source]
			data = declared
		}
	}
	if !data {
		t.Error("postgres: no declared named volume at /var/lib/postgresql/data")
	}
	if derefEnv(pg, "POSTGRES_PASSWORD") != env["POSTGRES_PASSWORD"] {
		t.Error("postgres: POSTGRES_PASSWORD is not the stack's")
	}
	user, db := derefEnv(pg, "POSTGRES_USER"), derefEnv(pg, "POSTGRES_DB")

	// The app and migrate reach it by its service name, as its user, with its password.
	for _, name := range []string{"app", "migrate"} {
		s := service(t, p, name)
		raw := derefEnv(s, "DATABASE_URL")
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("%s: DATABASE_URL does not parse", name)
			continue
		}
		pw, _ := u.User.Password()
		if u.Scheme != "postgres" || u.Hostname() != "postgres" || u.Port() != strconv.Itoa(int(pg.Ports[0].Target)) ||
			u.User.Username() != user || pw != env["POSTGRES_PASSWORD"] || u.Path != "/"+db {
			t.Errorf("%s: DATABASE_URL is not postgres://%s:<POSTGRES_PASSWORD>@postgres:%d/%s", name, user, pg.Ports[0].Target, db)
		}
	}
	m := service(t, p, "migrate")
	if m.Build == nil || m.Build.Args["TARGET"] == nil || *m.Build.Args["TARGET"] != "./scripts/migrate" || !slices.Equal(m.Command, []string{"-seed"}) {
		t.Error("migrate: does not build ./scripts/migrate and run it with -seed")
	}
	if d := m.DependsOn["postgres"]; d.Condition != types.ServiceConditionHealthy {
		t.Errorf("migrate: does not wait for postgres to be healthy (%q)", d.Condition)
	}
	if d := service(t, p, "app").DependsOn["migrate"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("app: does not wait for migrate to finish (%q)", d.Condition)
	}

	// The healthcheck, run against a real server: it passes while the server is up and
	// fails once it is down.
	hc := pg.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" || hc.Test[1] != "pg_isready" {
		t.Fatalf("postgres: healthcheck %v, want CMD pg_isready", hc)
	}
	if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
		t.Error("postgres: healthcheck without interval, timeout or retries")
	}
	srv := pgtest.Start(t)
	args := slices.Clone(hc.Test[2:])
	if i := slices.Index(args, "-p"); i < 0 || args[i+1] != "5432" {
		t.Fatalf("postgres: healthcheck %v does not name port 5432", hc.Test)
	} else {
		args[i+1] = strconv.Itoa(srv.Port)
	}
	check := func() error {
		return exec.Command(filepath.Join(pgtest.BinDir(t), "pg_isready"), args...).Run()
	}
	if err := check(); err != nil {
		t.Errorf("healthcheck fails on a running server: %v", err)
	}
	srv.Stop()
	if err := check(); err == nil {
		t.Error("healthcheck passes with the server stopped")
	}
}
