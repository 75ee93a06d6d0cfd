package secret_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/acmestore/storeapi/pkg/internal/secrettest"
	"github.com/acmestore/storeapi/pkg/secret"
)

// testCredentials are static test credentials, so that nothing of the real
// environment's is used.
var testCredentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: secrettest.AccessKeyID, SecretAccessKey: secrettest.SecretAccessKey, Source: "test"}, nil
})

func newProvider(tb testing.TB, sm *secrettest.Server, arn string, timeout time.Duration) *secret.Provider {
	tb.Helper()
	p, err := secret.New(arn, secret.Options{Timeout: timeout, Endpoint: sm.URL, Credentials: testCredentials})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestValueForms(t *testing.T) {
	tests := []struct {
		name, value, user, password string
	}{
		{"plain", "pl41n-pass", "", "pl41n-pass"},
		{"plain with a trailing line break", "pl41n-pass\r\n", "", "pl41n-pass"},
		{"plain with spaces kept", "  sp aced  ", "", "  sp aced  "},
		{"plain that looks like JSON", "{not-json", "", "{not-json"},
		{"JSON password", `{"password":"js0n-pass"}`, "", "js0n-pass"},
		{"JSON username and password", `{"username":"app","password":"js0n-pass"}`, "app", "js0n-pass"},
		{"rotation secret", `{"engine":"redis","host":"h","port":6379,"username":"app","password":"r0t-pass"}`, "app", "r0t-pass"},
		{"JSON with spaces around", " \n{\"password\": \"js0n-pass\"}\n", "", "js0n-pass"},
	}
	sm := secrettest.Start(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arn := secrettest.ARN(fmt.Sprintf("form-%d", i))
			sm.Put(arn, tt.value)
			p := newProvider(t, sm, arn, 0)
			u, pw, err := p.Credentials(context.Background())
			if err != nil || u != tt.user || pw != tt.password {
				t.Fatalf("Credentials = %q, %q, %v; want %q, %q", u, pw, err, tt.user, tt.password)
			}
			if last := sm.Last(); last.SecretID != arn {
				t.Fatalf("SecretId = %q, want the ARN", last.SecretID)
			}
		})
	}
	// Signed with the given credentials for the ARN's region, whatever AWS_REGION says.
	auth := sm.Last().Authorization
	if want := secrettest.AccessKeyID + "/"; !strings.Contains(auth, want) || !strings.Contains(auth, "/"+secrettest.Region+"/secretsmanager/aws4_request") {
		t.Fatalf("Authorization = %q: not the test key for the ARN's region", auth)
	}
}

func TestUnusableValues(t *testing.T) {
	const marker = "s3cr3t-marker"
	tests := []struct {
		name  string
		put   func(sm *secrettest.Server, arn string)
		quote bool // whether the value holds the marker
	}{
		{"JSON without password", func(sm *secrettest.Server, arn string) { sm.Put(arn, `{"pass":"`+marker+`"}`) }, true},
		{"JSON password not a string", func(sm *secrettest.Server, arn string) { sm.Put(arn, `{"password":12345,"note":"`+marker+`"}`) }, true},
		{"JSON empty password", func(sm *secrettest.Server, arn string) { sm.Put(arn, `{"password":"","note":"`+marker+`"}`) }, true},
		{"JSON username not a string", func(sm *secrettest.Server, arn string) {
			sm.Put(arn, `{"username":7,"password":"`+marker+`"}`)
		}, true},
		{"empty", func(sm *secrettest.Server, arn string) { sm.Put(arn, "") }, false},
		{"only a line break", func(sm *secrettest.Server, arn string) { sm.Put(arn, "\n") }, false},
		{"binary", func(sm *secrettest.Server, arn string) { sm.PutBinary(arn, []byte(marker)) }, true},
	}
	sm := secrettest.Start(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arn := secrettest.ARN(fmt.Sprintf("bad-%d", i))
			tt.put(sm, arn)
			p := newProvider(t, sm, arn, 0)
			_, _, err := p.Credentials(context.Background())
			var serr *secret.Error
			if !errors.Is(err, secret.ErrNoPassword) || !errors.As(err, &serr) || serr.ARN != arn {
				t.Fatalf("err = %v, want a *secret.Error matching ErrNoPassword", err)
			}
			if strings.Contains(err.Error(), marker) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), marker) {
				t.Fatalf("the error quotes the value: %v", err)
			}
			if !strings.Contains(err.Error(), arn) {
				t.Fatalf("the error does not name the secret: %v", err)
			}
		})
	}
}

