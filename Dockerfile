# syntax=docker/dockerfile:1

FROM golang:1.26 AS build
WORKDIR /src
# The image pins GOTOOLCHAIN=local; a stale cached golang:1.26 older than
# the go line in go.mod would then refuse to build instead of upgrading.
ENV GOTOOLCHAIN=auto CGO_ENABLED=0
ARG VERSION=dev
COPY . .
# `go build ./cmd/server` downloads only the modules whose packages the
# server imports (plus go.mod files), not the whole graph that
# `go mod download` fetches for the repository's tools (sqlc and its
# parsers, compose-go). The cache mounts keep downloads and build results
# between builds, which the old `COPY go.mod` + `go mod download` layer did.
# Static binary: the distroless image has no libc. Migrations are embedded.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/server ./cmd/server

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /server
EXPOSE 8080 9464
# Container health checks run `/server healthcheck` (no shell in this image).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["/server", "healthcheck"]
ENTRYPOINT ["/server"]
