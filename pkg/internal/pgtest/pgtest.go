// Package pgtest gives tests a real PostgreSQL: the shared server at 127.0.0.1:5432
// (or PG_TEST_URL), in a schema of the test's own that is dropped when it ends, and
// private servers (initdb and postgres on a free port) for tests that stop, restart
// or kill a server's connections.
//
// Where no PostgreSQL is available a test skips with a clear message, except when the
// CI variable is set: there it fails, so the database tests never silently skip in CI.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/postgres"
	"github.com/jackc/pgx/v5"
)

// SharedURL returns the URL of the shared test database, skipping (or failing in CI)
// when nothing answers there. Tests must keep to a schema of their own (see Schema)
// and never stop the server or drop the database.
func SharedURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("PG_TEST_URL")
	if u == "" {
		u = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		redistest.Unavailable(tb, fmt.Sprintf("no PostgreSQL at %s (%v)", redact(u), err))
	}
	_ = c.Close(ctx)
	return u
}

// Schema creates a schema with a random name in the database at base and returns it
// with a URL that puts it first on the search path, so everything the test creates
// lands in it. The schema is dropped, with all it holds, when the test ends.
func Schema(tb testing.TB, base string) (name, schemaURL string) {
	tb.Helper()
	var b [5]byte
	_, _ = rand.Read(b[:])
	name = "t_" + hex.EncodeToString(b[:])
	Exec(tb, base, "CREATE SCHEMA "+name)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Logf("pgtest: drop schema %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			tb.Logf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return name, WithSearchPath(tb, base, name)
}

// WithSearchPath returns base with a startup option that sets search_path to schema,
// understood by pgx and by psql alike.
func WithSearchPath(tb testing.TB, base, schema string) string {
	tb.Helper()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	q := u.Query()
	q.Set("options", "-csearch_path="+schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Exec runs sql (one or more statements, no arguments) on a fresh connection to u.
func Exec(tb testing.TB, u, sql string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		tb.Fatalf("pgtest: %s: %v", firstLine(sql), err)
	}
}

// Psql runs sql with the psql program against u, as a person editing the database
// would, and returns its output. psql is looked for on PATH and beside the server
// binaries.
func Psql(tb testing.TB, u, sql string) string {
	tb.Helper()
	bin, err := exec.LookPath("psql")
	if err != nil {
		bin = filepath.Join(BinDir(tb), "psql")
	}
	cmd := exec.Command(bin, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", u, "-c", sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("pgtest: psql %s: %v\n%s", firstLine(sql), err, out)
	}
	return strings.TrimSpace(string(out))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// BinDir returns the directory of PostgreSQL's server programs (initdb, postgres):
// PG_BIN if set, else the newest /usr/lib/postgresql/*/bin, else the directory of
// initdb on PATH. It skips (fails in CI) when there is none.
func BinDir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("PG_BIN"); d != "" {
		return d
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		return filepath.Dir(m[len(m)-1])
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	redistest.Unavailable(tb, "PostgreSQL's server programs (initdb, postgres) are not installed")
	return ""
}

// Server is a private PostgreSQL server: its own data directory, on a free port,
// trust authentication on 127.0.0.1, database "test".
type Server struct {
	tb   testing.TB
	bin  string
	Dir  string
	Port int
	cred *syscall.Credential // the postgres user's, when the tests run as root

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs initdb and postgres on a free port; the server is killed and its files
// removed when the test ends. postgres refuses to run as root, so when the tests do,
// the server runs as the "postgres" user.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: BinDir(tb), Port: redistest.FreePort(tb)}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	s.Dir = dir
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			redistest.Unavailable(tb, "running as root and there is no postgres user to run a private server as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
	}
	data := filepath.Join(dir, "data")
	out, err := s.command("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--no-sync", "--locale=C").CombinedOutput()
	if err != nil {
		tb.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	s.Restart()
	tb.Cleanup(s.Kill)
	Exec(tb, s.adminURL(), "CREATE DATABASE test")
	return s
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// URL is the URL of the server's "test" database.
func (s *Server) URL() string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(s.Port) + "/test?sslmode=disable"
}

func (s *Server) adminURL() string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(s.Port) + "/postgres?sslmode=disable"
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Restart starts the server again on the same port and data directory, and waits until
// it accepts connections.
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.tb.Fatalf("pgtest: server on %d already running", s.Port)
	}
	cmd := s.command("postgres", "-D", filepath.Join(s.Dir, "data"), "-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.Dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=50", "-c", "shared_buffers=16MB")
	logf, err := os.Create(filepath.Join(s.Dir, "postgres.log"))
	if err != nil {
		s.tb.Fatalf("pgtest: %v", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.tb.Fatalf("pgtest: start postgres: %v", err)
	}
	logf.Close()
	s.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, s.adminURL())
		if err == nil {
			_ = c.Close(ctx)
			cancel()
			return
		}
		cancel()
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
			s.tb.Fatalf("pgtest: postgres on %d did not start: %v\n%s", s.Port, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down the way an operator's restart does (SIGINT, PostgreSQL's
// fast shutdown: sessions are ended, transactions rolled back) and waits for it.
func (s *Server) Stop() { s.signal(syscall.SIGINT) }

// Kill ends the server with SIGQUIT (immediate shutdown) and waits for it.
func (s *Server) Kill() { s.signal(syscall.SIGQUIT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Seeded returns the URL of a fresh schema on the shared server (see Schema) holding
// the migrated schema and the sample catalog's 1,000 products.
func Seeded(tb testing.TB) (schema, schemaURL string) {
	tb.Helper()
	schema, schemaURL = Schema(tb, SharedURL(tb))
	MigrateAndSeed(tb, schemaURL)
	return schema, schemaURL
}

// MigrateAndSeed applies the migrations and seeds the sample catalog at u.
func MigrateAndSeed(tb testing.TB, u string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := postgres.Migrate(ctx, c); err != nil {
		tb.Fatal(err)
	}
	ps, err := postgres.CatalogProducts()
	if err != nil {
		tb.Fatal(err)
	}
	if n, err := postgres.Seed(ctx, c, ps); err != nil || n != int64(len(ps)) {
		tb.Fatalf("pgtest: seed = %d, %v; want %d", n, err, len(ps))
	}
}

// HBA replaces the server's pg_hba.conf with lines and reloads it, so a test can
// require passwords (scram-sha-256) of some roles.
func (s *Server) HBA(lines string) {
	s.tb.Helper()
	p := filepath.Join(s.Dir, "data", "pg_hba.conf")
	if err := os.WriteFile(p, []byte(lines+"\n"), 0o600); err != nil {
		s.tb.Fatalf("pgtest: %v", err)
	}
	if s.cred != nil {
		if err := os.Chown(p, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			s.tb.Fatalf("pgtest: %v", err)
		}
	}
	Exec(s.tb, s.adminURL(), "SELECT pg_reload_conf()")
}
