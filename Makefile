# Two commands matter: `make run` and `make test` (see README.md).
# Both find a PostgreSQL or start one (cmd/devdb): the one at DATABASE_URL,
# else docker compose where a Docker engine runs, else a private cluster
# from locally installed PostgreSQL server binaries under .pgdata/.

DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/flashsale?sslmode=disable
# Tests create and drop their own databases on this server.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: run build test vet fmt-check sqlc-check compose-check generate bench db-stop clean

run: build
	@url="$$(go run ./cmd/devdb ensure -url '$(DATABASE_URL)')" && DATABASE_URL="$$url" exec ./bin/server

build:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/server ./cmd/server

test: vet fmt-check sqlc-check compose-check
	@url="$$(go run ./cmd/devdb ensure -url '$(TEST_DATABASE_URL)')" && \
		TEST_DATABASE_URL="$$url" go test -race -count=1 -timeout 20m ./...

vet:
	go vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
		if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Fails when db/ does not match what sqlc generates from migrations/ and queries/.
sqlc-check:
	go tool sqlc diff

generate:
	go tool sqlc generate

compose-check:
	@if docker compose version >/dev/null 2>&1; then docker compose -f docker-compose.yml config -q && echo "docker-compose.yml: valid"; \
	else echo "compose-check: no docker compose plugin here, docker-compose.yml not validated"; fi

db-stop:
	go run ./cmd/devdb stop

clean:
	rm -rf bin
