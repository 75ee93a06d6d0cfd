package composetest

import (
	"fmt"
	"os"
	"testing"

	"github.com/acmestore/storeapi/pkg/internal/testbin"
)

// TestMain refuses to run without the programs the Redis tests run (the compose
// service's redis-server, its healthcheck's redis-cli): they would skip, and `go test
// ./...` would print "ok" for the package all the same.
func TestMain(m *testing.M) {
	if msg := testbin.Missing("pkg/internal/composetest", testbin.RedisServer, testbin.RedisCLI); msg != "" {
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
