package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
)

// function is one bootstrap running under its own aws-lambda-rie.
type function struct {
	tb   testing.TB
	name string // folder under functions/
	url  string // the emulator's invoke URL
	cmd  *exec.Cmd
	dir  string // where stdout and stderr are written

	done    chan struct{} // closed when the emulator has exited
	waitErr error

	mu   sync.Mutex
	pids map[int]bool // the runtime processes seen (the emulator's children)
}

// startFunction starts fn's bootstrap under the emulator with vars as the function's
// whole environment (plus PATH and HOME), on two free ports. The emulator starts the
// bootstrap itself at the first invocation, as Lambda does. Everything is killed when
// the test ends.
func startFunction(tb testing.TB, fn string, vars map[string]string) *function {
	tb.Helper()
	rie := emulator(tb)
	boot := bootstrap(tb, fn)
	var last string
	for attempt := 0; attempt < 3; attempt++ {
		f, err := launch(tb, rie, boot, fn, vars)
		if err == nil {
			return f
		}
		// Another process may have taken a port between FreePort and the bind.
		last = err.Error()
	}
	tb.Fatalf("starting %s under aws-lambda-rie: %s", fn, last)
	return nil
}

func launch(tb testing.TB, rie, boot, fn string, vars map[string]string) (*function, error) {
	tb.Helper()
	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(tb)))
	runtimeAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(tb)))
	dir := tb.TempDir()
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		tb.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", apiAddr, "--runtime-api-address", runtimeAddr, boot)
	cmd.Dir = filepath.Dir(boot)
	// The emulator hands its own environment to the function: pass only what the
	// function should see. LOG_LEVEL is read by both.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "AWS_LAMBDA_FUNCTION_TIMEOUT=10", "LOG_LEVEL=info"}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start aws-lambda-rie: %v", err)
	}
	_ = stdout.Close()
	_ = stderr.Close()
	f := &function{tb: tb, name: fn, url: "http://" + apiAddr + "/2015-03-31/functions/function/invocations",
		cmd: cmd, dir: dir, done: make(chan struct{}), pids: map[int]bool{}}
	go func() {
		f.waitErr = cmd.Wait()
		close(f.done)
	}()
	tb.Cleanup(f.kill)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("%s emulator stdout (tail):\n%s", fn, tail(f.stdout(), 40))
			tb.Logf("%s emulator stderr (tail):\n%s", fn, tail(f.stderr(), 20))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", apiAddr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return f, nil
		}
		select {
		case <-f.done:
			return nil, fmt.Errorf("the emulator exited (%v):\n%s", f.waitErr, tail(f.stderr(), 10))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			f.kill()
			return nil, fmt.Errorf("the emulator did not listen on %s within 10s", apiAddr)
		}
	}
}

// kill ends the emulator and the runtime it started. The emulator starts the runtime
// in a process group of its own, so both groups are killed.
func (f *function) kill() {
	f.notePIDs()
	f.mu.Lock()
	pids := make([]int, 0, len(f.pids))
	for p := range f.pids {
		pids = append(pids, p)
	}
	f.mu.Unlock()
	for _, p := range pids {
		_ = syscall.Kill(-p, syscall.SIGKILL)
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	select {
	case <-f.done:
		return
	default:
	}
	_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		f.tb.Logf("%s: the emulator did not exit after SIGKILL", f.name)
	}
}

// notePIDs records the emulator's children (the runtime) while it is alive, so that
// cleanup can kill them even after the emulator is gone.
func (f *function) notePIDs() {
	select {
	case <-f.done:
		return
	default:
	}
	kids := children(f.cmd.Process.Pid)
	f.mu.Lock()
	for _, k := range kids {
		f.pids[k] = true
	}
	f.mu.Unlock()
}

// children lists the processes whose parent is pid, from /proc.
func children(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 1 {
			if ppid, _ := strconv.Atoi(fields[1]); ppid == pid {
				out = append(out, n)
			}
		}
	}
	return out
}

