// Package composetest stands in for a Docker engine, which the development and CI
// machines do not have. Its tests load docker-compose.yml with the compose-spec parser
// and check what it promises (pinned images, loopback-only ports, the fixed network
// name, the volumes, the healthcheck, the dependencies); run the command line and the
// healthcheck that compose gives Redis against a private redis-server, to prove
// persistence across a crash and a clean restart and that a wrong or missing password
// fails the healthcheck; run the Dockerfile's go build line on the programs it builds;
// and check stack.yml, .dockerignore and .env.example against the code that reads them.
//
// The package has no code outside its tests.
package composetest
