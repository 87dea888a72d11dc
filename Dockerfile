# syntax=docker/dockerfile:1

# Base images are pinned by digest, so a build uses the image that was
# reviewed, not whatever the tag points at that day. The tag stays for
# people; the digest is what is pulled. To bump one, read the tag's current
# digest (`docker buildx imagetools inspect golang:1.26`, or
# `crane digest golang:1.26`; the multi-platform index digest, not one
# platform's), replace it here and in docker-compose.yml where it appears,
# and rebuild. Digests below: golang:1.26 and
# gcr.io/distroless/static-debian12:nonroot as published in August 2026.
FROM golang:1.26@sha256:6cd10a6fcc5eadd62008fc2ad8056b38971cafd42f44d55297f18be8adc86410 AS build
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

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
COPY --from=build /out/server /server
EXPOSE 8080 9464
# Container health checks run `/server healthcheck` (no shell in this image).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["/server", "healthcheck"]
ENTRYPOINT ["/server"]
