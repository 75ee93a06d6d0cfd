package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a writer that keeps every Write call apart.
type recorder struct {
	mu     sync.Mutex
	writes [][]byte
	err    error
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func (r *recorder) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.writes)
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(bytes.Join(r.writes, nil))
}

func TestBufferedWriterBatchesBySize(t *testing.T) {
	rec := &recorder{}
	b := NewBufferedWriter(rec, time.Hour, 100)
	defer b.Close()
	line := strings.Repeat("x", 39) + "\n" // 40 bytes
	for range 2 {
		if n, err := b.Write([]byte(line)); n != 40 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if rec.calls() != 0 {
		t.Fatalf("%d writes before 100 bytes gathered, want 0", rec.calls())
	}
	_, _ = b.Write([]byte(line)) // 120 > 100: the first two go out first
	if rec.calls() != 1 || rec.all() != line+line {
		t.Fatalf("after the third line: %d writes %q, want the first two in one write", rec.calls(), rec.all())
	}
	big := strings.Repeat("y", 150) + "\n"
	_, _ = b.Write([]byte(big)) // bigger than the buffer: pending line, then it, directly
	if rec.calls() != 3 || rec.all() != line+line+line+big {
		t.Fatalf("after a big line: %d writes, %q", rec.calls(), rec.all())
	}
}

func TestBufferedWriterFlushesOnInterval(t *testing.T) {
	rec := &recorder{}
	b := NewBufferedWriter(rec, 20*time.Millisecond, 0)
	defer b.Close()
	_, _ = b.Write([]byte("one\n"))
	_, _ = b.Write([]byte("two\n"))
	deadline := time.Now().Add(3 * time.Second)
	for rec.all() != "one\ntwo\n" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := rec.all(); got != "one\ntwo\n" {
		t.Fatalf("after the interval: %q", got)
	}
	if rec.calls() != 1 {
		t.Errorf("%d writes for two lines, want them in one", rec.calls())
	}
}

func TestBufferedWriterCloseWritesTheRest(t *testing.T) {
	rec := &recorder{}
	b := NewBufferedWriter(rec, time.Hour, 0)
	_, _ = b.Write([]byte("pending\n"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if rec.all() != "pending\n" {
		t.Fatalf("Close left %q", rec.all())
	}
	select {
	case <-b.done:
	default:
		t.Error("the flushing goroutine still runs after Close")
	}
	// After Close a line goes straight through, and Close again is harmless.
	_, _ = b.Write([]byte("late\n"))
	if rec.all() != "pending\nlate\n" || b.Close() != nil {
		t.Errorf("after Close: %q", rec.all())
	}
}

// TestBufferedWriterKeepsEachWriteWhole: concurrent writers' lines arrive whole and
// each writer's in order, with flushes by size only (the batching is then certain)
// and with a 1 ms interval flushing alongside the writers.
func TestBufferedWriterKeepsEachWriteWhole(t *testing.T) {
	for _, interval := range []time.Duration{time.Hour, time.Millisecond} {
		rec := &recorder{}
		b := NewBufferedWriter(rec, interval, 512)
		var wg sync.WaitGroup
		const writers, lines = 8, 200
		for w := range writers {
			wg.Go(func() {
				for i := range lines {
					_, _ = fmt.Fprintf(b, "writer=%d line=%03d %s\n", w, i, strings.Repeat("z", w*7+1))
				}
			})
		}
		wg.Wait()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(rec.all(), "\n"), "\n")
		if len(got) != writers*lines {
			t.Fatalf("interval %v: %d lines, want %d", interval, len(got), writers*lines)
		}
		next := make([]int, writers)
		for _, l := range got {
			var w, i int
			var pad string
			if _, err := fmt.Sscanf(l, "writer=%d line=%d %s", &w, &i, &pad); err != nil {
				t.Fatalf("interval %v: torn line %q: %v", interval, l, err)
			}
			if pad != strings.Repeat("z", w*7+1) || i != next[w] {
				t.Fatalf("interval %v: line %q out of order or torn (want line %d of writer %d)", interval, l, next[w], w)
			}
			next[w]++
		}
		// Lines are at most 80 bytes, so a 512-byte buffer holds at least 6.
		if interval == time.Hour && rec.calls() > writers*lines/6+1 {
			t.Errorf("%d writes for %d lines: not batched by size", rec.calls(), writers*lines)
		}
	}
}

func TestBufferedWriterReportsWriteErrors(t *testing.T) {
	rec := &recorder{err: errors.New("stdout closed")}
	b := NewBufferedWriter(rec, time.Hour, 0)
	_, _ = b.Write([]byte("lost\n"))
	if err := b.Flush(); err == nil || !strings.Contains(err.Error(), "stdout closed") {
		t.Errorf("Flush = %v, want the write's error", err)
	}
	if err := b.Flush(); err != nil {
		t.Errorf("second Flush = %v: the failed lines were dropped, nothing is pending", err)
	}
	_ = b.Close()
}
