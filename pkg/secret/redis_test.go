package secret_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/internal/secrettest"
)

// TestRedisAuthenticatesWithTheSecret plugs a Provider into go-redis, which asks it for
// credentials on every new connection, against a private redis-server that requires a
// password: many commands over many connections, one read of the secret.
func TestRedisAuthenticatesWithTheSecret(t *testing.T) {
	const pw = "r3dis-pass-from-secrets-manager"
	tests := []struct{ name, value string }{
		{"plain", pw},
		{"JSON", `{"password":"` + pw + `"}`},
		{"JSON with username", `{"username":"default","password":"` + pw + `","engine":"redis"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t, "--requirepass", pw)
			sm := secrettest.Start(t)
			arn := secrettest.ARN("redis")
			sm.Put(arn, tt.value)
			p := newProvider(t, sm, arn, 0)

			rdb := redis.NewClient(&redis.Options{
				Addr:                       srv.Addr(),
				CredentialsProviderContext: p.Credentials,
				PoolSize:                   8,
				DisableIdentity:            true,
			})
			t.Cleanup(func() { _ = rdb.Close() })
			if n := sm.Requests(); n != 0 {
				t.Fatalf("building the client made %d requests", n)
			}
			before, _ := strconv.Atoi(srv.Info("total_connections_received"))

			run := func(round int) {
				t.Helper()
				var wg sync.WaitGroup
				errs := make(chan error, 16)
				for g := range 16 {
					wg.Go(func() {
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						defer cancel()
						for i := range 20 {
							key := fmt.Sprintf("secret-test:%d:%d:%d", round, g, i)
							if err := rdb.Set(ctx, key, "v", time.Minute).Err(); err != nil {
								errs <- err
								return
							}
							if err := rdb.Get(ctx, key).Err(); err != nil {
								errs <- err
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			run(0)
			// Drop every connection, as after a freeze or failover: the new ones
			// authenticate with the value already held.
			srv.MustDo("CLIENT", "KILL", "TYPE", "normal")
			run(1)

			after, _ := strconv.Atoi(srv.Info("total_connections_received"))
			conns := after - before - 2 // less the connections of the KILL and the last INFO
			t.Logf("%d connections, %d reads of the secret", conns, sm.Requests())
			if conns < 3 {
				t.Fatalf("only %d connections made; the test wants several", conns)
			}
			if n := sm.Requests(); n != 1 {
				t.Fatalf("%d reads of the secret for %d connections, want 1", n, conns)
			}
		})
	}
}
