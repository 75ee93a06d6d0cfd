# Builds the Lambda functions for `sam build` (BuildMethod: makefile in template.yaml)
# and wraps the everyday commands. SAM runs `make build-<LogicalId>` with ARTIFACTS_DIR
# set; the function's binary must land there as `bootstrap`.
#
# SAM's own Go builder adds neither -tags lambda.norpc nor -ldflags='-s -w', and it
# builds the package at the root of CodeUri, which must also hold go.mod; this module
# has one go.mod for three functions, hence these targets. pkg/internal/samtest runs
# them and checks the binaries.

GO ?= go
# Where `make build` puts the three bootstraps.
BUILD_DIR ?= build

# provided.al2023 on Graviton: a static arm64 binary named bootstrap. lambda.norpc
# leaves out the RPC mode that only the retired go1.x runtime used.
LAMBDA_ENV := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags='-s -w'

# $(call lambda_build,<folder under functions/>)
lambda_build = $(if $(ARTIFACTS_DIR),,$(error ARTIFACTS_DIR is not set: `sam build` sets it; or run `make build`))\
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(1)

.PHONY: build-GetProductFunction build-HealthFunction build-CacheClearFunction
.PHONY: build test vet run sam-build sam-api clean

build-GetProductFunction:
	$(call lambda_build,getproduct)

build-HealthFunction:
	$(call lambda_build,health)

build-CacheClearFunction:
	$(call lambda_build,cacheclear)

# build: the three bootstraps into $(BUILD_DIR)/<function>/bootstrap, as SAM builds them
build:
	$(MAKE) --no-print-directory build-GetProductFunction ARTIFACTS_DIR=$(BUILD_DIR)/getproduct
	$(MAKE) --no-print-directory build-HealthFunction ARTIFACTS_DIR=$(BUILD_DIR)/health
	$(MAKE) --no-print-directory build-CacheClearFunction ARTIFACTS_DIR=$(BUILD_DIR)/cacheclear

# test: every test, as the README says (real-Redis tests skip where there is no Redis)
test:
	$(GO) test -race ./...

# vet: formatting and vet
vet:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo 'gofmt: the files above need formatting'; exit 1; }
	$(GO) vet ./...

# run: the API on a laptop, with an embedded Redis when REDIS_URL is not set
run:
	$(GO) run ./scripts/localapi

# sam-build: sam build (needs the SAM CLI)
sam-build:
	sam build

# sam-api: the API under `sam local start-api`, against `docker compose up`
# (samconfig.toml supplies events/env.json and the compose network)
sam-api: sam-build
	sam local start-api

clean:
	rm -rf $(BUILD_DIR) .aws-sam