func TestNotFoundIsNotRemembered(t *testing.T) {
	sm := secrettest.Start(t)
	arn := secrettest.ARN("late")
	p := newProvider(t, sm, arn, 0)
	ctx := context.Background()

	_, _, err := p.Credentials(ctx)
	if !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for _, want := range []string{arn, "not found", "ResourceNotFoundException"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if p.Held() || sm.Requests() != 1 {
		t.Fatalf("after a failure: held %v, %d requests", p.Held(), sm.Requests())
	}

	sm.Put(arn, "n0w-there")
	if _, pw, err := p.Credentials(ctx); err != nil || pw != "n0w-there" {
		t.Fatalf("after the secret appeared: %q, %v", pw, err)
	}
	for range 20 {
		if _, pw, err := p.Credentials(ctx); err != nil || pw != "n0w-there" {
			t.Fatalf("held value: %q, %v", pw, err)
		}
	}
	// Deleting the secret now changes nothing: the value is kept for good.
	sm.Delete(arn)
	if _, pw, err := p.Credentials(ctx); err != nil || pw != "n0w-there" {
		t.Fatalf("after the secret went: %q, %v", pw, err)
	}
	if n := sm.Requests(); n != 2 || p.Reads() != 2 {
		t.Fatalf("%d requests, %d reads; want 2: one failed, one kept", n, p.Reads())
	}
}

func TestServiceErrors(t *testing.T) {
	tests := []struct {
		errType, message string
		kind             error
		says             string
	}{
		{"AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/storeapi/getProduct is not authorized to perform: secretsmanager:GetSecretValue", secret.ErrAccessDenied, "access denied"},
		{"DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key.", secret.ErrAccessDenied, "access denied"},
		{"UnrecognizedClientException", "The security token included in the request is invalid.", secret.ErrAccessDenied, "access denied"},
		{"InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.", secret.ErrUnavailable, "unavailable"},
	}
	sm := secrettest.Start(t)
	for _, tt := range tests {
		t.Run(tt.errType, func(t *testing.T) {
			arn := secrettest.ARN(tt.errType)
			sm.Fail(arn, tt.errType, tt.message)
			p := newProvider(t, sm, arn, 0)
			before := sm.Requests()
			_, _, err := p.Credentials(context.Background())
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want %v", err, tt.kind)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.says) || !strings.Contains(msg, tt.errType) || !strings.Contains(msg, arn) {
				t.Fatalf("error %q does not say %q, name %s and the ARN", msg, tt.says, tt.errType)
			}
			if n := sm.Requests() - before; n != 1 {
				t.Fatalf("%d requests for a client error, want 1 (no retries)", n)
			}
		})
	}
}

func TestErrorNamesItsCause(t *testing.T) {
	for _, kind := range []error{secret.ErrNotFound, secret.ErrAccessDenied, secret.ErrTimeout, secret.ErrNoPassword, secret.ErrUnavailable} {
		t.Run(kind.Error(), func(t *testing.T) {
			// As go-redis and redisclient return it: wrapped.
			err := fmt.Errorf("redisclient: REDIS_PASSWORD_SECRET_ARN: %w", &secret.Error{ARN: secrettest.ARN("x"), Kind: kind})
			if got := fault.Classify(err); got != fault.CauseSecret || !got.Fault() {
				t.Fatalf("Classify(%v) = %q, want %q, a fault", err, got, fault.CauseSecret)
			}
		})
	}
}

func TestSlowEndpointIsBounded(t *testing.T) {
	sm := secrettest.Start(t)
	arn := secrettest.ARN("slow")
	sm.Put(arn, "sl0w-pass")
	sm.SetDelay(time.Minute)

	const bound = 400 * time.Millisecond
	p := newProvider(t, sm, arn, bound)
	start := time.Now()
	_, _, err := p.Credentials(context.Background())
	elapsed := time.Since(start)
	if !errors.Is(err, secret.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout and DeadlineExceeded", err)
	}
	// A slow Secrets Manager is not a slow Redis.
	if got := fault.Classify(err); got != fault.CauseSecret {
		t.Fatalf("Classify(%v) = %q, want %q", err, got, fault.CauseSecret)
	}
	if elapsed < bound/2 || elapsed > 3*bound {
		t.Fatalf("failed after %v, want about %v (at most %v)", elapsed, bound, 3*bound)
	}

	// The next call reads again, and succeeds once the service answers.
	sm.SetDelay(0)
	if _, pw, err := p.Credentials(context.Background()); err != nil || pw != "sl0w-pass" {
		t.Fatalf("after the service recovered: %q, %v", pw, err)
	}
}

