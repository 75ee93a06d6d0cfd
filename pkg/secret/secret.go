// Package secret reads a credential from AWS Secrets Manager once, on first use, and
// keeps it for the life of the process.
//
// It exists so that the Redis password need not sit in a Lambda function's environment,
// which anyone allowed lambda:GetFunctionConfiguration can read. A [Provider] does no
// I/O until its first [Provider.Credentials] call: building it at start-up costs nothing
// and a function that never reaches Redis never calls Secrets Manager.
//
// A secret's value is either the password itself or a JSON object with a "password" key
// and an optional "username" key, the form that RDS and ElastiCache rotation secrets
// use. Nothing in this package logs, and no error holds the value.
//
// With go-redis, which asks for credentials on every new connection:
//
//	p, err := secret.New(arn, secret.Options{})
//	// ...
//	rdb := redis.NewClient(&redis.Options{Addr: addr, CredentialsProviderContext: p.Credentials})
//
// # AWS configuration
//
// The Secrets Manager client is built here, not with the AWS SDK's config package
// (LoadDefaultConfig): that package brings the SSO, SSO OIDC, STS, sign-in and
// instance-metadata clients into every function, about 2 MB of binary and most of the
// AWS SDK's package initialisation on each Lambda cold start, whether or not the
// function ever reads a secret. What Lambda provides is all this package uses:
//
//   - credentials from the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
//     with AWS_SESSION_TOKEN when set. Shared config and credentials files, profiles,
//     SSO, assumed roles and instance metadata are not consulted;
//   - the region of the secret's ARN (AWS_REGION is not consulted);
//   - the endpoint from [Options.Endpoint], else AWS_ENDPOINT_URL_SECRETS_MANAGER,
//     else AWS_ENDPOINT_URL, unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true;
//     else the SDK's endpoint for the region;
//   - the SDK's default HTTP client and retries.
//
// The environment is read on the first read of the secret, not by [New]. On a laptop,
// export the credentials of a profile or SSO session first, for example with
//
//	eval "$(aws configure export-credentials --format env)"
package secret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// DefaultTimeout bounds one read of a secret when [Options.Timeout] is 0.
const DefaultTimeout = 2 * time.Second

// The kinds of failure. An [*Error] matches exactly one of them with errors.Is.
var (
	// ErrNotFound: no such secret, or it has no current version (ResourceNotFoundException).
	ErrNotFound = errors.New("secret: not found")
	// ErrAccessDenied: the caller's credentials may not read or decrypt the secret.
	ErrAccessDenied = errors.New("secret: access denied")
	// ErrTimeout: no answer within the read's bound, or the caller's context ended
	// first (errors.Is then matches the context's error too).
	ErrTimeout = errors.New("secret: no answer in time")
	// ErrNoPassword: the secret was read but holds no usable password.
	ErrNoPassword = errors.New("secret: no password in the value")
	// ErrUnavailable: any other failure (network, throttling, a service error, no AWS
	// credentials in the environment).
	ErrUnavailable = errors.New("secret: unavailable")
)

// Error is a failed read of a secret. Its message names the secret's ARN, the kind of
// failure and what Secrets Manager or the transport said (which may include the
// caller's role ARN), but never the secret's value: it belongs in a log, not in a
// response. It unwraps to its Kind and, for timeouts, to the context's error; it does
// not unwrap to the AWS SDK's error, so a network failure reaching Secrets Manager is
// never mistaken for one reaching Redis.
type Error struct {
	ARN    string
	Kind   error  // one of the Err… values of this package
	Detail string // the service's error code and message, or the transport's error
	ctxErr error
}

// Error returns "secret: read ARN: kind (detail)".
func (e *Error) Error() string {
	msg := strings.TrimPrefix(e.Kind.Error(), "secret: ")
	s := "secret: read " + e.ARN + ": " + msg
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Cause is fault.CauseSecret whatever the kind: to a client, a password that could not
// be read is one failure, and the kind and detail belong in the log. It lets
// fault.Classify name the cause without knowing this package.
func (e *Error) Cause() fault.Cause { return fault.CauseSecret }

// Unwrap returns the kind and, for a timeout, the context's error.
func (e *Error) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{e.Kind, e.ctxErr}
	}
	return []error{e.Kind}
}

// Options tune a Provider. The zero value is right for production.
type Options struct {
	// Timeout bounds one read of the secret, the SDK's own retries included. A caller
	// waits at most this long, or until its own context ends if that is sooner; the
	// read goes on in the background for the next caller.
	//
	// default: DefaultTimeout (2s)
	Timeout time.Duration

	// Endpoint replaces the Secrets Manager endpoint, e.g. a test server's URL.
	//
	// default: AWS_ENDPOINT_URL_SECRETS_MANAGER, else AWS_ENDPOINT_URL (both ignored
	// when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), else the SDK's endpoint for
	// the ARN's region
	Endpoint string

	// Credentials sign the requests to Secrets Manager, for example static credentials
	// in tests. It is used as is, without a cache.
	//
	// default: nil, the credentials in the environment (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN), read on the first read of the
	// secret: on Lambda, the function role's
	Credentials aws.CredentialsProvider
}

