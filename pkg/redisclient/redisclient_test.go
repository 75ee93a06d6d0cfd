package redisclient_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/redisclient"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func parse(t *testing.T, env map[string]string, mode config.Mode) config.Config {
	t.Helper()
	c, err := config.Parse(env, mode)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOptionsFromConfig(t *testing.T) {
	c := parse(t, map[string]string{
		"REDIS_URL":      "redis://app:urlpass@cache.internal:6380/2",
		"REDIS_PASSWORD": "override",
	}, config.ModeLambda)
	o, err := redisclient.Options(c.Redis)
	if err != nil {
		t.Fatal(err)
	}
	if o.Addrs[0] != "cache.internal:6380" || o.DB != 2 || o.Username != "app" || o.Password != "override" {
		t.Fatalf("endpoint: %+v", o)
	}
	if o.PoolSize != 2 || o.DialTimeout != 500*time.Millisecond || o.ReadTimeout != 250*time.Millisecond ||
		o.MaxRetries != 1 || o.DialerRetries != 1 || !o.ContextTimeoutEnabled || o.PipelinePoolSize >= 0 {
		t.Fatalf("lambda defaults not applied: %+v", o)
	}
	if o.TLSConfig != nil {
		t.Fatal("TLS on for redis://")
	}

	h := parse(t, map[string]string{"REDIS_URL": "redis://localhost"}, config.ModeHTTP)
	oh, _ := redisclient.Options(h.Redis)
	if oh.PoolSize < 16 || oh.Addrs[0] != "localhost:6379" {
		t.Fatalf("http defaults: pool %d addr %v", oh.PoolSize, oh.Addrs)
	}
}

// TestOptionsURLQuery checks that the REDIS_URL query options config accepts reach the
// client: the protocol version, and a client name that the server sees.
func TestOptionsURLQuery(t *testing.T) {
	mr := miniredis.RunT(t)
	c := parse(t, map[string]string{"REDIS_URL": "redis://" + mr.Addr() + "/0?protocol=2&client_name=storeapi-test"}, config.ModeHTTP)
	o, err := redisclient.Options(c.Redis)
	if err != nil {
		t.Fatal(err)
	}
	if o.Protocol != 2 || o.ClientName != "storeapi-test" {
		t.Fatalf("Protocol %d, ClientName %q: want the URL's 2 and storeapi-test", o.Protocol, o.ClientName)
	}
	rdb := redis.NewUniversalClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	if name, err := rdb.ClientGetName(context.Background()).Result(); err != nil || name != "storeapi-test" {
		t.Fatalf("CLIENT GETNAME = %q, %v", name, err)
	}

	d := parse(t, map[string]string{"REDIS_URL": "redis://" + mr.Addr()}, config.ModeHTTP)
	if o, _ := redisclient.Options(d.Redis); o.Protocol != 0 || o.ClientName != "" {
		t.Fatalf("without options: Protocol %d, ClientName %q; want go-redis's defaults", o.Protocol, o.ClientName)
	}
}

func TestOptionsTLSAndCluster(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := parse(t, map[string]string{"REDIS_URL": "rediss://clustercfg.example.cache.amazonaws.com:6379", "REDIS_CLUSTER": "true"}, config.ModeLambda)
	o, err := redisclient.Options(c.Redis)
	if err != nil {
		t.Fatal(err)
	}
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "clustercfg.example.cache.amazonaws.com" || o.TLSConfig.MinVersion != tls.VersionTLS12 {
		t.Fatalf("tls: %+v", o.TLSConfig)
	}
	if !o.IsClusterMode {
		t.Fatal("cluster mode off")
	}
	if _, ok := redis.NewUniversalClient(o).(*redis.ClusterClient); !ok {
		t.Fatal("cluster mode did not build a cluster client")
	}

	c.Redis.TLSCAFile = ca
	if _, err := redisclient.Options(c.Redis); err == nil || !strings.Contains(err.Error(), "REDIS_TLS_CA_FILE") {
		t.Fatalf("bad CA bundle: %v", err)
	}
	c.Redis.URL = "redis://h:1/3"
	if _, err := redisclient.Options(c.Redis); err == nil {
		t.Fatal("cluster mode with db 3 accepted")
	}
	c.Redis.URL = ""
	if _, err := redisclient.Options(c.Redis); err == nil || !strings.Contains(err.Error(), "REDIS_URL is not set") {
		t.Fatalf("missing URL: %v", err)
	}
}

func TestLazyBuildsOnceAndRebuildsAfterClose(t *testing.T) {
	mr := miniredis.RunT(t)
	l := redisclient.NewLazy(&redis.UniversalOptions{Addrs: []string{mr.Addr()}})
	t.Cleanup(func() { _ = l.Close() })
	if l.Built() {
		t.Fatal("built before first use")
	}
	var wg sync.WaitGroup
	clients := make([]redis.UniversalClient, 100)
	for i := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); clients[i] = l.Client() }()
	}
	wg.Wait()
	for _, c := range clients {
		if c != clients[0] {
			t.Fatal("concurrent first use built more than one client")
		}
	}
	if l.Builds() != 1 {
		t.Fatalf("Builds = %d", l.Builds())
	}
	ctx := context.Background()
	if err := l.Client().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Built() {
		t.Fatal("Built after Close")
	}
	if v, err := l.Client().Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after Close: %q, %v", v, err)
	}
	if l.Builds() != 2 {
		t.Fatalf("Builds after Close and use = %d", l.Builds())
	}
}

func TestSharedIsOneHolder(t *testing.T) {
	c := parse(t, map[string]string{"REDIS_URL": "redis://127.0.0.1:1"}, config.ModeLambda)
	a, err := redisclient.Shared(c.Redis)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := redisclient.Shared(config.Redis{})
	if a != b {
		t.Fatal("Shared returned two holders")
	}
	if a.Built() {
		t.Fatal("Shared built a client")
	}
}
