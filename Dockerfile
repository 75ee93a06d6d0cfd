# Builds one Go program of this module into a small image that runs as non-root.
#
#   docker build --target app -t storeapi-localapi .        # the local API: all three routes over HTTP
#   docker build --build-arg TARGET=./functions/health .     # one function behind the OpenFaaS watchdog
#
# TARGET is the package to build: ./scripts/localapi (the default), or one of
# ./functions/getproduct, ./functions/health, ./functions/cacheclear, which serve
# HTTP on $PORT when AWS_LAMBDA_RUNTIME_API is unset.
#
# Stages: "build" compiles; "app" is the program alone (docker-compose.yml uses it);
# "openfaas", the last and so the default stage, puts of-watchdog in http mode in front
# of it, because faas-cli (stack.yml) cannot pick a stage. The images are pinned to
# exact versions; the distroless one by digest, as it has no version tags.

FROM --platform=$BUILDPLATFORM golang:1.26.8 AS build
# Set by BuildKit to the platform being built for; Go cross-compiles on the build
# machine's platform instead of under emulation.
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGET=./scripts/localapi
# Static (no cgo) for the distroless static image; lambda.norpc leaves out the RPC
# mode that the provided.al2023 runtime does not use. pkg/internal/composetest runs
# this very line with go build.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -tags lambda.norpc -o /out/app ${TARGET}

FROM ghcr.io/openfaas/of-watchdog:0.11.5 AS watchdog

# No shell, no package manager; runs as uid 65532 and has the CA roots that TLS to
# ElastiCache needs.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab AS app
COPY --from=build /out/app /app
USER nonroot:nonroot
ENV PORT=8080
# The local run (the default TARGET) listens on 127.0.0.1 unless HOST says otherwise,
# and a published port reaches the container on its own interface. Bound there
# without CACHE_CLEAR_TOKEN, its cacheClear is closed.
ENV HOST=0.0.0.0
EXPOSE 8080
ENTRYPOINT ["/app"]

# OpenFaaS: the watchdog listens on 8080 (its "port" setting) and forwards every
# request to the program, which listens on PORT=8082. stack.yml sets the same values.
FROM app AS openfaas
COPY --from=watchdog /fwatchdog /fwatchdog
ENV mode=http \
    fprocess=/app \
    upstream_url=http://127.0.0.1:8082 \
    PORT=8082 \
    prefix_logs=false
EXPOSE 8080
ENTRYPOINT ["/fwatchdog"]
