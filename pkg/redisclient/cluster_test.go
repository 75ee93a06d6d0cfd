package redisclient_test

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/redisclient"
	"github.com/alicebob/miniredis/v2"
)

// switchProxy forwards each TCP connection to the current target.
type switchProxy struct {
	ln     net.Listener
	target atomic.Pointer[string]
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln}
	p.target.Store(&target)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", *p.target.Load())
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return p
}

// In cluster mode, a node that dies makes the client reload its slot map at once
// (as after a failover), instead of sending that node's slots to the dead address
// until go-redis's periodic reload, a minute later.
func TestClusterReloadsSlotsWhenANodeDies(t *testing.T) {
	old := miniredis.RunT(t)
	// The seed address stays reachable; the slot map names the node itself (miniredis
	// serves every slot at its own address).
	seed := newSwitchProxy(t, old.Addr())
	cfg := parse(t, map[string]string{"REDIS_URL": "redis://" + seed.ln.Addr().String(), "REDIS_CLUSTER": "true"}, config.ModeLambda)
	o, err := redisclient.Options(cfg.Redis)
	if err != nil {
		t.Fatal(err)
	}
	lazy := redisclient.NewLazy(o)
	t.Cleanup(func() { _ = lazy.Close() })
	c := lazy.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "old", 0).Err(); err != nil {
		t.Fatal(err)
	}

	old.Close()
	heir := miniredis.RunT(t)
	heir.Set("k", "new")
	addr := heir.Addr()
	seed.target.Store(&addr)

	deadline := time.Now().Add(3 * time.Second)
	for {
		v, err := c.Get(ctx, "k").Result()
		if err == nil && v == "new" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 s after the node died the client still gets %q, %v: it did not reload the slot map", v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
