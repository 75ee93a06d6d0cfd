package cache_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
)

// hookLog records WaitHook calls: each start and each end.
type hookLog struct {
	mu                  sync.Mutex
	starts, ends        int
	inProcess, keyMatch bool
	started             chan struct{}
}

func (h *hookLog) hook(want string) func(context.Context, string, bool) func() {
	return func(_ context.Context, key string, inProcess bool) func() {
		h.mu.Lock()
		h.starts++
		h.inProcess, h.keyMatch = inProcess, key == want
		h.mu.Unlock()
		if h.started != nil {
			close(h.started)
		}
		return func() {
			h.mu.Lock()
			h.ends++
			h.mu.Unlock()
		}
	}
}

// TestWaitHookLease: a call that finds another process's lease opens one wait and
// closes it when it gives up and fetches itself; a call that waits for nothing opens
// none.
func TestWaitHookLease(t *testing.T) {
	h := &hookLog{}
	s, mr := newUnit(t, cache.Options{Prefix: "w:", LeaseWait: 30 * time.Millisecond, WaitHook: h.hook("w:k")})
	if err := mr.Set("w:k", cache.LeaseMarker); err != nil {
		t.Fatal(err)
	}
	fetch := func(context.Context) (string, error) { return "v", nil }
	_, r, err := s.GetOrSet(context.Background(), "k", time.Minute, fetch)
	if err != nil || r.Waited == 0 {
		t.Fatalf("err %v, waited %v", err, r.Waited)
	}
	if h.starts != 1 || h.ends != 1 || h.inProcess || !h.keyMatch {
		t.Errorf("hook: %d starts, %d ends, inProcess %v, key match %v; want 1, 1, false, true", h.starts, h.ends, h.inProcess, h.keyMatch)
	}
	if _, _, err := s.GetOrSet(context.Background(), "other", time.Minute, fetch); err != nil {
		t.Fatal(err)
	}
	if h.starts != 1 {
		t.Errorf("a miss without a wait opened a wait: %d starts", h.starts)
	}
}

// TestWaitHookFlight: with Dedupe, a call that joins a fill another call in this
// process runs opens an in-process wait, closed when the fill ends; a call that owns
// its flight opens none. A fetches (and holds its flight closed); B, coming late,
// owns the next flight; C joins B's flight as a follower.
func TestWaitHookFlight(t *testing.T) {
	h := &hookLog{started: make(chan struct{})}
	s, _ := newUnit(t, cache.Options{Prefix: "w:", Dedupe: true, WaitHook: h.hook("w:k")})
	release := make(chan struct{})
	var fetches atomic.Int64
	fetch := func(context.Context) (string, error) {
		fetches.Add(1)
		<-release
		return "v", nil
	}
	done := make(chan error, 2)
	get := func() {
		_, _, err := s.GetOrSet(context.Background(), "k", time.Minute, fetch)
		done <- err
	}
	go get() // A
	for fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	go get() // B
	for cache.Waiting(s, "k") < 2 {
		time.Sleep(time.Millisecond)
	}
	go func() {
		<-h.started
		close(release)
	}()
	_, r, err := s.GetOrSet(context.Background(), "k", time.Minute, fetch) // C
	if err != nil || !r.Shared {
		t.Fatalf("err %v, shared %v", err, r.Shared)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if h.starts != 1 || h.ends != 1 || !h.inProcess || fetches.Load() != 1 {
		t.Errorf("hook: %d starts, %d ends, inProcess %v, %d fetches; want 1, 1, true, 1", h.starts, h.ends, h.inProcess, fetches.Load())
	}
}