func TestCallerDeadlineDoesNotWasteTheRead(t *testing.T) {
	sm := secrettest.Start(t)
	arn := secrettest.ARN("caller")
	sm.Put(arn, "w4it-pass")
	sm.SetDelay(300 * time.Millisecond)
	p := newProvider(t, sm, arn, 5*time.Second)

	const wait = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	_, _, err := p.Credentials(ctx)
	if elapsed := time.Since(start); elapsed > 3*(wait+50*time.Millisecond) {
		t.Fatalf("the caller waited %v past its %v deadline", elapsed, wait)
	}
	if !errors.Is(err, secret.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout and DeadlineExceeded", err)
	}
	// A slow Secrets Manager is not a slow Redis.
	if got := fault.Classify(err); got != fault.CauseSecret {
		t.Fatalf("Classify(%v) = %q, want %q", err, got, fault.CauseSecret)
	}
	// The read went on without the caller: the next one gets its result.
	if _, pw, err := p.Credentials(context.Background()); err != nil || pw != "w4it-pass" {
		t.Fatalf("next caller: %q, %v", pw, err)
	}
	if n := sm.Requests(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestConcurrentFirstUseReadsOnce(t *testing.T) {
	sm := secrettest.Start(t)
	arn := secrettest.ARN("herd")
	sm.Put(arn, `{"username":"app","password":"h3rd-pass"}`)
	sm.SetDelay(100 * time.Millisecond)
	p := newProvider(t, sm, arn, 0)

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			u, pw, err := p.Credentials(context.Background())
			if err == nil && (u != "app" || pw != "h3rd-pass") {
				err = fmt.Errorf("got %q, %q", u, pw)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := sm.Requests(); n != 1 {
		t.Fatalf("%d requests for 64 concurrent first calls, want 1", n)
	}
}

func TestNoIOBeforeFirstUse(t *testing.T) {
	sm := secrettest.Start(t)
	arn := secrettest.ARN("lazy")
	sm.Put(arn, "l4zy-pass")
	p := newProvider(t, sm, arn, 0)
	time.Sleep(50 * time.Millisecond)
	if n := sm.Requests(); n != 0 || p.Held() {
		t.Fatalf("New made %d requests (held %v), want none", n, p.Held())
	}
	if _, _, err := p.Credentials(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := sm.Requests(); n != 1 || !p.Held() {
		t.Fatalf("%d requests after the first use (held %v)", n, p.Held())
	}
}

// TestCheckARN checks the one ARN rule that New and the configuration share: both
// accept and refuse the same strings, and a refusal never quotes the string.
func TestCheckARN(t *testing.T) {
	tests := []struct {
		arn string
		ok  bool
	}{
		{secrettest.ARN("storeapi/redis"), true},
		{"arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:redis-AbCdEf", true},
		{"arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a/b_c+d=e.f@g-AbCdEf", true},
		{"", false},
		{"storeapi/redis", false},
		{"arn:aws:s3:::bucket", false},
		{"arn:aws:ssm:eu-west-1:123456789012:parameter/redis", false},
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:", false},
		{"arn:aws:secretsmanager::123456789012:secret:redis", false},
		{"arn:aws:secretsmanager:eu-west-1::secret:redis", false},
		{"arn:other:secretsmanager:eu-west-1:123456789012:secret:redis", false},
		{"arn:aws:secretsmanager:eu-west-1:123456789012:other:redis", false},
		{"arn:aws:secretsmanager:eu-west-1:123456789012:storeapi/redis", false},
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:has space", false},
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.arn, func(t *testing.T) {
			checkErr := secret.CheckARN(tt.arn)
			_, newErr := secret.New(tt.arn, secret.Options{})
			if (checkErr == nil) != tt.ok || (newErr == nil) != tt.ok {
				t.Fatalf("CheckARN = %v, New = %v; want ok %v", checkErr, newErr, tt.ok)
			}
			for _, err := range []error{checkErr, newErr} {
				if err != nil && tt.arn != "" && strings.Contains(err.Error(), tt.arn) {
					t.Errorf("the error quotes the ARN: %v", err)
				}
			}
		})
	}
}

// TestEndpointFromEnvironment checks that AWS_ENDPOINT_URL_SECRETS_MANAGER and the
// credentials in the environment reach the client, as the end-to-end tests use them for
// the built functions.
func TestEndpointFromEnvironment(t *testing.T) {
	sm := secrettest.Start(t)
	sm.Setenv(t)
	arn := secrettest.ARN("env")
	sm.Put(arn, "3nv-pass")
	p, err := secret.New(arn, secret.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, pw, err := p.Credentials(context.Background()); err != nil || pw != "3nv-pass" {
		t.Fatalf("Credentials = %q, %v", pw, err)
	}
	if n := sm.Requests(); n != 1 || !strings.Contains(sm.Last().Authorization, secrettest.AccessKeyID+"/") {
		t.Fatalf("%d requests, Authorization %q", n, sm.Last().Authorization)
	}
}

func TestProviderNeverPrintsTheValue(t *testing.T) {
	sm := secrettest.Start(t)
	arn := secrettest.ARN("print")
	sm.Put(arn, `{"username":"pr1nt-user","password":"pr1nt-pass"}`)
	p := newProvider(t, sm, arn, 0)
	if _, _, err := p.Credentials(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s", p, p, p, p)
	if strings.Contains(out, "pr1nt-pass") || strings.Contains(out, "pr1nt-user") {
		t.Fatalf("printed: %s", out)
	}
}

// TestEnvironment checks what is read from the environment when Options leave it to
// the environment: the endpoint in its order of precedence, and the credentials. That
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true leaves the SDK's endpoint is checked by
// TestEndpoint, without reaching AWS.
func TestEnvironment(t *testing.T) {
	const token = "s3ssion-token"
	tests := []struct {
		name   string
		env    map[string]string // over secrettest's Env, with its endpoint variable unset
		option bool              // whether Options.Endpoint names the server
	}{
		{"AWS_ENDPOINT_URL_SECRETS_MANAGER", map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "SERVER", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, false},
		{"AWS_ENDPOINT_URL", map[string]string{"AWS_ENDPOINT_URL": "SERVER"}, false},
		{"Options.Endpoint over the environment", map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:1"}, true},
		{"Options.Endpoint over AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", map[string]string{"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, true},
		{"session token", map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "SERVER", "AWS_SESSION_TOKEN": token}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm := secrettest.Start(t)
			sm.Setenv(t)
			t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "")
			for k, v := range tt.env {
				t.Setenv(k, strings.ReplaceAll(v, "SERVER", sm.URL))
			}
			arn := secrettest.ARN(fmt.Sprintf("env-%d", i))
			sm.Put(arn, "3nv-pass")
			o := secret.Options{Timeout: 500 * time.Millisecond}
			if tt.option {
				o.Endpoint = sm.URL
			}
			p, err := secret.New(arn, o)
			if err != nil {
				t.Fatal(err)
			}
			_, pw, err := p.Credentials(context.Background())
			if err != nil || pw != "3nv-pass" || sm.Requests() != 1 {
				t.Fatalf("Credentials = %q, %v after %d requests", pw, err, sm.Requests())
			}
			auth := sm.Last().Authorization
			if !strings.Contains(auth, secrettest.AccessKeyID+"/") || !strings.Contains(auth, "/"+secrettest.Region+"/secretsmanager/aws4_request") {
				t.Fatalf("Authorization = %q: not the environment's key for the ARN's region", auth)
			}
			if signed := strings.Contains(auth, "x-amz-security-token"); signed != (tt.env["AWS_SESSION_TOKEN"] != "") {
				t.Fatalf("Authorization = %q: session token signed %v, want %v", auth, signed, !signed)
			}
		})
	}
}

// TestNoCredentialsInTheEnvironment checks that missing credentials fail the read
// clearly, naming the variables but never printing a value, and are looked for again
// by the next read.
func TestNoCredentialsInTheEnvironment(t *testing.T) {
	const value = "3nv-v4lue-never-printed"
	tests := []struct {
		name string
		env  map[string]string
		says string
	}{
		{"none", map[string]string{}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"},
		{"no key id", map[string]string{"AWS_SECRET_ACCESS_KEY": value, "AWS_SESSION_TOKEN": value}, "AWS_ACCESS_KEY_ID is not"},
		{"no secret key", map[string]string{"AWS_ACCESS_KEY_ID": value, "AWS_SESSION_TOKEN": value}, "AWS_SECRET_ACCESS_KEY is not"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm := secrettest.Start(t)
			sm.Setenv(t)
			for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
				t.Setenv(k, tt.env[k])
			}
			arn := secrettest.ARN(fmt.Sprintf("nocreds-%d", i))
			sm.Put(arn, "n0-creds-pass")
			p, err := secret.New(arn, secret.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = p.Credentials(context.Background())
			var serr *secret.Error
			if !errors.Is(err, secret.ErrUnavailable) || !errors.As(err, &serr) || serr.ARN != arn {
				t.Fatalf("err = %v, want a *secret.Error matching ErrUnavailable", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "no AWS credentials") || !strings.Contains(msg, tt.says) {
				t.Fatalf("error %q does not say %q", msg, tt.says)
			}
			if strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), value) {
				t.Fatalf("the error prints a variable's value: %v", err)
			}
			if n := sm.Requests(); n != 0 || p.Held() {
				t.Fatalf("%d requests without credentials (held %v)", n, p.Held())
			}

			// Not remembered: once the environment has them, the next read succeeds.
			t.Setenv("AWS_ACCESS_KEY_ID", secrettest.AccessKeyID)
			t.Setenv("AWS_SECRET_ACCESS_KEY", secrettest.SecretAccessKey)
			if _, pw, err := p.Credentials(context.Background()); err != nil || pw != "n0-creds-pass" {
				t.Fatalf("after the credentials were set: %q, %v", pw, err)
			}
		})
	}
}
