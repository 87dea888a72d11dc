# syntax=docker/dockerfile:1

FROM golang:1.26 AS build
WORKDIR /src
# The image pins GOTOOLCHAIN=local; a stale cached golang:1.26 older than
# the go line in go.mod would then refuse to build instead of upgrading.
ENV GOTOOLCHAIN=auto
# Dependencies first, so source edits do not invalidate the module cache layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static binary: the distroless image has no libc. Migrations are embedded.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/server ./cmd/server

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /server
EXPOSE 8080
ENTRYPOINT ["/server"]