// runtimePIDs are the runtime processes seen so far, sorted.
func (f *function) runtimePIDs() []int {
	f.notePIDs()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for p := range f.pids {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// stop sends SIGTERM to the emulator, as Lambda ends an environment, and waits for it
// to exit. The emulator sends SIGTERM to the runtime (which registered for it with
// lambda.WithEnableSIGTERM) and SIGKILL after its deadline.
func (f *function) stop() {
	f.tb.Helper()
	f.notePIDs()
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		f.tb.Fatalf("%s: the emulator did not exit within 10s of SIGTERM", f.name)
	}
}

func (f *function) stdout() string { return readFile(filepath.Join(f.dir, "stdout")) }
func (f *function) stderr() string { return readFile(filepath.Join(f.dir, "stderr")) }

// allOutput is everything the emulator and the function wrote.
func (f *function) allOutput() string { return f.stdout() + f.stderr() }

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logLine is one of the function's JSON log lines.
type logLine map[string]any

func (l logLine) str(k string) string {
	s, _ := l[k].(string)
	return s
}

// logs parses the function's JSON lines out of the emulator's stdout (which also has
// the emulator's START/END/REPORT lines).
func (f *function) logs() []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(f.stdout()))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var l logLine
		if err := json.Unmarshal(line, &l); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// requestLines are the function's per-request lines.
func (f *function) requestLines() []logLine {
	var out []logLine
	for _, l := range f.logs() {
		if l.str("message") == "request" {
			out = append(out, l)
		}
	}
	return out
}

// requestLine returns the request line with the given request id.
func (f *function) requestLine(id string) logLine {
	f.tb.Helper()
	// The line is written before the response is sent, but give the file a moment.
	for i := 0; i < 50; i++ {
		for _, l := range f.requestLines() {
			if l.str("requestId") == id {
				return l
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.tb.Fatalf("%s: no request line for request %s", f.name, id)
	return nil
}

// messages counts the function's lines with the given message.
func (f *function) messages(msg string) int {
	n := 0
	for _, l := range f.logs() {
		if l.str("message") == msg {
			n++
		}
	}
	return n
}

// response is an API Gateway response as the function returned it.
type response struct {
	Status  int
	Header  http.Header
	Body    string
	Elapsed time.Duration
	Raw     string
}

func (r response) cache() string     { return r.Header.Get("X-Cache") }
func (r response) requestID() string { return r.Header.Get("X-Request-Id") }

// invoke sends one event through the emulator's invoke API and decodes the API
// Gateway response (payload 2.0 or the proxy shape). Elapsed is measured around the
// whole HTTP round trip to the emulator.
func (f *function) invoke(event []byte) response {
	f.tb.Helper()
	client := http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	resp, err := client.Post(f.url, "application/json", bytes.NewReader(event))
	if err != nil {
		f.tb.Fatalf("%s: invoke: %v", f.name, err)
	}
	raw, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		f.tb.Fatalf("%s: invoke: read: %v", f.name, err)
	}
	f.notePIDs()
	if resp.StatusCode != http.StatusOK {
		f.tb.Fatalf("%s: the emulator answered %d: %s", f.name, resp.StatusCode, raw)
	}
	r, err := decodeResponse(raw)
	if err != nil {
		f.tb.Fatalf("%s: %v", f.name, err)
	}
	r.Elapsed = elapsed
	return r
}

// decodeResponse decodes an API Gateway proxy or payload 2.0 response.
func decodeResponse(raw []byte) (response, error) {
	r, err := apptest.DecodeResponse(raw)
	if err != nil {
		return response{}, err
	}
	return response{Status: r.Status, Header: r.Header, Body: r.Body, Raw: string(raw)}, nil
}

// jsonBody decodes the response body into a map.
func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		tb.Fatalf("body is not a JSON object: %v: %.300s", err, r.Body)
	}
	return m
}
