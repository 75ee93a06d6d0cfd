package config

import (
	"os"
	"runtime"
	"time"
)

// Mode is how the process serves requests.
type Mode int

const (
	// ModeLambda is the AWS Lambda runtime (AWS_LAMBDA_RUNTIME_API is set): one request
	// at a time per environment, frozen between invocations.
	ModeLambda Mode = iota
	// ModeHTTP is a long-lived HTTP server (OpenFaaS of-watchdog http mode, a laptop):
	// many concurrent requests in one process.
	ModeHTTP
)

// String returns "lambda" or "http".
func (m Mode) String() string {
	if m == ModeHTTP {
		return "http"
	}
	return "lambda"
}

// DetectMode reports ModeLambda when the Lambda runtime API is present and ModeHTTP
// otherwise.
func DetectMode() Mode {
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		return ModeLambda
	}
	return ModeHTTP
}

// Resolve fills the settings left at 0 with the defaults of c.Mode, and an empty
// Cache.KeyPrefix with the stage's default, store:<stage>: (left empty while the
// stage is not a valid name, which validation reports).
func (c *Config) Resolve() {
	if c.Cache.KeyPrefix == "" && validStage(c.Stage) {
		c.Cache.KeyPrefix = DefaultKeyPrefix(c.Stage)
	}
	r := &c.Redis
	lambda := c.Mode == ModeLambda
	if r.DialTimeout == 0 {
		r.DialTimeout = pick(lambda, 500*time.Millisecond, time.Second)
	}
	if r.ReadTimeout == 0 {
		r.ReadTimeout = pick(lambda, 250*time.Millisecond, 500*time.Millisecond)
	}
	if r.WriteTimeout == 0 {
		r.WriteTimeout = r.ReadTimeout
	}
	if r.OpTimeout == 0 {
		r.OpTimeout = 2*r.ReadTimeout + r.DialTimeout
	}
	if r.PoolSize == 0 {
		r.PoolSize = pick(lambda, 2, max(16, 8*runtime.GOMAXPROCS(0)))
	}
	c.resolveL1()
	c.resolveDatabase()
}

// DefaultKeyPrefix is the key prefix of stage when CACHE_KEY_PREFIX is not set:
// "store:<stage>:".
func DefaultKeyPrefix(stage Stage) string { return "store:" + string(stage) + ":" }

func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}
