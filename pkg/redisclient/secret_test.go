package redisclient_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/internal/secrettest"
	"github.com/acmestore/storeapi/pkg/redisclient"
	"github.com/acmestore/storeapi/pkg/secret"
)

// secretHolder returns a client holder built the way the functions build theirs, from
// REDIS_URL and REDIS_PASSWORD_SECRET_ARN, with the AWS SDK pointed at sm through the
// environment (as the end-to-end tests do for the built functions).
func secretHolder(t *testing.T, sm *secrettest.Server, addr, arn string) *redisclient.Lazy {
	t.Helper()
	c, err := config.Parse(map[string]string{
		"REDIS_URL":                 "redis://" + addr,
		"REDIS_PASSWORD_SECRET_ARN": arn,
	}, config.ModeLambda)
	if err != nil {
		t.Fatal(err)
	}
	o, err := redisclient.Options(c.Redis)
	if err != nil {
		t.Fatal(err)
	}
	if o.Password != "" || o.CredentialsProviderContext == nil {
		t.Fatalf("options: password %q, credentials provider set %v", o.Password, o.CredentialsProviderContext != nil)
	}
	l := redisclient.NewLazy(o)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestPasswordFromSecretsManager(t *testing.T) {
	const pw = "r3dis-pass-via-options"
	srv := redistest.Start(t, "--requirepass", pw)
	sm := secrettest.Start(t)
	sm.Setenv(t)
	arn := secrettest.ARN("storeapi/redis")
	l := secretHolder(t, sm, srv.Addr(), arn)

	l.Client()
	time.Sleep(50 * time.Millisecond)
	if n := sm.Requests(); n != 0 {
		t.Fatalf("building the client made %d requests to Secrets Manager", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// No such secret yet: the first command fails, saying why.
	err := l.Client().Ping(ctx).Err()
	if got := fault.Classify(err); got != fault.CauseSecret || !got.Fault() {
		t.Fatalf("Classify(%v) = %q, want %q, a fault", err, got, fault.CauseSecret)
	}
	if !errors.Is(err, secret.ErrNotFound) || !strings.Contains(err.Error(), "REDIS_PASSWORD_SECRET_ARN") || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v, want ErrNotFound naming REDIS_PASSWORD_SECRET_ARN", err)
	}
	if msg := fault.CauseSecret.Message(); strings.Contains(msg, "123456789012") || strings.Contains(msg, "arn:") {
		t.Fatalf("the public message names the secret: %s", msg)
	}
	if n := sm.Requests(); n != 1 {
		t.Fatalf("%d requests after the first command, want 1", n)
	}

	// The secret appears: the next command reads it again and authenticates.
	sm.Put(arn, `{"password":"`+pw+`"}`)
	hammer := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				for range 25 {
					if err := l.Client().Incr(ctx, "secret-test:n").Err(); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	hammer()
	srv.MustDo("CLIENT", "KILL", "TYPE", "normal")
	hammer()
	// A client rebuilt after Close keeps the value read by the first one.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	hammer()
	if got := srv.MustDo("GET", "secret-test:n"); got != "600" {
		t.Fatalf("counter = %s, want 600", got)
	}
	if n := sm.Requests(); n != 2 {
		t.Fatalf("%d requests to Secrets Manager, want 2: the failed read and one kept", n)
	}
	if l.Builds() != 2 {
		t.Fatalf("Builds = %d, want 2", l.Builds())
	}
}

func TestSecretFailures(t *testing.T) {
	const pw = "r3dis-pass-failures"
	srv := redistest.Start(t, "--requirepass", pw)
	sm := secrettest.Start(t)
	sm.Setenv(t)

	t.Run("access denied", func(t *testing.T) {
		arn := secrettest.ARN("denied")
		sm.Fail(arn, "AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/storeapi/getProduct is not authorized to perform: secretsmanager:GetSecretValue")
		l := secretHolder(t, sm, srv.Addr(), arn)
		err := l.Client().Ping(context.Background()).Err()
		if fault.Classify(err) != fault.CauseSecret || !errors.Is(err, secret.ErrAccessDenied) || !strings.Contains(err.Error(), "access denied") {
			t.Fatalf("err = %v (cause %q), want access denied, %q", err, fault.Classify(err), fault.CauseSecret)
		}
		if strings.Contains(err.Error(), pw) {
			t.Fatalf("the error holds the password: %v", err)
		}
	})

	t.Run("slow endpoint", func(t *testing.T) {
		arn := secrettest.ARN("slow")
		sm.Put(arn, pw)
		sm.SetDelay(time.Minute)
		defer sm.SetDelay(0)
		l := secretHolder(t, sm, srv.Addr(), arn)

		// Without a deadline of its own, a command waits for the fixed bound.
		start := time.Now()
		err := l.Client().Ping(context.Background()).Err()
		elapsed := time.Since(start)
		if fault.Classify(err) != fault.CauseSecret || !errors.Is(err, secret.ErrTimeout) {
			t.Fatalf("err = %v (cause %q), want a secret timeout", err, fault.Classify(err))
		}
		if elapsed < secret.DefaultTimeout/2 || elapsed > 3*secret.DefaultTimeout {
			t.Fatalf("failed after %v, want about %v (at most %v)", elapsed, secret.DefaultTimeout, 3*secret.DefaultTimeout)
		}

		// With one, it waits no longer than that.
		const budget = 300 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		start = time.Now()
		err = l.Client().Ping(ctx).Err()
		if elapsed := time.Since(start); elapsed > 3*budget {
			t.Fatalf("a %v command failed after %v", budget, elapsed)
		}
		if !errors.Is(err, secret.ErrTimeout) {
			t.Fatalf("err = %v, want a secret timeout", err)
		}

		// Once the service answers, commands work again: at the latest after the read
		// that the short command started (and the service still holds) has given up.
		sm.SetDelay(0)
		deadline := time.Now().Add(3 * secret.DefaultTimeout)
		for {
			err := l.Client().Ping(context.Background()).Err()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the service recovered: %v", err)
			}
		}
	})

	t.Run("bad ARN", func(t *testing.T) {
		_, err := redisclient.Options(config.Redis{URL: config.Secret("redis://" + srv.Addr()), PasswordSecretARN: "storeapi/redis"})
		if err == nil || !strings.Contains(err.Error(), "REDIS_PASSWORD_SECRET_ARN") {
			t.Fatalf("err = %v, want one naming REDIS_PASSWORD_SECRET_ARN", err)
		}
	})
}