// Provider reads one secret on first use and keeps its value.
//
// Concurrent first calls share a single read. A successful read is kept for good; a
// failed one is not remembered, so the next call reads again. The secret is never
// re-read once held: a rotated password takes effect in new processes (a Lambda
// function's new execution environments, or after a deploy). A read that a frozen
// Lambda environment interrupts ends by its Timeout soon after the thaw.
type Provider struct {
	arn    string
	region string
	o      Options

	held atomic.Pointer[value]
	mu   sync.Mutex
	cur  *read // the read in progress or the one that succeeded; nil after a failure
	api  *secretsmanager.Client
	n    atomic.Int64
}

type value struct{ username, password string }

// read is one attempt to get the secret; done closes when v or err is set.
type read struct {
	done chan struct{}
	v    *value
	err  error
}

// New returns a Provider for the secret with the full ARN secretARN. It checks the ARN
// (see [CheckARN]) and does no I/O. The Secrets Manager client uses the ARN's region.
func New(secretARN string, o Options) (*Provider, error) {
	a, err := parseARN(secretARN)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return &Provider{arn: secretARN, region: a.Region, o: o}, nil
}

var errBadARN = errors.New("secret: want the full ARN of a Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)")

// CheckARN reports whether s has the form of a Secrets Manager secret's full ARN:
// arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME. A name alone is refused: a
// role's policy grants access by ARN, and the ARN names the region whose endpoint is
// called. It is the one check of an ARN: [New] applies it, and so does the
// configuration at start-up, so a bad ARN stops a function before its first request.
// It does no I/O and its error never quotes s.
func CheckARN(s string) error {
	_, err := parseARN(s)
	return err
}

func parseARN(s string) (arn.ARN, error) {
	a, err := arn.Parse(s)
	if err != nil || !strings.HasPrefix(a.Partition, "aws") || a.Service != "secretsmanager" ||
		a.Region == "" || a.AccountID == "" || !strings.HasPrefix(a.Resource, "secret:") ||
		len(a.Resource) == len("secret:") || strings.ContainsAny(s, " \t\r\n") {
		return arn.ARN{}, errBadARN
	}
	return a, nil
}

// ARN is the secret's ARN.
func (p *Provider) ARN() string { return p.arn }

// String names the provider by its ARN; the value never prints.
func (p *Provider) String() string { return "secret.Provider(" + p.arn + ")" }

// Held reports whether the value has been read, without I/O.
func (p *Provider) Held() bool { return p.held.Load() != nil }

// Reads is how many reads of the secret have finished, successful or not.
func (p *Provider) Reads() int64 { return p.n.Load() }

// Credentials returns the username (empty when the secret names none) and password
// held in the secret, reading it first if it is not held yet. Its signature is that of
// go-redis's CredentialsProviderContext, which calls it for every new connection.
//
// Safe for concurrent use. A caller waits for the read at most until its ctx ends or
// the read's Timeout passes, whichever is first; the read itself is not tied to ctx,
// so a caller that gives up early does not waste it for the next one. Every failure is
// an [*Error].
func (p *Provider) Credentials(ctx context.Context) (username, password string, err error) {
	if v := p.held.Load(); v != nil {
		return v.username, v.password, nil
	}
	r := p.start(ctx)
	select {
	case <-r.done:
	case <-ctx.Done():
		select {
		case <-r.done: // finished as the caller gave up: use it
		default:
			return "", "", &Error{ARN: p.arn, Kind: ErrTimeout, Detail: "the caller stopped waiting: " + ctx.Err().Error(), ctxErr: ctx.Err()}
		}
	}
	if r.err != nil {
		return "", "", r.err
	}
	return r.v.username, r.v.password, nil
}

// start returns the read in progress (or the one that succeeded), starting one if there
// is none. The read keeps ctx's values but not its deadline or cancellation.
func (p *Provider) start(ctx context.Context) *read {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		p.cur = &read{done: make(chan struct{})}
		go p.run(context.WithoutCancel(ctx), p.cur)
	}
	return p.cur
}

func (p *Provider) run(ctx context.Context, r *read) {
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	r.v, r.err = p.get(ctx)
	p.mu.Lock()
	if r.err == nil {
		p.held.Store(r.v)
	} else {
		p.cur = nil
	}
	p.mu.Unlock()
	p.n.Add(1)
	close(r.done)
}

