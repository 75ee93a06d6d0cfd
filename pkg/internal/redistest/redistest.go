// Package redistest gives tests a real Redis: the shared server at 127.0.0.1:6379 (or
// REDIS_TEST_ADDR) for tests that only read and write their own keys, and private
// redis-server processes on free ports for tests that stop, pause, restart or
// reconfigure a server or read server-wide figures.
//
// Where no Redis is available a test skips with a clear message, except when the CI
// variable is set: there it fails, so real-Redis tests never silently skip in CI.
package redistest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where real-Redis tests are required.
func InCI() bool { return os.Getenv("CI") != "" }

// Unavailable skips the test, or fails it in CI, explaining what is missing.
func Unavailable(tb testing.TB, what string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("%s (required when CI is set)", what)
	}
	tb.Skipf("%s: skipping; set CI=1 to make this a failure", what)
}

// SharedAddr returns the address of the shared Redis, skipping (or failing in CI) when
// none answers. Tests on it must confine themselves to keys under [Prefix] and never
// FLUSH*, CONFIG SET or SHUTDOWN it.
func SharedAddr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv("REDIS_TEST_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	if err := ping(addr, "", time.Second); err != nil {
		Unavailable(tb, fmt.Sprintf("no Redis at %s (%v)", addr, err))
	}
	return addr
}

// Prefix returns a random key prefix for one test in the default stage, dev:
// "test:<random>:dev:", whose last segment is the stage as config requires of
// CACHE_KEY_PREFIX.
func Prefix(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test:" + hex.EncodeToString(b[:]) + ":dev:"
}

// ServerBinary returns the path of redis-server, skipping (or failing in CI) if absent.
func ServerBinary(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(tb, "redis-server is not installed")
	}
	return p
}

// Server is a private redis-server process.
type Server struct {
	tb   testing.TB
	bin  string
	Dir  string
	Port int
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Start runs redis-server on a free port with a temporary working directory, nothing
// saved to disk, and extra arguments in redis-server's command-line form (for example
// "--requirepass", "secret"). The server is killed when the test ends.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: ServerBinary(tb), Dir: tb.TempDir(), Port: FreePort(tb)}
	s.args = append([]string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
		"--logfile", filepath.Join(s.Dir, "redis.log"),
	}, extra...)
	s.Restart()
	tb.Cleanup(s.Kill)
	return s
}

// Restart starts the server again on the same port and directory.
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.tb.Fatalf("redistest: server on %d already running", s.Port)
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.Dir
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ping(s.Addr(), s.password(), 200*time.Millisecond)
		if err == nil || strings.Contains(err.Error(), "NOAUTH") || strings.Contains(err.Error(), "WRONGPASS") {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			s.tb.Fatalf("redistest: redis-server on %d did not start: %v\n%s", s.Port, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) password() string {
	for i, a := range s.args {
		if a == "--requirepass" && i+1 < len(s.args) {
			return s.args[i+1]
		}
	}
	return ""
}

// Stop ends the server with SIGTERM and waits for it to exit.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill ends the server with SIGKILL and waits for it to exit.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Pause stops the process with SIGSTOP: it keeps accepting TCP connections (the kernel
// completes handshakes) but never answers, until Resume.
func (s *Server) Pause() { s.signalKeep(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { s.signalKeep(syscall.SIGCONT) }

func (s *Server) signalKeep(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Do sends one command with redis-cli semantics over a fresh connection and returns the
// reply as text (errors included, prefixed with "ERR" etc.). It is for test setup and
// evidence (INFO, CLIENT LIST, CONFIG SET), independent of the client under test.
func (s *Server) Do(args ...string) (string, error) {
	return Do(s.Addr(), s.password(), args...)
}

// MustDo is Do that fails the test on a transport error.
func (s *Server) MustDo(args ...string) string {
	s.tb.Helper()
	out, err := s.Do(args...)
	if err != nil {
		s.tb.Fatalf("redistest: %v: %v", args, err)
	}
	return out
}

// Info returns one field of INFO (for example "connected_clients").
func (s *Server) Info(field string) string {
	s.tb.Helper()
	return InfoField(s.MustDo("INFO", "all"), field)
}

// InfoField picks field out of an INFO reply.
func InfoField(info, field string) string {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}

// TrackingClients picks out of a CLIENT LIST reply the ids of the connections with
// client-side caching tracking on (flag t).
func TrackingClients(clientList string) []string {
	var ids []string
	for _, line := range strings.Split(clientList, "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if strings.Contains(f["flags"], "t") {
			ids = append(ids, f["id"])
		}
	}
	return ids
}

// FreePort returns a TCP port that was free a moment ago on 127.0.0.1.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func ping(addr, password string, timeout time.Duration) error {
	out, err := doTimeout(addr, password, timeout, "PING")
	if err != nil {
		return err
	}
	if out != "PONG" {
		return fmt.Errorf("PING answered %q", out)
	}
	return nil
}

// Do sends one command to addr (authenticating first when password is set) and returns
// the reply flattened to text.
func Do(addr, password string, args ...string) (string, error) {
	return doTimeout(addr, password, 5*time.Second, args...)
}

func doTimeout(addr, password string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(c)
	if password != "" {
		if out, err := roundTrip(c, r, "AUTH", password); err != nil {
			return "", err
		} else if out != "OK" {
			return out, fmt.Errorf("AUTH failed: %s", out)
		}
	}
	return roundTrip(c, r, args...)
}

func roundTrip(c net.Conn, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return readReply(r)
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return line[1:], fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		parts := make([]string, 0, max(n, 0))
		for range n {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}
