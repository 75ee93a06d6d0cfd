// Package e2e proves the functions end to end, the way AWS Lambda runs them: its tests
// build the three bootstraps (with CI set as Lambda gets them: GOOS=linux,
// CGO_ENABLED=0, -tags lambda.norpc, -trimpath, -ldflags='-s -w'; elsewhere with the
// go test run's own settings, see buildAll), run each under the real AWS Lambda Runtime Interface
// Emulator (aws-lambda-rie) on ports of its own, point them at redis-servers the tests
// start, and invoke them with API Gateway v1 and v2 events.
//
// Then they break Redis on purpose: connections killed between invocations, the server
// stopped and restarted, paused, replaced by a listener that never answers, a wrong
// password, out of memory, a cluster losing a master, TLS with the right and a wrong
// CA, and the emulator stopping the function. Each scenario asserts its outcome three
// ways where they apply: the sequence of X-Cache values (so a handler that always
// bypassed the cache fails), evidence from the server (INFO figures, CLIENT LIST,
// keys present) and the elapsed time against the configured budget, with generous
// margins. The function's own JSON log lines, captured from the emulator, are checked
// too: causes, the failed write, no secret anywhere.
//
// hostile_test.go sends a table of hostile requests through the Lambda entry point
// in-process, against miniredis.
//
// The emulator is a tool of this module (go.mod's tool directive): the tests run the
// binary that `go tool -n aws-lambda-rie` builds once per machine into the build
// cache, so they never skip for want of it. redis-server and redis-cli are the
// machine's: where either is missing, TestMain says which and how to get it and runs
// nothing, so that `go test ./...` shows "[no tests to run]" on the package's line
// rather than a plain "ok" over skipped scenarios; with CI set the package fails.
//
// The package has no API; it exists for its tests.
package e2e