func (p *Provider) get(ctx context.Context) (*value, error) {
	api, err := p.client()
	if err != nil {
		return nil, &Error{ARN: p.arn, Kind: ErrUnavailable, Detail: err.Error()}
	}
	out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(p.arn)})
	if err != nil {
		return nil, p.fail(ctx, err)
	}
	if out.SecretString == nil {
		return nil, &Error{ARN: p.arn, Kind: ErrNoPassword, Detail: "the secret has no string value; binary secrets are not supported"}
	}
	v, why := parse(*out.SecretString)
	if why != "" {
		return nil, &Error{ARN: p.arn, Kind: ErrNoPassword, Detail: why}
	}
	return v, nil
}

// client builds the Secrets Manager client on the first read; a failure to build it is
// not kept. Only run calls it, and reads never overlap, but p.mu orders one read's
// writes before the next read's.
func (p *Provider) client() (*secretsmanager.Client, error) {
	p.mu.Lock()
	api := p.api
	p.mu.Unlock()
	if api != nil {
		return api, nil
	}
	creds := p.o.Credentials
	if creds == nil {
		c, err := envCredentials()
		if err != nil {
			return nil, err
		}
		creds = c
	}
	base, err := endpoint(p.o.Endpoint)
	if err != nil {
		return nil, err
	}
	api = secretsmanager.New(secretsmanager.Options{
		Region:       p.region,
		Credentials:  creds,
		BaseEndpoint: base,
	})
	p.mu.Lock()
	p.api = api
	p.mu.Unlock()
	return api, nil
}

// envCredentials returns the credentials in the environment, as Lambda sets them for
// the function's role. Its errors name the variables, never their values.
func envCredentials() (aws.CredentialsProvider, error) {
	id, key := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	switch {
	case id == "" && key == "":
		return nil, errors.New("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (on a laptop, export them, e.g. eval \"$(aws configure export-credentials --format env)\")")
	case id == "":
		return nil, errors.New("no AWS credentials: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
	case key == "":
		return nil, errors.New("no AWS credentials: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
	}
	c := credentials.NewStaticCredentialsProvider(id, key, os.Getenv("AWS_SESSION_TOKEN"))
	c.Source = []aws.CredentialSource{aws.CredentialSourceEnvVars}
	return c, nil
}

// endpoint returns the endpoint that replaces the SDK's, or nil: o (Options.Endpoint),
// else the variables that the AWS SDKs share for it.
func endpoint(o string) (*string, error) {
	if o != "" {
		return aws.String(o), nil
	}
	if v := os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"); v != "" {
		ignore, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=%q: want true or false", v)
		}
		if ignore {
			return nil, nil
		}
	}
	for _, k := range []string{"AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(k); v != "" {
			return aws.String(v), nil
		}
	}
	return nil, nil
}

// fail turns an SDK error into an *Error.
func (p *Provider) fail(ctx context.Context, err error) *Error {
	e := &Error{ARN: p.arn, Kind: ErrUnavailable}
	var apiErr smithy.APIError
	var deserErr *smithy.DeserializationError
	switch {
	case ctx.Err() != nil:
		e.Kind, e.ctxErr = ErrTimeout, ctx.Err()
		e.Detail = fmt.Sprintf("gave up after %v", p.o.Timeout)
	case errors.As(err, &apiErr):
		e.Kind = kindOf(apiErr.ErrorCode())
		e.Detail = apiErr.ErrorCode()
		if m := apiErr.ErrorMessage(); m != "" {
			e.Detail += ": " + m
		}
	case errors.As(err, &deserErr):
		// A decoding error may quote the response, which holds the value.
		e.Detail = "malformed response from Secrets Manager"
	default:
		e.Detail = err.Error()
	}
	return e
}

func kindOf(code string) error {
	switch code {
	case "ResourceNotFoundException":
		return ErrNotFound
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
		"ExpiredTokenException", "MissingAuthenticationToken", "IncompleteSignature",
		"DecryptionFailure":
		return ErrAccessDenied
	}
	return ErrUnavailable
}

// parse reads a secret's value: a JSON object with "password" (and maybe "username"),
// or else the password itself, less a trailing line break (as left by a file that
// stored it). It returns why a value is unusable, in words that do not quote it.
func parse(s string) (*value, string) {
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "{") && json.Valid([]byte(t)) {
		var j struct {
			Username any `json:"username"`
			Password any `json:"password"`
		}
		_ = json.Unmarshal([]byte(t), &j)
		pw, ok := j.Password.(string)
		if !ok || pw == "" {
			return nil, `the value is a JSON object without a non-empty "password" string`
		}
		user, ok := j.Username.(string)
		if j.Username != nil && !ok {
			return nil, `the value's "username" is not a string`
		}
		return &value{username: user, password: pw}, ""
	}
	pw := strings.TrimRight(s, "\r\n")
	if pw == "" {
		return nil, "the value is empty"
	}
	return &value{password: pw}, ""
}
