# Two commands matter: `make run` and `make test` (see README.md).
# Both find a PostgreSQL or start one (cmd/devdb): the one at DATABASE_URL,
# else docker compose where a Docker engine runs, else a private cluster
# from locally installed PostgreSQL server binaries under .pgdata/.

DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/flashsale?sslmode=disable
# Tests create and drop their own databases on this server.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: run build test fuzz vet fmt-check sqlc-check compose-check browser pgbouncer generate bench db-stop clean psql migrate-status

run: build
	@url="$$(go run ./cmd/devdb ensure -url '$(DATABASE_URL)')" && DATABASE_URL="$$url" exec ./bin/server

build:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/server ./cmd/server

test: vet fmt-check sqlc-check compose-check browser pgbouncer
	@url="$$(go run ./cmd/devdb ensure -url '$(TEST_DATABASE_URL)')" && \
		TEST_DATABASE_URL="$$url" go test -race -count=1 -timeout 20m ./... && \
		$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME) TEST_DATABASE_URL="$$url"

# Fuzz targets (package and name); `make test` runs each for TEST_FUZZTIME,
# `make fuzz` for FUZZTIME. An input that fails is written under the
# package's testdata/fuzz/ and replayed by every later `go test`: commit it
# with the fix.
FUZZ_TARGETS = ./internal/httpapi:FuzzCheckout ./internal/httpapi:FuzzPurchase \
	./internal/httpapi:FuzzPaths ./internal/httpapi:FuzzErrorMapping
TEST_FUZZTIME ?= 3s
FUZZTIME ?= 1m
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} for $(FUZZTIME)"; \
		out="$$(go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}" 2>&1)" || \
			{ echo "$$out" | tail -40; exit 1; }; \
	done

vet:
	go vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
		if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Fails when db/ does not match what sqlc generates from migrations/ and queries/.
sqlc-check:
	go tool sqlc diff

# The sale page's test (internal/httpapi/page_test.go) drives a headless
# Chromium; it fails, never skips, without one. Names as that test looks
# them up.
BROWSERS = chromium chromium-browser google-chrome google-chrome-stable
browser:
	@for b in $(BROWSERS); do command -v $$b >/dev/null 2>&1 && exit 0; done; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "browser: no Chromium found, installing Debian's chromium package"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else echo "make test needs a Chromium or Chrome browser for the sale page test: install Debian's chromium package (apt-get install chromium) or Google Chrome."; exit 1; fi

# The tests behind a transaction pooler (internal/pooltest, and
# internal/loadgen's own) run Debian's pgbouncer; they fail, never skip,
# without it. Looked up as internal/loadgen/pgbouncer.go does.
pgbouncer:
	@command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "pgbouncer: not found, installing Debian's pgbouncer package"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y pgbouncer; \
	else echo "make test needs PgBouncer for the tests behind a transaction pooler: install Debian's pgbouncer package (apt-get install pgbouncer)."; exit 1; fi

generate:
	go tool sqlc generate

# Fails on an invalid compose file. First compose-go, the library Compose v2
# loads files with, pinned in go.mod (cmd/composecheck): it needs nothing
# but Go, so a fresh machine checks the file too; then the Compose that is
# installed, if any (the docker compose plugin or standalone docker-compose).
COMPOSE_CHECK_FILE ?= docker-compose.yml
compose-check:
	@go run ./cmd/composecheck '$(COMPOSE_CHECK_FILE)'
	@if docker compose version >/dev/null 2>&1; then \
		docker compose -f '$(COMPOSE_CHECK_FILE)' config -q && echo "$(COMPOSE_CHECK_FILE): valid (docker compose)"; \
	elif command -v docker-compose >/dev/null 2>&1; then \
		docker-compose -f '$(COMPOSE_CHECK_FILE)' config -q && echo "$(COMPOSE_CHECK_FILE): valid (docker-compose)"; fi

# Operator commands on the database `make run` uses (DATABASE_URL above),
# from any shell: `make psql`, `make psql SQL='table sale_summary'`,
# `make migrate-status` (the server's own goose provider; see README.md).
psql:
	@DATABASE_URL='$(DATABASE_URL)'; psql "$$DATABASE_URL" $${SQL:+-c "$$SQL"}

migrate-status: build
	@DATABASE_URL='$(DATABASE_URL)' ./bin/server migrate status

# The full benchmark (about a minute; never part of `make test`): starts the
# server on a fresh database, runs herd, storm and the PostgreSQL baseline,
# prints one table and writes bench/results/latest.json. Flags go through
# BENCH_FLAGS, e.g. make bench BENCH_FLAGS='-storm 5s -out /tmp/r.json'.
BENCH_DATABASE_URL ?= $(TEST_DATABASE_URL)
BENCH_FLAGS ?=
bench: build
	go build -o bin/loadgen ./cmd/loadgen
	@url="$$(go run ./cmd/devdb ensure -url '$(BENCH_DATABASE_URL)')" && \
		./bin/loadgen -admin-db "$$url" -server-bin bin/server $(BENCH_FLAGS)

db-stop:
	go run ./cmd/devdb stop

clean:
	rm -rf bin
