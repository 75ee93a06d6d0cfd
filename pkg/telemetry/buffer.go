package telemetry

import (
	"io"
	"sync"
	"time"
)

// BufferedWriter gathers lines in memory and writes them to the writer underneath in
// batches: when Size bytes are pending, every interval, and on Flush and Close. A
// long-lived server that writes one line per request thus makes one write system call
// per batch instead of one per request.
//
// Lines still in memory are lost if the process dies without calling Close (SIGKILL,
// an out-of-memory kill, a fatal runtime error): at most one interval's worth. Do not
// use it under Lambda, which may freeze or end the environment as soon as a response
// is sent.
//
// Write keeps each call's bytes together and in order. It is safe for concurrent use.
type BufferedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	size   int
	err    error // the last write's error, returned by the next Flush
	closed bool

	stop chan struct{}
	done chan struct{}
}

// DefaultBufferSize is the size at which a BufferedWriter writes its lines at once.
const DefaultBufferSize = 32 << 10

// NewBufferedWriter returns a BufferedWriter on w that writes its lines every interval
// (which must be positive) and whenever size bytes (DefaultBufferSize when size <= 0)
// are pending. Close it to stop its goroutine and write what it holds.
func NewBufferedWriter(w io.Writer, interval time.Duration, size int) *BufferedWriter {
	if size <= 0 {
		size = DefaultBufferSize
	}
	b := &BufferedWriter{
		w:    w,
		buf:  make([]byte, 0, size),
		size: size,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go b.run(interval)
	return b
}

func (b *BufferedWriter) run(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Write adds p to the pending lines, first writing them out when p would not fit. A
// p of Size bytes or more is written at once, after what was pending. After Close,
// Write writes p directly. It reports the error of a failed write of p itself; the
// failure of a batch write is reported by the next Flush or Close.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > b.size {
		b.flushLocked()
		if len(p) >= b.size {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush writes the pending lines now and returns the error of the last failed
// write, if any since the previous Flush.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	err := b.err
	b.err = nil
	return err
}

func (b *BufferedWriter) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	if _, err := b.w.Write(b.buf); err != nil {
		b.err = err
	}
	// Lines that failed to be written are dropped, not retried: a broken standard
	// output would otherwise grow the buffer without bound.
	b.buf = b.buf[:0]
}

// Close stops the periodic writes and writes the pending lines. Later writes go to
// the writer underneath directly. Close may be called more than once.
func (b *BufferedWriter) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	return b.Flush()
}
